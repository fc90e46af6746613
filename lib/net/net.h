/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The userspace network gateway of a sandbox (docs/network.md).
 *
 * The guest has one virtio-net NIC; QEMU hands its frames to us over a Unix
 * socket (`-netdev stream`: each frame preceded by its length as 4 bytes
 * big-endian; or `-netdev dgram` / a TAP fd: one frame per datagram). The
 * gateway answers ARP and NDP, terminates the guest's TCP, UDP and ICMP echo
 * flows and re-originates them from ordinary host sockets, serves DNS on
 * its own address, opens published ports into the guest, and applies the
 * egress/ingress policy to every flow and DNS name.
 *
 * It runs without threads inside its host's epoll loop: net_gw_fd() is an
 * epoll fd that becomes readable when there is work; the host then calls
 * net_gw_run(), which does what is ready and never blocks.
 *
 * Addresses: every struct in6_addr here may hold an IPv4 address in its
 * IPv4-mapped form (::ffff:a.b.c.d); that is how IPv4 is represented.
 */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/core/macro.h"

/* ------------------------------------------------------------------------ */
/* Policy                                                                   */
/* ------------------------------------------------------------------------ */

/* Address groups. An address may be in several (the host's own loopback is
 * LOOPBACK and HOST); PUBLIC is only for globally routable addresses that
 * are none of the host's own. */
enum net_group {
        NET_GROUP_PUBLIC = 1u << 0,
        NET_GROUP_PRIVATE = 1u << 1,    /* 10/8 172.16/12 192.168/16 100.64/10 fc00::/7 */
        NET_GROUP_LOOPBACK = 1u << 2,   /* 127/8 ::1 */
        NET_GROUP_LINK_LOCAL = 1u << 3, /* 169.254/16 fe80::/10 */
        NET_GROUP_METADATA = 1u << 4,   /* 169.254.169.254 fd00:ec2::254 */
        NET_GROUP_MULTICAST = 1u << 5,  /* 224/4 255.255.255.255 ff00::/8 */
        NET_GROUP_HOST = 1u << 6,       /* every address of the host, and the gateway */
};

enum net_action {
        NET_DENY = 0,
        NET_ALLOW = 1,
};

enum net_direction {
        NET_DIR_ANY = 0,
        NET_DIR_EGRESS = 1,  /* the guest opens a flow */
        NET_DIR_INGRESS = 2, /* a published port is connected from the host side */
};

enum net_proto {
        NET_PROTO_ANY = 0,
        NET_PROTO_TCP = 1,
        NET_PROTO_UDP = 2,
        NET_PROTO_ICMP = 3, /* echo, IPv4 and IPv6 */
};

enum net_target {
        NET_TARGET_ANY = 0,
        NET_TARGET_CIDR = 1,   /* an address is a CIDR with a full prefix */
        NET_TARGET_DOMAIN = 2, /* exactly this name */
        NET_TARGET_SUFFIX = 3, /* "*.example.com": names below it, not the name itself */
        NET_TARGET_GROUP = 4,
};

#define NET_NAME_MAX         253 /* a DNS name in text, without the trailing dot */
#define NET_POLICY_MAX_RULES 1024

struct net_rule {
        enum net_action action;
        enum net_direction direction;
        enum net_target target;
        struct in6_addr addr;        /* CIDR: the network (host bits zero) */
        uint8_t prefix;              /* CIDR: on the IPv6 scale (IPv4 /24 is 120) */
        uint32_t group;              /* GROUP: one NET_GROUP_* bit */
        char name[NET_NAME_MAX + 1]; /* DOMAIN, SUFFIX: lower case, no dots at the ends */
        enum net_proto proto;
        uint16_t port_lo, port_hi; /* both 0: any port */
};

/* A policy: rules plus the defaults for flows no rule matches.
 *
 * Evaluation: among the rules whose direction, target, protocol and ports
 * match, the most specific decides; specificity ranks the target first
 * (an address or exact name > a CIDR or *.suffix, longer prefixes and
 * suffixes first > a group > any), then a protocol over none, then a
 * narrower port range. Between equally specific rules deny wins; between
 * equally specific rules of one action the first given wins. */
struct net_policy {
        enum net_action default_egress;
        enum net_action default_ingress;
        bool dns; /* answer DNS on the gateway address (names still obey the rules) */
        struct net_rule *rules;
        size_t n_rules;
};

/* Parses "allow|deny[:egress|ingress|any]@TARGET[:tcp|udp|icmp|any[:PORT|LO-HI]]".
 * TARGET: an IPv4/IPv6 address or CIDR (an IPv6 one may be bracketed),
 * "any" or "*", a group name (public, private, loopback, link-local,
 * metadata, multicast, host), "*.suffix", or a domain name. The direction
 * defaults to egress. -EINVAL on anything else. */
int net_policy_parse_rule(const char *text, struct net_rule *ret);

