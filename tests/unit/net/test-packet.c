/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the frame layer: frames built by the builders parse back
 * with the same fields, checksums verify (the sum over a correct packet
 * folds to zero), options and extension headers are read, and every kind
 * of truncation or bogus length is refused without reading past the end.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/net/packet.h"

static const uint8_t mac_a[6] = {2, 0, 0, 0, 0, 1}, mac_b[6] = {2, 0, 0, 0, 0, 2};

static struct in6_addr A(const char *s) {
        struct in6_addr a;
        struct in_addr v4;

        if (inet_pton(AF_INET, s, &v4) == 1)
                net_addr_from_v4(&a, &v4);
        else
                assert_int_equal(inet_pton(AF_INET6, s, &a), 1);
        return a;
}

/* The transport checksum of a parsed packet, pseudo-header included: 0
 * when it is right. */
static uint16_t
verify_l4(const struct net_pkt *k)
{
        uint32_t sum = 0;
        uint8_t tail[8] = {0};

        if (k->proto != IPPROTO_ICMP) {
                if (k->family == AF_INET) {
                        sum = net_csum_add(sum, &k->src.s6_addr[12], 4);
                        sum = net_csum_add(sum, &k->dst.s6_addr[12], 4);
                        tail[1] = k->proto;
                        tail[2] = (uint8_t)(k->l4_len >> 8);
                        tail[3] = (uint8_t)k->l4_len;
                        sum = net_csum_add(sum, tail, 4);
                } else {
                        sum = net_csum_add(sum, &k->src, 16);
                        sum = net_csum_add(sum, &k->dst, 16);
                        tail[2] = (uint8_t)(k->l4_len >> 8);
                        tail[3] = (uint8_t)k->l4_len;
                        tail[7] = k->proto;
                        sum = net_csum_add(sum, tail, 8);
                }
        }
        return net_csum_fold(net_csum_add(sum, k->l4, k->l4_len));
}

static size_t build_tcp(uint8_t *f, const char *src, const char *dst, const char *payload, bool syn)
{
        struct in6_addr s = A(src), d = A(dst);
        bool v4 = net_addr_is_v4(&s);
        uint8_t opt[NET_TCP_SYN_OPT_LEN];
        size_t hl, n = strlen(payload);

        net_tcp_syn_opts(opt, 1460, 7);
        hl = net_tcp_header(f + net_l4_off(v4), 1234, 80, 1000, 2000,
                            syn ? NET_TCP_SYN : NET_TCP_ACK | NET_TCP_PSH, 512, opt,
                            syn ? sizeof(opt) : 0);
        memcpy(f + net_l4_off(v4) + hl, payload, n);
        return net_frame_finish(f, mac_a, mac_b, &s, &d, IPPROTO_TCP, hl + n);
}

static void test_tcp_roundtrip(void **state)
{
        uint8_t f[256];
        struct net_pkt k;
        size_t n;

        n = build_tcp(f, "10.0.0.2", "1.2.3.4", "hello", false);
        assert_int_equal(n, 14 + 20 + 20 + 5);
        assert_int_equal(net_pkt_parse(f, n, &k), 0);
        assert_int_equal(k.family, AF_INET);
        assert_int_equal(k.proto, IPPROTO_TCP);
        assert_int_equal(k.sport, 1234);
        assert_int_equal(k.dport, 80);
        assert_int_equal(k.seq, 1000);
        assert_int_equal(k.ack, 2000);
        assert_int_equal(k.tcp_flags, NET_TCP_ACK | NET_TCP_PSH);
        assert_int_equal(k.win, 512);
        assert_int_equal(k.payload_len, 5);
        assert_memory_equal(k.payload, "hello", 5);
        assert_int_equal(k.wscale, -1);
        assert_int_equal(k.mss, 0);
        assert_memory_equal(k.eth_dst, mac_a, 6);
        assert_int_equal(verify_l4(&k), 0);
        /* Ethernet padding after the IP packet is ignored. */
        memset(f + n, 0xee, 10);
        assert_int_equal(net_pkt_parse(f, n + 10, &k), 0);
        assert_int_equal(k.payload_len, 5);

        n = build_tcp(f, "fd00::2", "2001:db8::1", "", true);
        assert_int_equal(net_pkt_parse(f, n, &k), 0);
        assert_int_equal(k.family, AF_INET6);
        assert_int_equal(k.mss, 1460);
        assert_int_equal(k.wscale, 7);
        assert_int_equal(k.tcp_flags, NET_TCP_SYN);
        assert_int_equal(verify_l4(&k), 0);
        /* Odd payload lengths checksum right too. */
        n = build_tcp(f, "fd00::2", "2001:db8::1", "odd", false);
        assert_int_equal(net_pkt_parse(f, n, &k), 0);
        assert_int_equal(verify_l4(&k), 0);
}

