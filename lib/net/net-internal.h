/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internals of the gateway shared by its modules: the gateway object, the
 * flow table, the frame queue to the guest, and each module's entry points.
 * Nothing here is for the gateway's users (net.h is).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "net.h"
#include "packet.h"

#define NET_HOSTADDRS_MAX 256

struct net_hostaddrs {
        struct in6_addr a[NET_HOSTADDRS_MAX];
        size_t n;
};

int net_hostaddrs_load(struct net_hostaddrs *h);
bool net_hostaddrs_has(const struct net_hostaddrs *h, const struct in6_addr *a);
int net_hostaddrs_monitor_open(void);
/* Reads what is queued; true when the addresses may have changed. */
bool net_hostaddrs_monitor_drain(int fd);

/* What an epoll event refers to: u64 = type | index << 8 | generation << 32. */
enum ep_type {
        EP_LINK = 1, /* the frame socket (outer set) */
        EP_TIMER,    /* the timerfd (outer set) */
        EP_NETLINK,  /* address changes (outer set) */
        EP_INNER,    /* the inner epoll set of host sockets (outer set) */
        EP_FLOW,     /* a flow's host socket (inner set) */
        EP_LISTEN,   /* a published port's listener (inner set) */
        EP_DNS,      /* an upstream DNS query's socket (inner set) */
        EP_DNS_PEER, /* our end of a guest's TCP connection to the DNS service */
};

static inline uint64_t ep_ref(enum ep_type t, uint32_t idx, uint32_t gen)
{
        return (uint64_t)t | (uint64_t)(idx & 0xffffffu) << 8 | (uint64_t)gen << 32;
}

enum flow_type {
        FLOW_FREE = 0,
        FLOW_TCP,
        FLOW_UDP,
        FLOW_ICMP,
};

/* The flow as the guest sees it. All padding is zero (keys are hashed and
 * compared as bytes). */
struct flow_key {
        uint8_t proto; /* IPPROTO_TCP, _UDP, _ICMP (ICMPv6 echo too) */
        uint8_t pad;
        uint16_t gport; /* guest port (ICMP: echo id) */
        uint16_t rport; /* remote port (ICMP: 0) */
        uint16_t pad2;
        struct in6_addr gaddr, raddr;
};

#define FLOW_NONE UINT32_MAX

/* The key of the TCP or UDP flow a frame from the guest belongs to. */
static inline struct flow_key flow_key_of(const struct net_pkt *k, uint8_t proto)
{
        return (struct flow_key){
                .proto = proto,
                .gport = k->sport,
                .rport = k->dport,
                .gaddr = k->src,
                .raddr = k->dst,
        };
}

enum tcp_state {
        TS_CONNECTING = 1, /* guest SYN seen, host connect() in progress */
        TS_SYN_RCVD,       /* SYN-ACK sent to the guest, its ACK awaited */
        TS_SYN_SENT,       /* inbound: SYN sent to the guest */
        TS_ESTABLISHED,
        TS_LINGER, /* both sides closed: answers a late FIN for a moment */
};

enum {
        TCP_F_GUEST_FIN = 1u << 0, /* guest's FIN taken; host socket shut for writing once
                                    * the held data is written */
        TCP_F_HOST_EOF = 1u << 1,  /* the host side shut its end (EPOLLRDHUP) */
        TCP_F_FIN_SENT = 1u << 2,  /* our FIN is in snd_nxt */
        TCP_F_FIN_ACKED = 1u << 3,
        TCP_F_ACK_DUE = 1u << 4,  /* on the ACK list */
        TCP_F_PEEK_OFF = 1u << 5, /* SO_PEEK_OFF works on this socket */
        TCP_F_UNIX = 1u << 6,     /* a local stream (DNS), no MSG_TRUNC discard */
        TCP_F_INBOUND = 1u << 7,  /* opened from a published port */
        TCP_F_WANT_OUT = 1u << 8, /* the guest has data the host socket could not take */
        TCP_F_ACK_NOW = 1u << 9,  /* send an ACK even if nothing advanced */
        TCP_F_DROPPED = 1u << 10, /* guest data was dropped: the host socket was full */
};

struct tcp_flow {
        uint8_t state;
        uint8_t guest_ws, our_ws;
        uint8_t dupacks, retries;
        uint16_t flags;
        uint16_t mss;
        uint32_t snd_una, snd_nxt; /* our sequence space */
        uint32_t snd_max;          /* the highest snd_nxt so far */
        uint32_t fin_seq;          /* where our FIN sits (TCP_F_FIN_SENT) */
        uint32_t rcv_nxt;          /* the guest's */
        uint32_t guest_wnd;        /* bytes */
        uint32_t rto_ms;
        uint16_t last_win; /* the window field we last sent */
        uint32_t ack_sent; /* the ACK number we last sent */
        bool rto_armed;    /* the deadline is a retransmission timeout */
        uint8_t *held;     /* guest data acknowledged, not yet taken by the host socket */
        uint32_t held_len;
        struct tcp_ooo *ooo; /* guest data after a gap, by sequence (tcp.c) */
        uint32_t ooo_len;    /* its bytes */
        uint32_t ooo_n;      /* its segments */
};