/* The canonical text of a rule (parses back to the same rule). Returns the
 * length it needs, like snprintf. */
int net_rule_format(const struct net_rule *r, char *buf, size_t size);

/* Fills a policy from the --net value: "public" (the default), "none"
 * (nothing, not even DNS), "all" (everything, the host included), or a
 * comma-separated list of groups ("public,private,host"): egress to each
 * allowed, DNS served, everything else denied. Ingress defaults to allow
 * (only published ports take ingress). -EINVAL on an unknown word, -ENOMEM. */
int net_policy_from_profile(const char *spec, struct net_policy *ret);

/* Appends a rule (copied). -E2BIG past NET_POLICY_MAX_RULES, -ENOMEM. */
int net_policy_add_rule(struct net_policy *p, const struct net_rule *r);

/* A deep copy. 0 or -ENOMEM. */
int net_policy_copy(const struct net_policy *src, struct net_policy *ret);

/* Frees the rules; the struct may be reused. */
void net_policy_done(struct net_policy *p);

/* The groups of an address by its range alone (HOST is added by whoever
 * knows the host's addresses; PUBLIC is then cleared). IPv4-mapped and
 * IPv4-compatible forms are classified as the IPv4 address. */
uint32_t net_addr_classify(const struct in6_addr *a);

/* A question put to the policy. */
struct net_policy_query {
        enum net_direction direction;
        enum net_proto proto;        /* ANY: a DNS name, or "could any flow be allowed" */
        const struct in6_addr *addr; /* NULL for a DNS name question */
        uint32_t groups;             /* of addr */
        uint16_t port;               /* 0 with NET_PROTO_ANY */
        const char *const *names;    /* names addr was resolved from (DNS pins) */
        size_t n_names;
        bool ignore_ports; /* match rules whatever their protocol and ports */
};

/* The decision and, through ret_rule, the rule that made it (NULL: the
 * default). */
enum net_action net_policy_eval(const struct net_policy *p, const struct net_policy_query *q,
                                const struct net_rule **ret_rule);

/* ------------------------------------------------------------------------ */
/* Published ports                                                          */
/* ------------------------------------------------------------------------ */

struct net_port {
        enum net_proto proto; /* TCP or UDP */
        struct in6_addr bind; /* host address to listen on (mapped for IPv4) */
        uint16_t host_port;
        uint16_t guest_port;
};

/* Parses "-p [BIND:]HOST:GUEST[/tcp|/udp]" (BIND defaults to 127.0.0.1; an
 * IPv6 BIND is bracketed: "[::1]:8080:80"). Ports 1-65535. -EINVAL. */
int net_port_parse(const char *text, struct net_port *ret);

/* "127.0.0.1:8080:80/tcp". Returns the length needed, like snprintf. */
int net_port_format(const struct net_port *p, char *buf, size_t size);

/* ------------------------------------------------------------------------ */
/* Addresses of a sandbox                                                   */
/* ------------------------------------------------------------------------ */

/* Default pools (docs/network.md says why these): the sandbox with slot N
 * gets the N-th /30 of the IPv4 pool and the N-th /64 of the IPv6 pool. */
/* A DNS server: "IPv4", "IPv4:PORT", "IPv6" or "[IPv6]:PORT" (port 53 when
 * absent), as an IPv6 socket address (IPv4 mapped). 0 or -EINVAL. */
struct sockaddr_in6;
int net_nameserver_parse(const char *text, struct sockaddr_in6 *ret);

#define NET_POOL4_DEFAULT "10.115.0.0/16"
#define NET_POOL6_DEFAULT "fd6d:7362:0::/48"
#define NET_MTU_DEFAULT   65520u

struct net_gw_config;

/* Fills the addresses and MACs of c for the given slot: gateway = first
 * host of the /30 (/64), guest = second, MACs 02:6d:73:SS:SS:01 (gateway)
 * and :02 (guest) with the slot's low 16 bits. pool6 NULL: no IPv6. The
 * slot wraps within the pool. -EINVAL for a malformed pool or one too
 * small (IPv4 longer than /30, IPv6 longer than /64). */
int net_pool_assign(const char *pool4, const char *pool6, uint32_t slot, struct net_gw_config *c);

/* ------------------------------------------------------------------------ */
/* The gateway                                                              */
/* ------------------------------------------------------------------------ */

/* A denied flow or DNS name, for the host's system log. */
struct net_deny {
        enum net_direction direction;
        uint8_t ipproto; /* IPPROTO_TCP, _UDP, _ICMP, _ICMPV6; 0 for a DNS name */
        struct in6_addr src, dst;
        uint16_t sport, dport;
        const char *name;            /* the DNS name (a name denial, a rebind), or NULL */
        bool rebind;                 /* a DNS answer dropped by rebind protection (dst) */
        const struct net_rule *rule; /* the rule that denied, NULL: the default */
};

