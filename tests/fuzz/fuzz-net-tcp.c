/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the gateway's TCP on an established flow, the state
 * the frame fuzzer (policy "none") never reaches. For each input a real
 * flow is opened: the target plays the guest (SYN, the gateway's SYN-ACK,
 * ACK) towards a loopback listener reached through the host alias
 * ("allow@host"). The input then becomes guest segments on that flow, each
 * record:
 *
 *   flags (1 byte: FIN RST PSH ACK as in TCP; 0x80: the host peer reads
 *   what has arrived) | sequence offset from the guest's ISN + 1 (2,
 *   signed) | ACK offset from the gateway's ISN + 1 (2, signed) | window
 *   (2) | payload length (1) | payload
 *
 * so gaps, overlaps, old data, window probes, FIN and RST in any order,
 * with the host peer reading or not. The gateway must survive (ASan and
 * UBSan watch it) and answer only frames that parse. After each input the
 * host peer resets the connection, which ends the flow.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdbool.h>

#include "lib/net/net.h"
#include "lib/net/packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ISS 1000u

static struct net_gw *gw;
static struct net_gw_config cfg;
static int link_fd = -1, listener = -1;
static uint16_t port, sport = 20000;
static uint32_t gw_isn;
static uint8_t rx[1 << 20];
static size_t rx_len;

static void setup(void)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t alen = sizeof(a);
        struct net_policy p;
        struct net_rule r;
        int sv[2];

        listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        assert(listener >= 0);
        assert(bind(listener, (struct sockaddr *)&a, sizeof(a)) == 0);
        assert(listen(listener, 64) == 0);
        assert(getsockname(listener, (struct sockaddr *)&a, &alen) == 0);
        port = ntohs(a.sin_port);

        net_gw_config_init(&cfg);
        assert(net_policy_from_profile("none", &p) == 0);
        assert(net_policy_parse_rule("allow@host", &r) == 0);
        assert(net_policy_add_rule(&p, &r) == 0);
        cfg.policy = &p;
        assert(net_gw_new(&cfg, &gw) == 0);
        net_policy_done(&p);
        cfg.policy = NULL;
        assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) == 0);
        assert(net_gw_attach(gw, sv[0], NET_LINK_STREAM) == 0);
        link_fd = sv[1];
}

static void send_segment(uint32_t seq, uint32_t ack, uint8_t flags, uint16_t win,
                         const uint8_t *payload, size_t len)
{
        static uint8_t buf[4 + 512];
        uint8_t *frame = buf + 4, opt[NET_TCP_SYN_OPT_LEN];
        struct in6_addr src, dst;
        size_t off = net_l4_off(true), hl, n, done = 0;

        net_addr_from_v4(&src, &cfg.guest4);
        net_addr_from_v4(&dst, &cfg.gw4);
        if (flags & NET_TCP_SYN)
                net_tcp_syn_opts(opt, 1460, 7);
        hl = net_tcp_header(frame + off, sport, port, seq, ack, flags, win, opt,
                            flags & NET_TCP_SYN ? sizeof(opt) : 0);
        if (len)
                memcpy(frame + off + hl, payload, len);
        n = net_frame_finish(frame, cfg.gw_mac, cfg.guest_mac, &src, &dst, IPPROTO_TCP, hl + len);
        net_put32(buf, (uint32_t)n);
        while (done < 4 + n) {
                ssize_t k = write(link_fd, buf + done, 4 + n - done);

                if (k > 0) {
                        done += (size_t)k;
                } else {
                        assert(k < 0 && errno == EAGAIN);
                        assert(net_gw_run(gw) == 0);
                }
        }
}

/* Reads what the gateway sent; every frame must parse. Returns the ISN of
 * a SYN-ACK among them, if any (found set). */
static void drain(bool *found)
{
        ssize_t n;

        while ((n = read(link_fd, rx + rx_len, sizeof(rx) - rx_len)) > 0) {
                size_t off = 0;

                rx_len += (size_t)n;
                while (rx_len - off >= 4) {
                        uint32_t len = net_get32(rx + off);
                        struct net_pkt k;

                        assert(len <= NET_FRAME_MAX);
                        if (rx_len - off < 4 + len)
                                break;
                        assert(net_pkt_parse(rx + off + 4, len, &k) == 0);
                        if (found && k.proto == IPPROTO_TCP && k.dport == sport &&
                            (k.tcp_flags & (NET_TCP_SYN | NET_TCP_ACK)) ==
                                    (NET_TCP_SYN | NET_TCP_ACK)) {
                                gw_isn = k.seq;
                                *found = true;
                        }
                        off += 4 + len;
                }
                memmove(rx, rx + off, rx_len - off);
                rx_len -= off;
        }
}

/* The handshake; the accepted host side, or -1 if it did not happen. */
static int open_flow(void)
{
        bool found = false;
        int peer = -1;

        sport = (uint16_t)(sport == 60000 ? 20000 : sport + 1);
        send_segment(ISS, 0, NET_TCP_SYN, 65535, NULL, 0);
        for (int i = 0; i < 2000 && (!found || peer < 0); i++) {
                assert(net_gw_run(gw) == 0);
                if (peer < 0)
                        peer = accept4(listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                drain(&found);
                if (!found || peer < 0)
                        usleep(100);
        }
        if (!found) {
                if (peer >= 0)
                        close(peer);
                return -1;
        }
        send_segment(ISS + 1, gw_isn + 1, NET_TCP_ACK, 65535, NULL, 0);
        assert(net_gw_run(gw) == 0);
        return peer;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static uint8_t sink[1 << 16];
        struct linger reset = {1, 0};
        int peer;

        if (!gw)
                setup();
        peer = open_flow();
        assert(peer >= 0); /* the flows of earlier inputs are gone */
        while (size >= 8) {
                uint8_t flags = data[0] & (NET_TCP_FIN | NET_TCP_RST | NET_TCP_PSH | NET_TCP_ACK);
                bool peer_reads = data[0] & 0x80;
                int16_t seq_off = (int16_t)(data[1] << 8 | data[2]);
                int16_t ack_off = (int16_t)(data[3] << 8 | data[4]);
                uint16_t win = (uint16_t)(data[5] << 8 | data[6]);
                size_t len = data[7];

                data += 8;
                size -= 8;
                len = len < size ? len : size;
                send_segment(ISS + 1 + (uint32_t)(int32_t)seq_off,
                             gw_isn + 1 + (uint32_t)(int32_t)ack_off, flags, win, data, len);
                data += len;
                size -= len;
                assert(net_gw_run(gw) == 0);
                drain(NULL);
                while (peer_reads && read(peer, sink, sizeof(sink)) > 0)
                        ;
        }
        /* The host peer resets: the gateway's socket fails, the flow ends. */
        setsockopt(peer, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
        close(peer);
        for (int i = 0; i < 3; i++) {
                assert(net_gw_run(gw) == 0);
                drain(NULL);
        }
        return 0;
}
