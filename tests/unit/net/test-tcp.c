/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The gateway's TCP receive path, frame by frame: the test plays the guest
 * over a stream socketpair and a loopback listener plays the host peer
 * (reached through the host alias, allowed by "allow@host"). Data after a
 * gap is kept and follows when the gap is filled; a guest flooding the
 * gateway with segments after a gap gets no more than 512 of them kept,
 * and the flow goes on working.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/core/util.h"
#include "lib/net/net.h"
#include "lib/net/packet.h"

#define GUEST_PORT 40000
#define ISS        1000u /* the guest's initial sequence number */
#define KEPT_MAX   512   /* OOO_SEGS_MAX in lib/net/tcp.c */

struct world {
        struct net_gw_config cfg;
        struct net_gw *gw;
        int link;     /* our end of the frame socket */
        int listener; /* the host peer's */
        int peer;     /* the accepted connection */
        uint16_t port;
        uint32_t gw_isn;
        uint8_t rx[1 << 20];
        size_t rx_len;
};

static struct in6_addr v4(struct in_addr a)
{
        struct in6_addr m;

        net_addr_from_v4(&m, &a);
        return m;
}

/* Sends one TCP segment from the guest. */
static void guest_send(struct world *w, uint32_t seq, uint8_t flags, const void *data, size_t len)
{
        static uint8_t buf[4 + 65536 + 128];
        uint8_t *frame = buf + 4, opt[NET_TCP_SYN_OPT_LEN];
        struct in6_addr src = v4(w->cfg.guest4), dst = v4(w->cfg.gw4);
        size_t off = net_l4_off(true), hl, n;

        if (flags & NET_TCP_SYN)
                net_tcp_syn_opts(opt, 1460, 7);
        hl = net_tcp_header(frame + off, GUEST_PORT, w->port, seq,
                            flags & NET_TCP_SYN ? 0 : w->gw_isn + 1, flags, 65535, opt,
                            flags & NET_TCP_SYN ? sizeof(opt) : 0);
        if (len)
                memcpy(frame + off + hl, data, len);
        n = net_frame_finish(frame, w->cfg.gw_mac, w->cfg.guest_mac, &src, &dst, IPPROTO_TCP,
                             hl + len);
        net_put32(buf, (uint32_t)n);
        for (size_t done = 0; done < 4 + n;) {
                ssize_t k = write(w->link, buf + done, 4 + n - done);

                if (k > 0) {
                        done += (size_t)k;
                        continue;
                }
                /* The link is full: let the gateway read it, and drop what
                 * it answered meanwhile (ACKs nobody waits for). */
                assert_true(k < 0 && errno == EAGAIN);
                assert_int_equal(net_gw_run(w->gw), 0);
                while (read(w->link, w->rx, sizeof(w->rx)) > 0)
                        ;
                w->rx_len = 0;
        }
}

/* Runs the gateway and reads the link until a TCP segment to the guest
 * with all of want_flags arrives (its fields in *ret), or the host peer
 * connects when want_flags is 0. */