struct udp_flow {
        bool inbound;                   /* from a published port: replies go through lfd */
        uint32_t listener;              /* its index */
        struct sockaddr_storage client; /* inbound: the host-side peer */
};

struct flow {
        uint8_t type;
        uint32_t gen;
        int fd;
        uint32_t hnext;              /* hash chain */
        uint32_t lru_prev, lru_next; /* UDP and ICMP: least recently used first */
        uint32_t events;             /* epoll interest now */
        uint64_t deadline;           /* CLOCK_MONOTONIC ns; 0: none */
        struct flow_key key;
        union {
                struct tcp_flow tcp;
                struct udp_flow udp; /* UDP; ICMP echo flows need nothing more */
        };
};

struct listener {
        int fd;
        struct net_port port;
};

struct dns_fwd; /* dnsfwd.c */

struct net_gw {
        struct net_gw_config cfg; /* pointers in it are not kept */
        struct net_policy policy;
        struct sockaddr_in6 *dns;
        size_t n_dns;
        struct in6_addr gw4m, guest4m; /* mapped forms of the IPv4 addresses */
        struct in6_addr gw_ll;         /* the gateway's link-local IPv6 address */
        struct in6_addr alias4, alias6;
        uint8_t guest_mac[6];

        int epfd, inner_fd, timer_fd, nl_fd;
        bool inner_paused;

        int link_fd;
        enum net_link link_kind;
        bool link_dead;
        uint8_t *rx;
        size_t rx_len;
        uint64_t rx_skip; /* stream: bytes of an oversized frame still to discard */

        uint8_t *tx; /* [len be32][frame] ... */
        size_t tx_head, tx_tail, tx_cap;

        struct flow *flows;
        uint32_t n_flows, free_head;
        uint32_t *buckets;
        uint32_t n_buckets; /* power of two */
        uint32_t n_tcp, n_udp, n_icmp;
        uint32_t lru_head, lru_tail; /* UDP */
        uint32_t *ack_list;
        uint32_t n_ack;

        struct listener *listeners;
        size_t n_listeners;

        struct dns_fwd *dnsf;
        struct net_hostaddrs host;

        uint64_t timer_armed; /* 0: not armed */
        uint64_t next_ra;
        uint64_t deny_window;
        unsigned deny_in_window;

        uint64_t ooo_bytes; /* out-of-order guest data kept, all flows */
        uint8_t *scratch;   /* NET_FRAME_MAX + 4: frames built one at a time */
        uint8_t *sink;      /* TCP without SO_PEEK_OFF: peeked bytes already in flight */
        struct net_gw_stats stats;
};

/* gw.c */
uint64_t net_now(void);
void net_timer_arm(struct net_gw *gw, uint64_t deadline);
/* Room for a frame of up to max bytes at the tail of the queue, or NULL
 * when the queue is full (the frame is then dropped and counted). */
uint8_t *net_tx_reserve(struct net_gw *gw, size_t max);
/* Bytes free at the tail of the queue. */
size_t net_tx_room(const struct net_gw *gw);
/* Queues the frame of len bytes written at p (from net_tx_reserve()). */
void net_tx_commit(struct net_gw *gw, uint8_t *p, size_t len);
/* Builds and queues a frame to the guest around an L4 part of l4_len bytes
 * already written at l4 (a pointer from net_tx_reserve() + net_l4_off()). */
void net_tx_l4(struct net_gw *gw, uint8_t *frame, const struct in6_addr *src,
               const struct in6_addr *dst, uint8_t proto, size_t l4_len);
/* The groups of an address with HOST (and no PUBLIC) for the host's own
 * addresses and the gateway's. */
uint32_t net_groups(struct net_gw *gw, const struct in6_addr *a);
/* Asks the policy about a new flow; on denial counts, logs (rate-limited)
 * and returns false. */
bool net_allow_flow(struct net_gw *gw, enum net_direction dir, uint8_t ipproto,
                    const struct in6_addr *src, uint16_t sport, const struct in6_addr *dst,
                    uint16_t dport);
void net_report_deny(struct net_gw *gw, const struct net_deny *d);
/* True when a is the gateway's address (either family). */
bool net_is_gw(const struct net_gw *gw, const struct in6_addr *a);
/* The gateway's address in one family (IPv4 in its mapped form). */
static inline const struct in6_addr *net_gw_addr(const struct net_gw *gw, bool v4)
{
        return v4 ? &gw->gw4m : &gw->cfg.gw6;
}
/* Where a flow to dst:port goes on the host (the host alias for the
 * gateway's own address), as a sockaddr_in or sockaddr_in6. Returns its
 * length; the family is ret->ss_family. */
socklen_t net_host_sockaddr(const struct net_gw *gw, const struct in6_addr *dst, uint16_t port,
                            struct sockaddr_storage *ret);
