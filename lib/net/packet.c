/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: every frame from the guest passes through
 * net_pkt_parse() before anything looks at it. The parser walks a cursor
 * (a pointer and the bytes left) through Ethernet, then ARP or IPv4/IPv6
 * (with IPv4 options and up to eight IPv6 extension headers), then the
 * transport header. Every read goes through take(), which refuses to step
 * past the end, so a hostile frame can only make the parse fail. The IP
 * payload length comes from the IP header and must fit the frame (Ethernet
 * padding after it is ignored).
 *
 * The builders write headers in front of a payload that is already in
 * place (the TCP path reads host data straight into the frame), then
 * compute the checksum over the pseudo-header, the header and the payload.
 */
#include "packet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "lib/core/macro.h"

struct cursor {
        const uint8_t *p;
        size_t left;
};

/* Returns the next n bytes and advances, or NULL when fewer remain. */
static const uint8_t *take(struct cursor *c, size_t n)
{
        const uint8_t *p = c->p;

        if (n > c->left)
                return NULL;
        c->p += n;
        c->left -= n;
        return p;
}

void net_addr_from_v4(struct in6_addr *ret, const struct in_addr *v4)
{
        memset(ret, 0, sizeof(*ret));
        ret->s6_addr[10] = 0xff;
        ret->s6_addr[11] = 0xff;
        memcpy(&ret->s6_addr[12], v4, 4);
}

const char *net_addr_str(const struct in6_addr *a, char *buf, size_t size)
{
        if (net_addr_is_v4(a))
                inet_ntop(AF_INET, &a->s6_addr[12], buf, (socklen_t)size);
        else
                inet_ntop(AF_INET6, a, buf, (socklen_t)size);
        return buf;
}

static void addr_from_v4_bytes(struct in6_addr *ret, const uint8_t *p)
{
        struct in_addr v4;

        memcpy(&v4, p, 4);
        net_addr_from_v4(ret, &v4);
}

static int parse_arp(struct cursor *c, struct net_pkt *k)
{
        const uint8_t *h = take(c, 28);

        if (!h)
                return -EBADMSG;
        /* Ethernet hardware, IPv4 protocol, 6- and 4-byte addresses. */
        if (net_get16(h) != 1 || net_get16(h + 2) != NET_ETH_P_IP || h[4] != 6 || h[5] != 4)
                return -EPROTONOSUPPORT;
        k->arp_op = net_get16(h + 6);
        k->arp_sha = h + 8;
        addr_from_v4_bytes(&k->arp_spa, h + 14);
        addr_from_v4_bytes(&k->arp_tpa, h + 24);
        return 0;
}

/* Parses the TCP options we use (MSS, window scale); others are skipped. */
static int parse_tcp_opts(const uint8_t *o, size_t n, struct net_pkt *k)
{
        size_t i = 0;

        while (i < n) {
                uint8_t kind = o[i], len;

                if (kind == 0)
                        break;
                if (kind == 1) {
                        i++;
                        continue;
                }
                if (n - i < 2)
                        return -EBADMSG;
                len = o[i + 1];
                if (len < 2 || len > n - i)
                        return -EBADMSG;
                if (kind == 2 && len == 4)
                        k->mss = net_get16(o + i + 2);
                else if (kind == 3 && len == 3)
                        k->wscale = (int8_t)MIN(o[i + 2], 14);
                i += len;
        }
        return 0;
}

static int parse_l4(struct cursor *c, struct net_pkt *k)
{
        const uint8_t *h;

        k->l4 = c->p;
        k->l4_len = c->left;
        switch (k->proto) {
        case IPPROTO_TCP: {
                size_t doff;

                if (!(h = take(c, NET_TCP_LEN)))
                        return -EBADMSG;
                doff = (size_t)(h[12] >> 4) * 4;
                if (doff < NET_TCP_LEN)
                        return -EBADMSG;
                {
                        const uint8_t *opt = take(c, doff - NET_TCP_LEN);
                        if (!opt)
                                return -EBADMSG;
                        if (parse_tcp_opts(opt, doff - NET_TCP_LEN, k) < 0)
                                return -EBADMSG;
                }
                k->sport = net_get16(h);
                k->dport = net_get16(h + 2);
                k->seq = net_get32(h + 4);
                k->ack = net_get32(h + 8);
                k->tcp_flags = h[13] & 0x3f;
                k->win = net_get16(h + 14);
                break;
        }
        case IPPROTO_UDP: {
                uint16_t ulen;

                if (!(h = take(c, NET_UDP_LEN)))
                        return -EBADMSG;
                ulen = net_get16(h + 4);
                /* The UDP length must agree with the IP payload (a shorter
                 * one would leave bytes we cannot account for). */
                if (ulen < NET_UDP_LEN || ulen != k->l4_len)
                        return -EBADMSG;
                k->sport = net_get16(h);
                k->dport = net_get16(h + 2);
                break;
        }
        case IPPROTO_ICMP:
        case IPPROTO_ICMPV6:
                if (!(h = take(c, 4)))
                        return -EBADMSG;
                k->icmp_type = h[0];
                k->icmp_code = h[1];
                /* Echo and most others carry 4 more header bytes; NDP
                 * messages are parsed further by their handler. */
                if (c->left >= 4) {
                        k->icmp_id = net_get16(c->p);
                        k->icmp_seq = net_get16(c->p + 2);
                }
                break;
        default:
                break;
        }
        k->payload = c->p;
        k->payload_len = c->left;
        return 0;
}