static void pump(struct world *w, uint8_t want_flags, struct net_pkt *ret)
{
        uint64_t deadline = now_ns(CLOCK_MONOTONIC) + 10ull * 1000 * 1000 * 1000;

        while (now_ns(CLOCK_MONOTONIC) < deadline) {
                ssize_t n;

                assert_int_equal(net_gw_run(w->gw), 0);
                if (w->peer < 0)
                        w->peer = accept4(w->listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (!want_flags && w->peer >= 0)
                        return;
                n = read(w->link, w->rx + w->rx_len, sizeof(w->rx) - w->rx_len);
                if (n > 0)
                        w->rx_len += (size_t)n;
                while (w->rx_len >= 4) {
                        uint32_t len = net_get32(w->rx);
                        struct net_pkt k;
                        bool hit;

                        if (w->rx_len < 4 + len)
                                break;
                        assert_int_equal(net_pkt_parse(w->rx + 4, len, &k), 0);
                        hit = want_flags && k.proto == IPPROTO_TCP &&
                              (k.tcp_flags & want_flags) == want_flags;
                        if (hit)
                                *ret = k; /* its views die below: only fields are used */
                        memmove(w->rx, w->rx + 4 + len, w->rx_len - 4 - len);
                        w->rx_len -= 4 + len;
                        if (hit)
                                return;
                }
                poll(NULL, 0, 1);
        }
        fail_msg("nothing from the gateway in 10 s");
}

/* What the host peer has received, up to want bytes. */
static size_t peer_read(struct world *w, char *buf, size_t want)
{
        uint64_t deadline = now_ns(CLOCK_MONOTONIC) + 5ull * 1000 * 1000 * 1000;
        size_t have = 0;

        while (have < want && now_ns(CLOCK_MONOTONIC) < deadline) {
                ssize_t n;

                assert_int_equal(net_gw_run(w->gw), 0);
                n = read(w->peer, buf + have, want - have);
                if (n > 0)
                        have += (size_t)n;
                else
                        poll(NULL, 0, 1);
        }
        return have;
}

static uint64_t kept(struct world *w)
{
        struct net_gw_stats s;

        net_gw_get_stats(w->gw, &s);
        return s.tcp_ooo;
}

static int setup(void **state)
{
        struct world *w = calloc(1, sizeof(*w));
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t alen = sizeof(a);
        struct net_policy p;
        struct net_rule r;
        struct net_pkt k;
        int sv[2];

        assert_non_null(w);
        w->peer = -1;
        w->listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        assert_true(w->listener >= 0);
        assert_int_equal(bind(w->listener, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(listen(w->listener, 4), 0);
        assert_int_equal(getsockname(w->listener, (struct sockaddr *)&a, &alen), 0);
        w->port = ntohs(a.sin_port);

        net_gw_config_init(&w->cfg);
        assert_int_equal(net_policy_from_profile("none", &p), 0);
        assert_int_equal(net_policy_parse_rule("allow@host", &r), 0);
        assert_int_equal(net_policy_add_rule(&p, &r), 0);
        w->cfg.policy = &p;
        assert_int_equal(net_gw_new(&w->cfg, &w->gw), 0);
        net_policy_done(&p);
        w->cfg.policy = NULL;
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
        assert_int_equal(net_gw_attach(w->gw, sv[0], NET_LINK_STREAM), 0);
        w->link = sv[1];

        /* The handshake: our SYN, the host connect, the gateway's SYN-ACK. */
        guest_send(w, ISS, NET_TCP_SYN, NULL, 0);
        pump(w, NET_TCP_SYN | NET_TCP_ACK, &k);
        assert_int_equal(k.ack, ISS + 1);
        w->gw_isn = k.seq;
        guest_send(w, ISS + 1, NET_TCP_ACK, NULL, 0);
        pump(w, 0, NULL);
        *state = w;
        return 0;
}

static int teardown(void **state)
{
        struct world *w = *state;

        net_gw_free(w->gw);
        close(w->link);
        close(w->listener);
        safe_close(w->peer);
        free(w);
        return 0;
}

static void test_gap_filled(void **state)
{
        struct world *w = *state;
        char got[32] = "";
        struct net_pkt k;

        guest_send(w, ISS + 11, NET_TCP_ACK | NET_TCP_PSH, "klmnopqrst", 10);
        pump(w, NET_TCP_ACK, &k); /* the duplicate ACK, asking for the gap */
        assert_int_equal(k.ack, ISS + 1);
        assert_int_equal(kept(w), 1);
        guest_send(w, ISS + 1, NET_TCP_ACK | NET_TCP_PSH, "abcdefghij", 10);
        assert_int_equal(peer_read(w, got, 20), 20);
        assert_string_equal(got, "abcdefghijklmnopqrst");
        pump(w, NET_TCP_ACK, &k); /* one ACK covers both */
        assert_int_equal(k.ack, ISS + 21);
}

static void test_flood_bounded(void **state)
{
        struct world *w = *state;
        static char data[4096], got[4096];
        uint32_t next = ISS + 1;

        memset(data, 'x', sizeof(data));
        /* 2000 one-byte segments, each after a gap of its own */
        for (uint32_t i = 0; i < 2000; i++) {
                guest_send(w, next + 2 + 2 * i, NET_TCP_ACK, "y", 1);
                if (i % 64 == 0)
                        assert_int_equal(net_gw_run(w->gw), 0);
        }
        assert_int_equal(net_gw_run(w->gw), 0);
        assert_int_equal(kept(w), KEPT_MAX);
        /* Everything, gaps and kept bytes alike, in one segment: it reaches
         * the host once, and the kept copies are dropped. */
        guest_send(w, next, NET_TCP_ACK | NET_TCP_PSH, data, sizeof(data));
        assert_int_equal(peer_read(w, got, sizeof(got)), sizeof(got));
        assert_memory_equal(got, data, sizeof(data));
        guest_send(w, next + sizeof(data), NET_TCP_ACK | NET_TCP_PSH, "end", 3);
        assert_int_equal(peer_read(w, got, 3), 3);
        assert_memory_equal(got, "end", 3);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_gap_filled, setup, teardown),
                cmocka_unit_test_setup_teardown(test_flood_bounded, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