/* The sockaddr of a (mapped addresses become sockaddr_in). Returns its length. */
socklen_t net_sockaddr(const struct in6_addr *a, uint16_t port, struct sockaddr_storage *ret);
/* The inverse: a sockaddr_in/in6 to an address (mapped) and port. */
void net_sockaddr_addr(const struct sockaddr_storage *sa, struct in6_addr *ret, uint16_t *ret_port);
/* An ICMP/ICMPv6 destination unreachable ("administratively prohibited") for
 * the packet k, to the guest. */
void net_icmp_unreach(struct net_gw *gw, const struct net_pkt *k);
/* What the host's side reported about a packet of a flow, in terms both
 * ICMP versions can say (the order is that of gw.c's code tables). */
enum net_icmp_err {
        NET_ICMP_NET_UNREACH,
        NET_ICMP_HOST_UNREACH,
        NET_ICMP_PORT_UNREACH,
        NET_ICMP_PROHIBITED,
        NET_ICMP_TIME_EXCEEDED,
};
/* Passes an error about a packet the guest sent on the flow key back to it
 * as ICMP or ICMPv6. The packet is long gone, so the caller rebuilds the
 * start of its transport header (l4, at most NET_TCP_LEN bytes, a whole
 * header of the key's protocol) and the gateway its IP header. It comes
 * from the remote when the remote itself reported it, else from the
 * gateway, the guest's router. */
void net_icmp_flow_error(struct net_gw *gw, enum net_icmp_err err, const struct flow_key *key,
                         bool from_remote, const uint8_t *l4, size_t l4_len);
int net_inner_add(struct net_gw *gw, int fd, uint32_t events, uint64_t ref);

/* flow.c */
int net_flows_init(struct net_gw *gw, uint32_t capacity);
void net_flows_done(struct net_gw *gw);
uint32_t net_flow_lookup(struct net_gw *gw, const struct flow_key *k);
/* A free flow of the type, in the table under k; FLOW_NONE when full. */
uint32_t net_flow_new(struct net_gw *gw, enum flow_type type, const struct flow_key *k);
/* Closes its fd, unlinks it, frees the slot. */
void net_flow_free(struct net_gw *gw, uint32_t idx);
void net_flow_set_events(struct net_gw *gw, uint32_t idx, uint32_t events);
void net_flow_touch(struct net_gw *gw, uint32_t idx); /* most recently used */
uint32_t net_flow_lru_oldest(const struct net_gw *gw, enum flow_type type);
void net_flow_deadline(struct net_gw *gw, uint32_t idx, uint64_t deadline);

/* tcp.c */
void net_tcp_from_guest(struct net_gw *gw, const struct net_pkt *k);
void net_tcp_event(struct net_gw *gw, uint32_t idx, uint32_t events);
void net_tcp_timer(struct net_gw *gw, uint32_t idx);
void net_tcp_flush_acks(struct net_gw *gw);
/* Frees the out-of-order data a flow kept (flow.c, when the flow goes). */
void net_tcp_drop_ooo(struct net_gw *gw, struct tcp_flow *t);
/* Resumes sending to the guest on every flow (after the queue drained). */
void net_tcp_resume(struct net_gw *gw);
/* Opens a flow into the guest for an accepted connection (published port). */
void net_tcp_inbound(struct net_gw *gw, int fd, const struct net_port *port,
                     const struct sockaddr_storage *peer);

/* udp.c: UDP and ICMP echo */
void net_udp_from_guest(struct net_gw *gw, const struct net_pkt *k);
void net_udp_event(struct net_gw *gw, uint32_t idx, uint32_t events);
void net_udp_timer(struct net_gw *gw, uint32_t idx);
void net_udp_inbound(struct net_gw *gw, struct listener *l, uint32_t lidx);
void net_icmp_from_guest(struct net_gw *gw, const struct net_pkt *k);
void net_icmp_event(struct net_gw *gw, uint32_t idx, uint32_t events);
/* Sends a UDP datagram to the guest. */
void net_udp_to_guest(struct net_gw *gw, const struct in6_addr *src, uint16_t sport,
                      const struct in6_addr *dst, uint16_t dport, const void *data, size_t len);

/* ports.c */
int net_ports_open(struct net_gw *gw);
void net_ports_close(struct net_gw *gw);
void net_listen_event(struct net_gw *gw, uint32_t idx);

/* dnsfwd.c */
int net_dnsf_new(struct net_gw *gw);
void net_dnsf_free(struct net_gw *gw);
void net_dnsf_udp(struct net_gw *gw, const struct net_pkt *k);
int net_dnsf_tcp_open(struct net_gw *gw, int *ret_fd);
void net_dnsf_event(struct net_gw *gw, enum ep_type t, uint32_t idx, uint32_t gen, uint32_t events);
/* Retries or fails the queries past their deadline; the next deadline (0: none). */
uint64_t net_dnsf_timer(struct net_gw *gw, uint64_t now);
/* The names this sandbox resolved to a (pins for domain rules); fills at
 * most max pointers, valid until the next DNS answer. */
size_t net_dnsf_names(struct net_gw *gw, const struct in6_addr *a, const char **names, size_t max);