/* "denied tcp 10.0.0.2:4321 -> 192.168.1.5:22 by rule deny@private",
 * "denied dns example.com by rule deny@example.com",
 * "denied dns answer evil.test -> 10.0.0.1 (rebind protection)",
 * "denied udp ... by default (egress deny)". Like snprintf. */
int net_deny_format(const struct net_deny *d, char *buf, size_t size);

struct net_gw_config {
        uint8_t guest_mac[6], gw_mac[6];
        bool ipv4;
        struct in_addr guest4, gw4;
        uint8_t prefix4;
        bool ipv6;
        struct in6_addr guest6, gw6;
        uint8_t prefix6;
        uint32_t mtu; /* the guest's MTU: NET_MTU_MIN..NET_MTU_MAX */

        const struct net_policy *policy; /* copied; NULL: the "public" profile */

        /* DNS upstreams (IPv4 as mapped addresses, port 0 means 53); none:
         * the nameservers of /etc/resolv.conf. */
        const struct sockaddr_in6 *dns;
        size_t n_dns;
        uint32_t dns_timeout_ms; /* per upstream try; 0: 5 s */

        const struct net_port *ports;
        size_t n_ports;

        /* Limits; 0 picks the default in brackets. */
        uint32_t max_tcp;                /* concurrent TCP flows [256]; past it new SYNs get RST */
        uint32_t max_udp;                /* UDP flows [256]; past it the least recently used goes */
        uint32_t max_icmp;               /* ICMP echo flows [64] */
        uint32_t tcp_connect_timeout_ms; /* [30 s] */
        uint32_t udp_idle_ms;            /* [60 s; 10 s for port 53] */

        /* Where the host alias (the gateway's own address) leads: NULL means
         * 127.0.0.1 and ::1. */
        const struct in6_addr *host_alias4, *host_alias6;

        /* Called for every denial, at most 20 a second (the rest are only
         * counted). May be NULL. */
        void (*on_deny)(const struct net_deny *d, void *userdata);
        void *userdata;
};

/* Counters since creation. */
struct net_gw_stats {
        uint64_t rx_frames, rx_bytes; /* from the guest */
        uint64_t tx_frames, tx_bytes; /* to the guest */
        uint64_t rx_malformed;        /* dropped: failed to parse */
        uint64_t rx_unsupported;      /* dropped: not for us or not handled */
        uint64_t rx_fragments;        /* dropped: IP fragments (not reassembled) */
        uint64_t tx_dropped;          /* frames to the guest dropped: its queue was full */
        uint64_t tcp_active, udp_active, icmp_active; /* flows open now */
        uint64_t tcp_opened, udp_opened, icmp_opened; /* flows ever opened */
        uint64_t tcp_limit_rst;                       /* SYNs refused: max_tcp reached */
        uint64_t tcp_retransmits;                     /* segments resent to the guest */
        uint64_t tcp_held;      /* guest bytes held: the host socket was full */
        uint64_t tcp_host_full; /* guest data dropped: host socket full, HELD_MAX held */
        uint64_t tcp_ooo;       /* guest segments kept after a gap until it was filled */
        uint64_t udp_evicted;   /* UDP flows closed to make room */
        uint64_t icmp_errors;   /* errors from beyond the host passed to the guest as ICMP */
        uint64_t bytes_to_host, bytes_from_host; /* TCP and UDP payload */
        uint64_t denied_egress, denied_ingress;
        uint64_t dns_queries, dns_denied, dns_rebind_blocked, dns_timeouts, dns_truncated;
};

struct net_gw;

/* Fills in the defaults (pool slot 0, MTU 65520, limits, public profile). */
void net_gw_config_init(struct net_gw_config *c);

/* Creates the gateway: validates c, copies what it needs, opens the
 * published ports' listeners (-EADDRINUSE etc. when one cannot be bound)
 * and its timer and netlink sockets. 0 or -errno. */
int net_gw_new(const struct net_gw_config *c, struct net_gw **ret);

/* Closes every flow and socket. NULL is allowed. Returns NULL. */
struct net_gw *net_gw_free(struct net_gw *gw);

/* The epoll fd to watch for EPOLLIN. */
int net_gw_fd(const struct net_gw *gw);

enum net_link {
        NET_LINK_STREAM = 0, /* 4-byte big-endian length before each frame */
        NET_LINK_DGRAM = 1,  /* one frame per datagram (QEMU dgram, a TAP fd) */
};

/* Hands the gateway the frame socket (it takes ownership, sets it
 * non-blocking). -EBUSY when one is attached. */
int net_gw_attach(struct net_gw *gw, int fd, enum net_link kind);

/* Does what is ready: frames from the guest, host sockets, timers. Never
 * blocks. 0; -EPIPE once the frame socket has closed (the guest's side
 * went away; the gateway stays usable for net_gw_stats()). */
int net_gw_run(struct net_gw *gw);

void net_gw_get_stats(const struct net_gw *gw, struct net_gw_stats *ret);

DEFINE_FREEP(struct net_gw, net_gw_free)