static int parse_ip4(struct cursor *c, struct net_pkt *k)
{
        const uint8_t *h = c->p;
        size_t ihl, total;
        uint16_t frag;

        if (c->left < NET_IP4_LEN || h[0] >> 4 != 4)
                return -EBADMSG;
        ihl = (size_t)(h[0] & 0x0f) * 4;
        total = net_get16(h + 2);
        if (ihl < NET_IP4_LEN || total < ihl || total > c->left)
                return -EBADMSG;
        if (net_csum_fold(net_csum_add(0, h, ihl)) != 0)
                return -EBADMSG;
        c->left = total; /* drop Ethernet padding */
        take(c, ihl);
        k->family = AF_INET;
        k->ttl = h[8];
        k->proto = h[9];
        addr_from_v4_bytes(&k->src, h + 12);
        addr_from_v4_bytes(&k->dst, h + 16);
        frag = net_get16(h + 6);
        if (frag & 0x3fff) { /* MF set or a non-zero offset */
                k->fragment = true;
                k->l4 = c->p;
                k->l4_len = c->left;
                return 0;
        }
        return parse_l4(c, k);
}

static bool ip6_ext(uint8_t nh)
{
        return nh == 0 || nh == 43 || nh == 44 || nh == 60 || nh == 51;
}

static int parse_ip6(struct cursor *c, struct net_pkt *k)
{
        const uint8_t *h = take(c, NET_IP6_LEN);
        size_t plen;
        uint8_t nh;

        if (!h || h[0] >> 4 != 6)
                return -EBADMSG;
        plen = net_get16(h + 4);
        if (plen > c->left)
                return -EBADMSG;
        c->left = plen;
        k->family = AF_INET6;
        k->ttl = h[7];
        memcpy(&k->src, h + 8, 16);
        memcpy(&k->dst, h + 24, 16);
        /* IPv4-mapped addresses never travel in IPv6 headers (RFC 4291);
         * here they would be read as IPv4. */
        if (net_addr_is_v4(&k->src) || net_addr_is_v4(&k->dst))
                return -EBADMSG;
        nh = h[6];
        for (int i = 0; ip6_ext(nh); i++) {
                const uint8_t *e;
                size_t elen;

                if (i == 8)
                        return -EBADMSG;
                if (!(e = take(c, 8)))
                        return -EBADMSG;
                if (nh == 44) { /* fragment header: fixed 8 bytes */
                        k->fragment = true;
                        k->proto = e[0];
                        k->l4 = c->p;
                        k->l4_len = c->left;
                        return 0;
                }
                elen = nh == 51 ? ((size_t)e[1] + 2) * 4 : ((size_t)e[1] + 1) * 8;
                if (elen < 8 || !take(c, elen - 8))
                        return -EBADMSG;
                nh = e[0];
        }
        k->proto = nh;
        return parse_l4(c, k);
}

int net_pkt_parse(const uint8_t *frame, size_t len, struct net_pkt *ret)
{
        struct cursor c = {frame, len};
        struct net_pkt k = {.wscale = -1};
        const uint8_t *eth = take(&c, NET_ETH_LEN);
        int r;

        if (!eth)
                return -EBADMSG;
        k.eth_dst = eth;
        k.eth_src = eth + 6;
        k.ethertype = net_get16(eth + 12);
        switch (k.ethertype) {
        case NET_ETH_P_ARP:
                r = parse_arp(&c, &k);
                break;
        case NET_ETH_P_IP:
                r = parse_ip4(&c, &k);
                break;
        case NET_ETH_P_IPV6:
                r = parse_ip6(&c, &k);
                break;
        default:
                r = -EPROTONOSUPPORT;
        }
        if (r < 0)
                return r;
        *ret = k;
        return 0;
}

uint32_t net_csum_add(uint32_t sum, const void *data, size_t len)
{
        const uint8_t *p = data;
        uint64_t s = sum;

        while (len >= 8) {
                uint32_t a, b;
                memcpy(&a, p, 4);
                memcpy(&b, p + 4, 4);
                s += (uint64_t)a + b;
                p += 8;
                len -= 8;
        }
        if (len >= 4) {
                uint32_t a;
                memcpy(&a, p, 4);
                s += a;
                p += 4;
                len -= 4;
        }
        if (len >= 2) {
                uint16_t a;
                memcpy(&a, p, 2);
                s += a;
                p += 2;
                len -= 2;
        }
        if (len) {
                /* The odd byte is the high byte of a big-endian word: in
                 * host (little-endian) order that is the low byte. */
                uint8_t tail[2] = {*p, 0};
                uint16_t a;
                memcpy(&a, tail, 2);
                s += a;
        }
        while (s >> 32)
                s = (s & 0xffffffffu) + (s >> 32);
        return (uint32_t)s;
}

