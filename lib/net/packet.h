/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Frames on the guest link: one bounds-checked parser that turns an
 * Ethernet frame from the guest into views of its headers, and the builders
 * that write frames to the guest with correct IP, TCP, UDP and ICMP
 * checksums (nothing is offloaded over a stream or dgram backend).
 *
 * Addresses are kept as IPv6 everywhere: an IPv4 address is its IPv4-mapped
 * form (::ffff:a.b.c.d), so one type, one table and one comparison serve
 * both families.
 */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NET_ETH_LEN    14
#define NET_IP4_LEN    20
#define NET_IP6_LEN    40
#define NET_TCP_LEN    20
#define NET_UDP_LEN    8
#define NET_ICMP_LEN   8
#define NET_ETH_P_IP   0x0800
#define NET_ETH_P_ARP  0x0806
#define NET_ETH_P_IPV6 0x86dd
#define NET_FRAME_MAX  (NET_ETH_LEN + 65535u) /* the largest IPv4 packet in a frame */
#define NET_MTU_MIN    1280u                  /* IPv6's minimum link MTU */
#define NET_MTU_MAX    65520u

/* TCP flags */
#define NET_TCP_FIN 0x01
#define NET_TCP_SYN 0x02
#define NET_TCP_RST 0x04
#define NET_TCP_PSH 0x08
#define NET_TCP_ACK 0x10

/* Big-endian (network order) fields at any alignment. */
static inline uint16_t net_get16(const uint8_t *p)
{
        return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t net_get32(const uint8_t *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void net_put16(uint8_t *p, uint16_t v)
{
        p[0] = (uint8_t)(v >> 8);
        p[1] = (uint8_t)v;
}

static inline void net_put32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t)(v >> 24);
        p[1] = (uint8_t)(v >> 16);
        p[2] = (uint8_t)(v >> 8);
        p[3] = (uint8_t)v;
}

/* A parsed frame: views into the caller's buffer, valid while it is. */
struct net_pkt {
        const uint8_t *eth_dst, *eth_src;
        uint16_t ethertype;

        /* ARP (ethertype 0x0806, Ethernet/IPv4 only) */
        uint16_t arp_op;
        const uint8_t *arp_sha;
        struct in6_addr arp_spa, arp_tpa; /* mapped */

        /* IP */
        int family; /* AF_INET or AF_INET6; 0 for ARP */
        struct in6_addr src, dst;
        uint8_t proto;     /* the upper-layer protocol after extension headers */
        uint8_t ttl;       /* TTL or hop limit */
        bool fragment;     /* a fragment (IPv4 MF/offset, IPv6 fragment header) */
        const uint8_t *l4; /* transport header, then payload */
        size_t l4_len;

        /* TCP / UDP */
        uint16_t sport, dport;
        uint32_t seq, ack;
        uint8_t tcp_flags;
        uint16_t win;
        uint16_t mss;  /* 0: no MSS option */
        int8_t wscale; /* -1: no window scale option */

        /* ICMP / ICMPv6 */
        uint8_t icmp_type, icmp_code;
        uint16_t icmp_id, icmp_seq;

        const uint8_t *payload; /* after the transport header */
        size_t payload_len;
};

/* Parses one Ethernet frame. 0 on success; -EBADMSG when it is malformed
 * (truncated, bad lengths or header fields), -EPROTONOSUPPORT when it is
 * well formed but of a kind we do not handle (other ethertypes, VLAN tags,
 * non-Ethernet ARP). A fragment parses with fragment set and no transport
 * fields. Never reads outside [frame, frame + len). */
int net_pkt_parse(const uint8_t *frame, size_t len, struct net_pkt *ret);

/* The Internet checksum: 'sum' is a running 32-bit partial sum, the result
 * of net_csum_add() can be fed again; net_csum_fold() gives the final 16
 * bits in network byte order, complemented. */
/* Only the last chunk fed may have an odd length. */
uint32_t net_csum_add(uint32_t sum, const void *data, size_t len);
uint16_t net_csum_fold(uint32_t sum);

static inline bool net_addr_is_v4(const struct in6_addr *a)
{
        return IN6_IS_ADDR_V4MAPPED(a);
}

/* a.b.c.d as the mapped address. */
void net_addr_from_v4(struct in6_addr *ret, const struct in_addr *v4);
/* Formats an address without the ::ffff: prefix for mapped ones; buf holds
 * INET6_ADDRSTRLEN. Returns buf. */
const char *net_addr_str(const struct in6_addr *a, char *buf, size_t size);

/* Header space in front of the transport header of a frame to the guest. */
static inline size_t net_l4_off(bool v4)
{
        return NET_ETH_LEN + (v4 ? NET_IP4_LEN : NET_IP6_LEN);
}

/* Writes the IP header of a packet whose transport header and payload
 * (l4_len bytes) already follow it, then computes the transport checksum
 * (TCP, UDP, ICMP, ICMPv6) over them. The family follows src (both
 * addresses must be of one family). Returns the packet length. */
size_t net_ip_finish(uint8_t *ip, const struct in6_addr *src, const struct in6_addr *dst,
                     uint8_t proto, size_t l4_len);

/* The same for a frame whose transport part sits at net_l4_off(): the
 * Ethernet header, then net_ip_finish(). Returns the frame length. */
size_t net_frame_finish(uint8_t *frame, const uint8_t dst_mac[6], const uint8_t src_mac[6],
                        const struct in6_addr *src, const struct in6_addr *dst, uint8_t proto,
                        size_t l4_len);

/* Writes a TCP header (no options unless opt_len > 0: MSS and window scale
 * of a SYN, see net_tcp_syn_opts()) at p. Returns the header length. */
size_t net_tcp_header(uint8_t *p, uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack,
                      uint8_t flags, uint16_t win, const uint8_t *opt, size_t opt_len);

/* The options of our SYN / SYN-ACK: MSS and window scale (padded to 8). */
#define NET_TCP_SYN_OPT_LEN 8
void net_tcp_syn_opts(uint8_t opt[NET_TCP_SYN_OPT_LEN], uint16_t mss, uint8_t wscale);
