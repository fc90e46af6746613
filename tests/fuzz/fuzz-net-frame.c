/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the guest-facing side of the gateway. The input is
 * one Ethernet frame from the guest. net_pkt_parse() must either refuse it
 * or return views that lie inside it. Then the frame goes to a real gateway
 * (created once, over a stream socketpair, with the policy "none" so that
 * nothing leaves this process: flows are refused, DNS is refused), which
 * must survive it; whatever the gateway answers is read back and must
 * itself parse as a valid frame.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/net/net.h"
#include "lib/net/packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct net_gw *gw;
static int peer = -1;

static void setup(void)
{
        struct net_gw_config c;
        struct net_policy p;
        struct sockaddr_in6 dns = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
        int sv[2];

        net_gw_config_init(&c);
        assert(net_policy_from_profile("none", &p) == 0);
        c.policy = &p;
        c.dns = &dns;
        c.n_dns = 1;
        assert(net_gw_new(&c, &gw) == 0);
        net_policy_done(&p);
        assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) == 0);
        assert(net_gw_attach(gw, sv[0], NET_LINK_STREAM) == 0);
        peer = sv[1];
}

static void check_views(const uint8_t *f, size_t size, const struct net_pkt *k)
{
        const uint8_t *end = f + size;

        if (k->l4) {
                assert(k->l4 >= f && k->l4 + k->l4_len <= end);
        }
        if (k->payload) {
                assert(k->payload >= f && k->payload + k->payload_len <= end);
        }
}

/* Reads what the gateway sent and parses every frame of it. */
static void drain(void)
{
        static uint8_t buf[1 << 20];
        static size_t have;
        ssize_t n;

        while ((n = read(peer, buf + have, sizeof(buf) - have)) > 0) {
                size_t off = 0;

                have += (size_t)n;
                while (have - off >= 4) {
                        uint32_t len = (uint32_t)buf[off] << 24 | (uint32_t)buf[off + 1] << 16 |
                                       (uint32_t)buf[off + 2] << 8 | buf[off + 3];
                        struct net_pkt k;

                        assert(len <= NET_FRAME_MAX);
                        if (have - off < 4 + len)
                                break;
                        assert(net_pkt_parse(buf + off + 4, len, &k) == 0);
                        off += 4 + len;
                }
                memmove(buf, buf + off, have - off);
                have -= off;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct net_pkt k;
        uint8_t hdr[4] = {(uint8_t)(size >> 24), (uint8_t)(size >> 16), (uint8_t)(size >> 8),
                          (uint8_t)size};
        uint8_t *copy;

        if (!gw)
                setup();
        copy = malloc(size ? size : 1);
        assert(copy);
        memcpy(copy, data, size);
        if (net_pkt_parse(copy, size, &k) == 0)
                check_views(copy, size, &k);
        free(copy);

        if (size > NET_FRAME_MAX)
                return 0;
        if (write(peer, hdr, 4) != 4 || write(peer, data, size) != (ssize_t)size)
                abort();
        assert(net_gw_run(gw) == 0);
        drain();
        return 0;
}