uint16_t net_csum_fold(uint32_t sum)
{
        while (sum >> 16)
                sum = (sum & 0xffff) + (sum >> 16);
        return (uint16_t)~sum;
}

/* The partial sum of the pseudo-header (in the byte order of the data). */
static uint32_t pseudo_sum(const struct in6_addr *src, const struct in6_addr *dst, uint8_t proto,
                           size_t l4_len)
{
        uint8_t tail[8] = {0};
        uint32_t sum;

        if (net_addr_is_v4(src)) {
                sum = net_csum_add(0, &src->s6_addr[12], 4);
                sum = net_csum_add(sum, &dst->s6_addr[12], 4);
                tail[1] = proto;
                net_put16(tail + 2, (uint16_t)l4_len);
                return net_csum_add(sum, tail, 4);
        }
        sum = net_csum_add(0, src, 16);
        sum = net_csum_add(sum, dst, 16);
        net_put32(tail, (uint32_t)l4_len);
        tail[7] = proto;
        return net_csum_add(sum, tail, 8);
}

static uint16_t ip4_id;

size_t net_ip_finish(uint8_t *ip, const struct in6_addr *src, const struct in6_addr *dst,
                     uint8_t proto, size_t l4_len)
{
        bool v4 = net_addr_is_v4(src);
        uint8_t *l4 = ip + (v4 ? NET_IP4_LEN : NET_IP6_LEN);
        size_t csum_off;
        uint32_t sum;
        uint16_t c;

        if (v4) {
                ip[0] = 0x45;
                ip[1] = 0;
                net_put16(ip + 2, (uint16_t)(NET_IP4_LEN + l4_len));
                net_put16(ip + 4, ip4_id++);
                net_put16(ip + 6, 0x4000); /* DF */
                ip[8] = 64;
                ip[9] = proto;
                net_put16(ip + 10, 0);
                memcpy(ip + 12, &src->s6_addr[12], 4);
                memcpy(ip + 16, &dst->s6_addr[12], 4);
                c = net_csum_fold(net_csum_add(0, ip, NET_IP4_LEN));
                memcpy(ip + 10, &c, 2);
        } else {
                net_put32(ip, 0x60000000u);
                net_put16(ip + 4, (uint16_t)l4_len);
                ip[6] = proto;
                ip[7] = 255; /* NDP demands 255; harmless for the rest */
                memcpy(ip + 8, src, 16);
                memcpy(ip + 24, dst, 16);
        }
        switch (proto) {
        case IPPROTO_TCP:
                csum_off = 16;
                break;
        case IPPROTO_UDP:
                csum_off = 6;
                break;
        default: /* ICMP, ICMPv6 */
                csum_off = 2;
        }
        net_put16(l4 + csum_off, 0);
        sum = proto == IPPROTO_ICMP ? 0 : pseudo_sum(src, dst, proto, l4_len);
        c = net_csum_fold(net_csum_add(sum, l4, l4_len));
        if (proto == IPPROTO_UDP && c == 0)
                c = 0xffff;
        memcpy(l4 + csum_off, &c, 2);
        return (size_t)(l4 - ip) + l4_len;
}

size_t net_frame_finish(uint8_t *frame, const uint8_t dst_mac[6], const uint8_t src_mac[6],
                        const struct in6_addr *src, const struct in6_addr *dst, uint8_t proto,
                        size_t l4_len)
{
        memcpy(frame, dst_mac, 6);
        memcpy(frame + 6, src_mac, 6);
        net_put16(frame + 12, net_addr_is_v4(src) ? NET_ETH_P_IP : NET_ETH_P_IPV6);
        return NET_ETH_LEN + net_ip_finish(frame + NET_ETH_LEN, src, dst, proto, l4_len);
}

size_t net_tcp_header(uint8_t *p, uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack,
                      uint8_t flags, uint16_t win, const uint8_t *opt, size_t opt_len)
{
        size_t len = NET_TCP_LEN + opt_len;

        net_put16(p, sport);
        net_put16(p + 2, dport);
        net_put32(p + 4, seq);
        net_put32(p + 8, ack);
        p[12] = (uint8_t)((len / 4) << 4);
        p[13] = flags;
        net_put16(p + 14, win);
        net_put16(p + 16, 0);
        net_put16(p + 18, 0);
        if (opt_len)
                memcpy(p + NET_TCP_LEN, opt, opt_len);
        return len;
}

void net_tcp_syn_opts(uint8_t opt[NET_TCP_SYN_OPT_LEN], uint16_t mss, uint8_t wscale)
{
        opt[0] = 2; /* MSS */
        opt[1] = 4;
        net_put16(opt + 2, mss);
        opt[4] = 1; /* NOP */
        opt[5] = 3; /* window scale */
        opt[6] = 3;
        opt[7] = wscale;
}