static void test_udp_icmp(void **state)
{
        uint8_t f[256], *p;
        struct in6_addr s = A("10.0.0.2"), d = A("10.0.0.1");
        struct net_pkt k;
        size_t n;

        p = f + net_l4_off(true);
        memcpy(p,
               "\x00\x35\x04\xd2\x00\x0b\x00\x00"
               "xyz",
               11);
        n = net_frame_finish(f, mac_a, mac_b, &s, &d, IPPROTO_UDP, 11);
        assert_int_equal(net_pkt_parse(f, n, &k), 0);
        assert_int_equal(k.sport, 53);
        assert_int_equal(k.dport, 1234);
        assert_int_equal(k.payload_len, 3);
        assert_int_equal(verify_l4(&k), 0);
        /* The UDP length must agree with the IP length. */
        p[5] = 12;
        assert_int_equal(net_pkt_parse(f, n, &k), -EBADMSG);

        memcpy(p,
               "\x08\x00\x00\x00\x12\x34\x00\x01"
               "data",
               12);
        n = net_frame_finish(f, mac_a, mac_b, &s, &d, IPPROTO_ICMP, 12);
        assert_int_equal(net_pkt_parse(f, n, &k), 0);
        assert_int_equal(k.icmp_type, 8);
        assert_int_equal(k.icmp_id, 0x1234);
        assert_int_equal(k.icmp_seq, 1);
        assert_int_equal(verify_l4(&k), 0);
}

static void test_arp(void **state)
{
        uint8_t f[42] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0,  2, 0x08, 0x06,
                         0,    1,    0x08, 0,    6,    4,    0, 1, 2, 0, 0,  0, 0,    2,
                         10,   0,    0,    2,    0,    0,    0, 0, 0, 0, 10, 0, 0,    1};
        struct net_pkt k;
        struct in6_addr want = A("10.0.0.1");

        assert_int_equal(net_pkt_parse(f, sizeof(f), &k), 0);
        assert_int_equal(k.arp_op, 1);
        assert_memory_equal(&k.arp_tpa, &want, sizeof(want));
        assert_int_equal(net_pkt_parse(f, sizeof(f) - 1, &k), -EBADMSG);
        f[18] = 8; /* hardware address length */
        assert_int_equal(net_pkt_parse(f, sizeof(f), &k), -EPROTONOSUPPORT);
}

static void test_ipv6_ext(void **state)
{
        uint8_t f[256] = {0};
        struct in6_addr s = A("fd00::2"), d = A("ff02::16");
        struct net_pkt k;
        uint8_t *p = f + net_l4_off(false);
        size_t n;

        /* hop-by-hop (router alert) then ICMPv6 type 143 */
        memcpy(p, "\x3a\x00\x05\x02\x00\x00\x01\x00\x8f\x00\x00\x00", 12);
        n = net_frame_finish(f, mac_a, mac_b, &s, &d, 0, 12);
        assert_int_equal(net_pkt_parse(f, n, &k), 0);
        assert_int_equal(k.proto, IPPROTO_ICMPV6);
        assert_int_equal(k.icmp_type, 143);
        /* nine extension headers are too many */
        for (int i = 0; i < 9; i++)
                memset(p + 8 * i, 0, 8);
        p[8 * 8] = 59;
        n = net_frame_finish(f, mac_a, mac_b, &s, &d, 0, 72);
        assert_int_equal(net_pkt_parse(f, n, &k), -EBADMSG);
        /* IPv4-mapped addresses never travel in IPv6 headers */
        s = A("::ffff:10.0.0.2");
        memcpy(p, "\x80\x00\x00\x00\x00\x01\x00\x01", 8);
        n = net_frame_finish(f, mac_a, mac_b, &d, &d, IPPROTO_ICMPV6, 8);
        memcpy(f + NET_ETH_LEN + 8, &s, 16);
        assert_int_equal(net_pkt_parse(f, n, &k), -EBADMSG);
        s = A("fd00::2");
        /* a fragment header marks a fragment */
        memcpy(p, "\x11\x00\x00\x01\x00\x00\x00\x07", 8);
        n = net_frame_finish(f, mac_a, mac_b, &s, &d, 44, 16);
        assert_int_equal(net_pkt_parse(f, n, &k), 0);
        assert_true(k.fragment);
}

static void test_truncation(void **state)
{
        uint8_t f[256];
        struct net_pkt k;
        size_t n = build_tcp(f, "10.0.0.2", "1.2.3.4", "hello", true);

        /* Every prefix of a valid frame fails cleanly (heap copies let ASan
         * catch a read past the end). */
        for (size_t i = 0; i < n; i++) {
                uint8_t *c = malloc(i ? i : 1);
                memcpy(c, f, i);
                assert_true(net_pkt_parse(c, i, &k) < 0);
                free(c);
        }
        /* Bad IPv4 header checksum, IHL, total length, TCP offset. */
        f[24] ^= 1;
        assert_int_equal(net_pkt_parse(f, n, &k), -EBADMSG);
        f[24] ^= 1;
        f[14] = 0x44;
        assert_int_equal(net_pkt_parse(f, n, &k), -EBADMSG);
        f[14] = 0x45;
        f[14 + 20 + 12] = 0x10; /* data offset 4 */
        assert_int_equal(net_pkt_parse(f, n, &k), 0 - EBADMSG);
        f[12] = 0x81; /* VLAN */
        assert_int_equal(net_pkt_parse(f, n, &k), -EPROTONOSUPPORT);
}

static void test_csum(void **state)
{
        /* RFC 1071's example: 0x0001 f203 f4f5 f6f7 sums to 0xddf2. */
        static const uint8_t d[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
        uint16_t c = net_csum_fold(net_csum_add(0, d, sizeof(d)));

        assert_int_equal(ntohs(c), (uint16_t)~0xddf2);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_tcp_roundtrip), cmocka_unit_test(test_udp_icmp),
                cmocka_unit_test(test_arp),           cmocka_unit_test(test_ipv6_ext),
                cmocka_unit_test(test_truncation),    cmocka_unit_test(test_csum),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
