/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: the gateway object and its event loop.
 *
 * Two epoll sets. The outer one (net_gw_fd(), nested in the host's loop)
 * holds the frame socket, the timerfd, the netlink socket that reports
 * host address changes, and the inner set; the inner set holds every host
 * socket (flows, listeners, DNS upstreams). Backpressure is one epoll_ctl:
 * when the queue of frames to the guest passes half its size (the guest is
 * not reading), the inner set leaves the outer one, so no host socket is
 * read until the queue has drained to a quarter; then it comes back and
 * every TCP flow is asked to resume. Host sockets are edge-triggered, so
 * nothing is lost while the set is out.
 *
 * Frames from the guest: read in batches (stream: a buffer that holds at
 * least one whole frame, parsed by length prefix; an impossible length is
 * skipped byte-exactly, so the stream never desynchronises), each parsed by
 * net_pkt_parse() and dispatched: ARP, NDP and echo to the gateway are
 * answered here; TCP, UDP, ICMP echo and DNS go to their modules. After a
 * batch the TCP ACKs it made due are sent, one per flow.
 *
 * Frames to the guest: one linear queue of [length][frame] records, built
 * in place (the TCP path reads host data straight into it) and written to
 * the frame socket as it accepts them.
 *
 * Timers: one timerfd, armed at the earliest deadline anyone asked for.
 * When it fires, every flow whose deadline has passed runs its timer; then
 * it is re-armed at the earliest deadline left. Flows are few (hundreds),
 * so the scan costs less than a timer wheel's bookkeeping.
 */
#include "net-internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "lib/core/log.h"
#include "lib/core/util.h"

#define RX_CAP           (4 + NET_FRAME_MAX + 128 * 1024)
#define TX_CAP           (4u * 1024 * 1024)
#define RA_INTERVAL_NS   (600ull * 1000000000ull)
#define RA_LIFETIME_S    1800
#define DENY_LOG_PER_SEC 20
#define LINK_BATCH       64

uint64_t net_now(void)
{
        return now_ns(CLOCK_MONOTONIC);
}

void net_gw_config_init(struct net_gw_config *c)
{
        *c = (struct net_gw_config){0};
        net_pool_assign(NET_POOL4_DEFAULT, NET_POOL6_DEFAULT, 0, c);
        c->mtu = NET_MTU_DEFAULT;
}

/* ------------------------------------------------------------------------ */
/* Addresses and policy helpers                                             */
/* ------------------------------------------------------------------------ */

bool net_is_gw(const struct net_gw *gw, const struct in6_addr *a)
{
        return (gw->cfg.ipv4 && IN6_ARE_ADDR_EQUAL(a, &gw->gw4m)) ||
               (gw->cfg.ipv6 &&
                (IN6_ARE_ADDR_EQUAL(a, &gw->cfg.gw6) || IN6_ARE_ADDR_EQUAL(a, &gw->gw_ll)));
}

uint32_t net_groups(struct net_gw *gw, const struct in6_addr *a)
{
        uint32_t g = net_addr_classify(a);

        if (net_is_gw(gw, a) || net_hostaddrs_has(&gw->host, a))
                g = (g & ~(uint32_t)NET_GROUP_PUBLIC) | NET_GROUP_HOST;
        return g;
}

socklen_t net_sockaddr(const struct in6_addr *a, uint16_t port, struct sockaddr_storage *ret)
{
        memset(ret, 0, sizeof(*ret));
        if (net_addr_is_v4(a)) {
                struct sockaddr_in *s = (struct sockaddr_in *)ret;
                s->sin_family = AF_INET;
                s->sin_port = htons(port);
                memcpy(&s->sin_addr, &a->s6_addr[12], 4);
                return sizeof(*s);
        }
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ret;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        s6->sin6_addr = *a;
        return sizeof(*s6);
}

void net_sockaddr_addr(const struct sockaddr_storage *sa, struct in6_addr *ret, uint16_t *ret_port)
{
        if (sa->ss_family == AF_INET) {
                const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
                net_addr_from_v4(ret, &s->sin_addr);
                *ret_port = ntohs(s->sin_port);
        } else {
                const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
                *ret = s6->sin6_addr;
                *ret_port = ntohs(s6->sin6_port);
        }
}

socklen_t net_host_sockaddr(const struct net_gw *gw, const struct in6_addr *dst, uint16_t port,
                            struct sockaddr_storage *ret)
{
        if (net_is_gw(gw, dst))
                dst = net_addr_is_v4(dst) ? &gw->alias4 : &gw->alias6;
        return net_sockaddr(dst, port, ret);
}

void net_report_deny(struct net_gw *gw, const struct net_deny *d)
{
        uint64_t now = net_now();

        if (d->direction == NET_DIR_INGRESS)
                gw->stats.denied_ingress++;
        else if (!d->name)
                gw->stats.denied_egress++;
        if (!gw->cfg.on_deny)
                return;
        if (now - gw->deny_window >= 1000000000ull) {
                gw->deny_window = now;
                gw->deny_in_window = 0;
        }
        if (gw->deny_in_window++ < DENY_LOG_PER_SEC)
                gw->cfg.on_deny(d, gw->cfg.userdata);
}

static enum net_proto proto_of(uint8_t ipproto)
{
        switch (ipproto) {
        case IPPROTO_TCP:
                return NET_PROTO_TCP;
        case IPPROTO_UDP:
                return NET_PROTO_UDP;
        default:
                return NET_PROTO_ICMP;
        }
}

bool net_allow_flow(struct net_gw *gw, enum net_direction dir, uint8_t ipproto,
                    const struct in6_addr *src, uint16_t sport, const struct in6_addr *dst,
                    uint16_t dport)
{
        const struct in6_addr *remote = dir == NET_DIR_INGRESS ? src : dst;
        const char *names[16];
        struct net_policy_query q = {
                .direction = dir,
                .proto = proto_of(ipproto),
                .addr = remote,
                .groups = net_groups(gw, remote),
                .port = dport,
                .names = names,
        };
        const struct net_rule *rule;

        if (dir == NET_DIR_EGRESS)
                q.n_names = net_dnsf_names(gw, remote, names, ARRAY_SIZE(names));
        if (net_policy_eval(&gw->policy, &q, &rule) == NET_ALLOW)
                return true;
        net_report_deny(gw, &(struct net_deny){.direction = dir,
                                               .ipproto = ipproto,
                                               .src = *src,
                                               .dst = *dst,
                                               .sport = sport,
                                               .dport = dport,
                                               .rule = rule});
        return false;
}

/* ------------------------------------------------------------------------ */
/* Frames to the guest                                                      */
/* ------------------------------------------------------------------------ */

size_t net_tx_room(const struct net_gw *gw)
{
        return gw->tx_cap - (gw->tx_tail - gw->tx_head);
}

uint8_t *net_tx_reserve(struct net_gw *gw, size_t max)
{
        size_t need = 4 + max;

        if (gw->link_fd < 0 || gw->link_dead)
                return NULL;
        if (gw->tx_cap - gw->tx_tail < need && gw->tx_head > 0) {
                memmove(gw->tx, gw->tx + gw->tx_head, gw->tx_tail - gw->tx_head);
                gw->tx_tail -= gw->tx_head;
                gw->tx_head = 0;
        }
        if (gw->tx_cap - gw->tx_tail < need) {
                gw->stats.tx_dropped++;
                return NULL;
        }
        return gw->tx + gw->tx_tail + 4;
}

void net_tx_commit(struct net_gw *gw, uint8_t *p, size_t len)
{
        net_put32(p - 4, (uint32_t)len); /* the stream link's length prefix */
        gw->tx_tail = (size_t)(p - gw->tx) + len;
        gw->stats.tx_frames++;
        gw->stats.tx_bytes += len;
}

void net_tx_l4(struct net_gw *gw, uint8_t *frame, const struct in6_addr *src,
               const struct in6_addr *dst, uint8_t proto, size_t l4_len)
{
        size_t len =
                net_frame_finish(frame, gw->guest_mac, gw->cfg.gw_mac, src, dst, proto, l4_len);
        net_tx_commit(gw, frame, len);
}

static int link_events(struct net_gw *gw, uint32_t events)
{
        struct epoll_event ev = {.events = events, .data.u64 = ep_ref(EP_LINK, 0, 0)};

        if (epoll_ctl(gw->epfd, EPOLL_CTL_MOD, gw->link_fd, &ev) < 0)
                return negative_errno();
        return 0;
}

static void link_dead(struct net_gw *gw)
{
        if (gw->link_dead)
                return;
        gw->link_dead = true;
        epoll_ctl(gw->epfd, EPOLL_CTL_DEL, gw->link_fd, NULL);
        gw->tx_head = gw->tx_tail = 0;
}

static void set_paused(struct net_gw *gw, bool pause)
{
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = ep_ref(EP_INNER, 0, 0)};

        if (pause == gw->inner_paused)
                return;
        gw->inner_paused = pause;
        if (pause) {
                epoll_ctl(gw->epfd, EPOLL_CTL_DEL, gw->inner_fd, NULL);
        } else {
                epoll_ctl(gw->epfd, EPOLL_CTL_ADD, gw->inner_fd, &ev);
                net_tcp_resume(gw);
        }
}

static void tx_flush(struct net_gw *gw)
{
        while (!gw->link_dead && gw->tx_head < gw->tx_tail) {
                ssize_t n;

                if (gw->link_kind == NET_LINK_STREAM) {
                        n = write(gw->link_fd, gw->tx + gw->tx_head, gw->tx_tail - gw->tx_head);
                        if (n > 0) {
                                gw->tx_head += (size_t)n;
                                continue;
                        }
                } else {
                        const uint8_t *h = gw->tx + gw->tx_head;
                        size_t len = net_get32(h);
                        n = write(gw->link_fd, h + 4, len);
                        if (n >= 0 || (errno != EAGAIN && errno != EINTR && errno != ENOBUFS &&
                                       errno != EPIPE && errno != ECONNREFUSED)) {
                                /* Written, or a frame the link refuses: next. */
                                gw->tx_head += 4 + len;
                                continue;
                        }
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == ENOBUFS))
                        break;
                link_dead(gw);
                return;
        }
        if (gw->link_dead)
                return;
        if (gw->tx_head == gw->tx_tail)
                gw->tx_head = gw->tx_tail = 0;
        link_events(gw, EPOLLIN | (gw->tx_head < gw->tx_tail ? EPOLLOUT : 0));
        if (gw->tx_tail - gw->tx_head > gw->tx_cap / 2)
                set_paused(gw, true);
        else if (gw->tx_tail - gw->tx_head <= gw->tx_cap / 4)
                set_paused(gw, false);
}

/* ------------------------------------------------------------------------ */
/* ARP, NDP, echo to the gateway, ICMP errors                               */
/* ------------------------------------------------------------------------ */

static void arp_input(struct net_gw *gw, const struct net_pkt *k)
{
        uint8_t *f, *a;

        if (!gw->cfg.ipv4 || k->arp_op != 1)
                return;
        /* The guest probing or announcing its own address gets no answer. */
        if (IN6_ARE_ADDR_EQUAL(&k->arp_tpa, &k->arp_spa) ||
            IN6_ARE_ADDR_EQUAL(&k->arp_tpa, &gw->guest4m))
                return;
        if (!(f = net_tx_reserve(gw, 42)))
                return;
        memcpy(f, k->arp_sha, 6);
        memcpy(f + 6, gw->cfg.gw_mac, 6);
        net_put16(f + 12, NET_ETH_P_ARP);
        a = f + 14;
        net_put16(a, 1);
        net_put16(a + 2, NET_ETH_P_IP);
        a[4] = 6;
        a[5] = 4;
        net_put16(a + 6, 2);
        memcpy(a + 8, gw->cfg.gw_mac, 6);
        memcpy(a + 14, &k->arp_tpa.s6_addr[12], 4);
        memcpy(a + 18, k->arp_sha, 6);
        memcpy(a + 24, &k->arp_spa.s6_addr[12], 4);
        net_tx_commit(gw, f, 42);
}

static const struct in6_addr all_nodes = {{{0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}}};

static void send_ra(struct net_gw *gw, const struct in6_addr *dst)
{
        uint8_t *f = net_tx_reserve(gw, net_l4_off(false) + 88), *p;
        struct in6_addr prefix = gw->cfg.gw6;
        unsigned pl = gw->cfg.prefix6;

        if (!f)
                return;
        for (unsigned i = 0; i < 16; i++)
                prefix.s6_addr[i] &= (uint8_t)(pl >= 8 * (i + 1) ? 0xff
                                               : pl > 8 * i      ? 0xff00u >> (pl - 8 * i)
                                                                 : 0);
        p = f + net_l4_off(false);
        memset(p, 0, 88);
        p[0] = 134; /* router advertisement */
        p[4] = 64;  /* current hop limit */
        net_put16(p + 6, RA_LIFETIME_S);
        p[16] = 1; /* source link-layer address */
        p[17] = 1;
        memcpy(p + 18, gw->cfg.gw_mac, 6);
        p[24] = 5; /* MTU */
        p[25] = 1;
        net_put32(p + 28, gw->cfg.mtu);
        p[32] = 3; /* prefix information: on-link, no SLAAC (the guest's
                    * address is configured, so it is never tentative) */
        p[33] = 4;
        p[34] = (uint8_t)pl;
        p[35] = 0x80;
        net_put32(p + 36, 0xffffffffu);
        net_put32(p + 40, 0xffffffffu);
        memcpy(p + 48, &prefix, 16);
        p[64] = 25; /* RDNSS: the gateway */
        p[65] = 3;
        net_put32(p + 68, 0xffffffffu);
        memcpy(p + 72, &gw->cfg.gw6, 16);
        if (IN6_IS_ADDR_MULTICAST(dst)) {
                /* 33:33 + the low 32 bits; the queue's MAC is fixed below. */
                net_frame_finish(f, gw->guest_mac, gw->cfg.gw_mac, &gw->gw_ll, dst, IPPROTO_ICMPV6,
                                 88);
                f[0] = 0x33;
                f[1] = 0x33;
                memcpy(f + 2, &dst->s6_addr[12], 4);
                net_tx_commit(gw, f, net_l4_off(false) + 88);
                return;
        }
        net_tx_l4(gw, f, &gw->gw_ll, dst, IPPROTO_ICMPV6, 88);
}

static void ndp_input(struct net_gw *gw, const struct net_pkt *k)
{
        struct in6_addr target;
        uint8_t *f, *p;

        if (k->ttl != 255 || k->icmp_code != 0)
                return;
        if (k->icmp_type == 133) { /* router solicitation */
                send_ra(gw, IN6_IS_ADDR_UNSPECIFIED(&k->src) ? &all_nodes : &k->src);
                return;
        }
        /* neighbour solicitation: reserved(4) target(16) options */
        if (k->payload_len < 20)
                return;
        memcpy(&target, k->payload + 4, 16);
        /* Duplicate address detection (source ::) and questions about the
         * guest's own addresses are never answered: its address must not
         * look taken. */
        if (IN6_IS_ADDR_UNSPECIFIED(&k->src) || IN6_IS_ADDR_MULTICAST(&target) ||
            IN6_ARE_ADDR_EQUAL(&target, &k->src) || IN6_ARE_ADDR_EQUAL(&target, &gw->cfg.guest6))
                return;
        if (!(f = net_tx_reserve(gw, net_l4_off(false) + 32)))
                return;
        p = f + net_l4_off(false);
        memset(p, 0, 32);
        p[0] = 136;  /* neighbour advertisement */
        p[4] = 0xe0; /* router, solicited, override */
        memcpy(p + 8, &target, 16);
        p[24] = 2; /* target link-layer address */
        p[25] = 1;
        memcpy(p + 26, gw->cfg.gw_mac, 6);
        net_tx_l4(gw, f, &target, &k->src, IPPROTO_ICMPV6, 32);
}

/* Echo requests to the gateway's own address are answered here. */
static void echo_reply(struct net_gw *gw, const struct net_pkt *k)
{
        bool v4 = k->family == AF_INET;
        uint8_t *f = net_tx_reserve(gw, net_l4_off(v4) + k->l4_len), *p;

        if (!f)
                return;
        p = f + net_l4_off(v4);
        memcpy(p, k->l4, k->l4_len);
        p[0] = v4 ? 0 : 129;
        net_tx_l4(gw, f, &k->dst, &k->src, k->proto, k->l4_len);
}

/* An ICMP error of kind err from `from` to the guest address `to` (one
 * family), quoting the IP packet it is about: for IPv4 its header and 8
 * bytes (RFC 792), for IPv6 as much as keeps the error within the minimum
 * MTU (RFC 4443). */
static void icmp_error(struct net_gw *gw, enum net_icmp_err err, const struct in6_addr *from,
                       const struct in6_addr *to, const uint8_t *quote, size_t quote_len)
{
        /* type and code for each enum net_icmp_err, ICMP and ICMPv6 */
        static const uint8_t codes4[][2] = {{3, 0}, {3, 1}, {3, 3}, {3, 13}, {11, 0}};
        static const uint8_t codes6[][2] = {{1, 0}, {1, 3}, {1, 4}, {1, 1}, {3, 0}};
        bool v4 = net_addr_is_v4(to);
        size_t take = NET_MTU_MIN - NET_IP6_LEN - NET_ICMP_LEN;
        uint8_t *f, *p;

        if (v4)
                take = (size_t)(quote[0] & 0x0f) * 4 + 8;
        take = MIN(take, quote_len);
        f = net_tx_reserve(gw, net_l4_off(v4) + NET_ICMP_LEN + take);
        if (!f)
                return;
        p = f + net_l4_off(v4);
        memset(p, 0, NET_ICMP_LEN);
        memcpy(p, v4 ? codes4[err] : codes6[err], 2);
        memcpy(p + NET_ICMP_LEN, quote, take);
        net_tx_l4(gw, f, from, to, v4 ? IPPROTO_ICMP : IPPROTO_ICMPV6, NET_ICMP_LEN + take);
}

void net_icmp_unreach(struct net_gw *gw, const struct net_pkt *k)
{
        const uint8_t *ip = k->eth_dst + NET_ETH_LEN;
        icmp_error(gw, NET_ICMP_PROHIBITED, net_gw_addr(gw, k->family == AF_INET), &k->src, ip,
                   (size_t)(k->l4 - ip) + k->l4_len);
}

void net_icmp_flow_error(struct net_gw *gw, enum net_icmp_err err, const struct flow_key *key,
                         bool from_remote, const uint8_t *l4, size_t l4_len)
{
        bool v4 = net_addr_is_v4(&key->gaddr);
        uint8_t quote[NET_IP6_LEN + NET_TCP_LEN];
        size_t quote_len;

        if (l4_len > NET_TCP_LEN)
                return;
        memcpy(quote + (v4 ? NET_IP4_LEN : NET_IP6_LEN), l4, l4_len);
        quote_len = net_ip_finish(quote, &key->gaddr, &key->raddr, key->proto, l4_len);
        icmp_error(gw, err, from_remote ? &key->raddr : net_gw_addr(gw, v4), &key->gaddr, quote,
                   quote_len);
        gw->stats.icmp_errors++;
}

/* ------------------------------------------------------------------------ */
/* Frames from the guest                                                    */
/* ------------------------------------------------------------------------ */

/* Multicast the guest sends on its own link (mDNS, MLD, IGMP...): never
 * forwarded, never logged. */
static bool link_scope_multicast(const struct in6_addr *a)
{
        if (net_addr_is_v4(a))
                return (a->s6_addr[12] == 224 && a->s6_addr[13] == 0 && a->s6_addr[14] == 0) ||
                       a->s6_addr32[3] == 0xffffffffu;
        return a->s6_addr[0] == 0xff && (a->s6_addr[1] & 0x0f) <= 2;
}

static void frame_input(struct net_gw *gw, const uint8_t *frame, size_t len)
{
        struct net_pkt k;
        int r;

        gw->stats.rx_frames++;
        gw->stats.rx_bytes += len;
        r = net_pkt_parse(frame, len, &k);
        if (r < 0) {
                if (r == -EPROTONOSUPPORT)
                        gw->stats.rx_unsupported++;
                else
                        gw->stats.rx_malformed++;
                return;
        }
        if (!(k.eth_src[0] & 1))
                memcpy(gw->guest_mac, k.eth_src, 6);
        if (k.ethertype == NET_ETH_P_ARP) {
                arp_input(gw, &k);
                return;
        }
        if ((k.family == AF_INET && !gw->cfg.ipv4) || (k.family == AF_INET6 && !gw->cfg.ipv6)) {
                gw->stats.rx_unsupported++;
                return;
        }
        if (k.fragment) {
                gw->stats.rx_fragments++;
                return;
        }
        if (k.proto == IPPROTO_ICMPV6 && k.family == AF_INET6 &&
            (k.icmp_type == 133 || k.icmp_type == 135)) {
                ndp_input(gw, &k);
                return;
        }
        /* Nothing else may come from an unspecified or multicast source. */
        if (IN6_IS_ADDR_UNSPECIFIED(&k.src) || IN6_IS_ADDR_MULTICAST(&k.src) ||
            (net_addr_is_v4(&k.src) && (k.src.s6_addr[12] == 0 || k.src.s6_addr[12] >= 224)) ||
            link_scope_multicast(&k.dst)) {
                gw->stats.rx_unsupported++;
                return;
        }
        switch (k.proto) {
        case IPPROTO_TCP:
                net_tcp_from_guest(gw, &k);
                return;
        case IPPROTO_UDP:
                if (net_is_gw(gw, &k.dst) && k.dport == 53)
                        net_dnsf_udp(gw, &k);
                else
                        net_udp_from_guest(gw, &k);
                return;
        case IPPROTO_ICMP:
        case IPPROTO_ICMPV6:
                if ((k.proto == IPPROTO_ICMP) != (k.family == AF_INET))
                        break;
                if (k.icmp_type != (k.family == AF_INET ? 8 : 128) || k.icmp_code != 0 ||
                    k.payload_len < 4)
                        break; /* only echo requests travel */
                if (net_is_gw(gw, &k.dst))
                        echo_reply(gw, &k);
                else
                        net_icmp_from_guest(gw, &k);
                return;
        default:
                break;
        }
        gw->stats.rx_unsupported++;
}

static void link_read_stream(struct net_gw *gw)
{
        for (int i = 0; i < 8; i++) {
                ssize_t n = read(gw->link_fd, gw->rx + gw->rx_len, RX_CAP - gw->rx_len);
                size_t off = 0;

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n <= 0) {
                        link_dead(gw);
                        return;
                }
                gw->rx_len += (size_t)n;
                for (;;) {
                        size_t left = gw->rx_len - off;
                        uint32_t flen;

                        if (gw->rx_skip) {
                                size_t k = (size_t)MIN(gw->rx_skip, (uint64_t)left);
                                off += k;
                                gw->rx_skip -= k;
                                if (gw->rx_skip)
                                        break;
                                continue;
                        }
                        if (left < 4)
                                break;
                        flen = net_get32(gw->rx + off);
                        if (flen > NET_FRAME_MAX) {
                                gw->stats.rx_malformed++;
                                gw->rx_skip = flen;
                                off += 4;
                                continue;
                        }
                        if (left < 4 + (size_t)flen)
                                break;
                        frame_input(gw, gw->rx + off + 4, flen);
                        off += 4 + flen;
                }
                memmove(gw->rx, gw->rx + off, gw->rx_len - off);
                gw->rx_len -= off;
        }
}

static void link_read_dgram(struct net_gw *gw)
{
        for (int i = 0; i < LINK_BATCH; i++) {
                ssize_t n = read(gw->link_fd, gw->rx, RX_CAP);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n < 0 && errno == EMSGSIZE) {
                        gw->stats.rx_malformed++;
                        continue;
                }
                if (n <= 0) {
                        link_dead(gw);
                        return;
                }
                frame_input(gw, gw->rx, (size_t)n);
        }
}

int net_gw_attach(struct net_gw *gw, int fd, enum net_link kind)
{
        _cleanup_close_ int owned = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = ep_ref(EP_LINK, 0, 0)};
        int size = 4 * 1024 * 1024;
        int r;

        if (gw->link_fd >= 0)
                return -EBUSY;
        if (kind != NET_LINK_STREAM && kind != NET_LINK_DGRAM)
                return -EINVAL;
        r = fd_set_nonblock(fd, true);
        if (r < 0)
                return r;
        fd_set_cloexec(fd, true);
        /* Bigger queues on a socket (a TAP fd refuses these, harmlessly). */
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
        if (epoll_ctl(gw->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
                return negative_errno();
        gw->link_fd = TAKE_FD(owned);
        gw->link_kind = kind;
        gw->link_dead = false;
        gw->rx_len = 0;
        gw->rx_skip = 0;
        if (gw->cfg.ipv6) {
                send_ra(gw, &all_nodes);
                gw->next_ra = net_now() + RA_INTERVAL_NS;
                net_timer_arm(gw, gw->next_ra);
        }
        tx_flush(gw);
        return 0;
}

/* ------------------------------------------------------------------------ */
/* Timers                                                                   */
/* ------------------------------------------------------------------------ */

void net_timer_arm(struct net_gw *gw, uint64_t deadline)
{
        struct itimerspec its = {0};

        if (gw->timer_armed && gw->timer_armed <= deadline)
                return;
        if (deadline == 0)
                deadline = 1;
        its.it_value.tv_sec = (time_t)(deadline / 1000000000ull);
        its.it_value.tv_nsec = (long)(deadline % 1000000000ull);
        if (timerfd_settime(gw->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
                gw->timer_armed = deadline;
}

static void timers_run(struct net_gw *gw)
{
        uint64_t now = net_now(), next = 0, expirations;

        if (read(gw->timer_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
                return;
        gw->timer_armed = 0;
        for (uint32_t i = 0; i < gw->n_flows; i++) {
                struct flow *f = &gw->flows[i];

                if (f->type == FLOW_FREE || !f->deadline)
                        continue;
                if (f->deadline <= now) {
                        f->deadline = 0;
                        if (f->type == FLOW_TCP)
                                net_tcp_timer(gw, i);
                        else
                                net_udp_timer(gw, i);
                }
        }
        if (gw->cfg.ipv6 && gw->next_ra && gw->next_ra <= now && gw->link_fd >= 0) {
                send_ra(gw, &all_nodes);
                gw->next_ra = now + RA_INTERVAL_NS;
        }
        next = net_dnsf_timer(gw, now);
        for (uint32_t i = 0; i < gw->n_flows; i++) {
                const struct flow *f = &gw->flows[i];
                if (f->type != FLOW_FREE && f->deadline && (!next || f->deadline < next))
                        next = f->deadline;
        }
        if (gw->next_ra && (!next || gw->next_ra < next))
                next = gw->next_ra;
        if (next)
                net_timer_arm(gw, next);
}

/* ------------------------------------------------------------------------ */
/* The loop                                                                 */
/* ------------------------------------------------------------------------ */

int net_inner_add(struct net_gw *gw, int fd, uint32_t events, uint64_t ref)
{
        struct epoll_event ev = {.events = events, .data.u64 = ref};

        if (epoll_ctl(gw->inner_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
                return negative_errno();
        return 0;
}

static void inner_run(struct net_gw *gw)
{
        struct epoll_event ev[64];
        int n = epoll_wait(gw->inner_fd, ev, (int)ARRAY_SIZE(ev), 0);

        for (int i = 0; i < n; i++) {
                uint64_t ref = ev[i].data.u64;
                enum ep_type t = (enum ep_type)(ref & 0xff);
                uint32_t idx = (uint32_t)(ref >> 8) & 0xffffffu, gen = (uint32_t)(ref >> 32);

                switch (t) {
                case EP_FLOW: {
                        struct flow *f;

                        if (idx >= gw->n_flows)
                                break;
                        f = &gw->flows[idx];
                        if (f->type == FLOW_FREE || f->gen != gen)
                                break; /* freed earlier in this batch */
                        if (f->type == FLOW_TCP)
                                net_tcp_event(gw, idx, ev[i].events);
                        else if (f->type == FLOW_UDP)
                                net_udp_event(gw, idx, ev[i].events);
                        else
                                net_icmp_event(gw, idx, ev[i].events);
                        break;
                }
                case EP_LISTEN:
                        net_listen_event(gw, idx);
                        break;
                case EP_DNS:
                case EP_DNS_PEER:
                        net_dnsf_event(gw, t, idx, gen, ev[i].events);
                        break;
                default:
                        break;
                }
        }
}

int net_gw_run(struct net_gw *gw)
{
        struct epoll_event ev[8];
        int n = epoll_wait(gw->epfd, ev, (int)ARRAY_SIZE(ev), 0);

        for (int i = 0; i < n; i++) {
                switch ((enum ep_type)(ev[i].data.u64 & 0xff)) {
                case EP_LINK:
                        if (ev[i].events & EPOLLOUT)
                                tx_flush(gw);
                        if (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                                if (gw->link_kind == NET_LINK_STREAM)
                                        link_read_stream(gw);
                                else
                                        link_read_dgram(gw);
                                net_tcp_flush_acks(gw);
                        }
                        break;
                case EP_TIMER:
                        timers_run(gw);
                        break;
                case EP_NETLINK:
                        if (net_hostaddrs_monitor_drain(gw->nl_fd))
                                net_hostaddrs_load(&gw->host);
                        break;
                case EP_INNER:
                        inner_run(gw);
                        break;
                default:
                        break;
                }
                if (gw->link_fd >= 0)
                        tx_flush(gw);
        }
        net_tcp_flush_acks(gw);
        if (gw->link_fd >= 0)
                tx_flush(gw);
        return gw->link_dead ? -EPIPE : 0;
}

/* ------------------------------------------------------------------------ */
/* Life cycle                                                               */
/* ------------------------------------------------------------------------ */

int net_gw_fd(const struct net_gw *gw)
{
        return gw->epfd;
}

void net_gw_get_stats(const struct net_gw *gw, struct net_gw_stats *ret)
{
        *ret = gw->stats;
        ret->tcp_active = gw->n_tcp;
        ret->udp_active = gw->n_udp;
        ret->icmp_active = gw->n_icmp;
}

/* nameserver lines of /etc/resolv.conf (at most 3, as the libc reads). */
static int read_resolv_conf(struct net_gw *gw)
{
        _cleanup_free_ char *text = NULL;
        char *save = NULL;
        int r;

        r = read_file("/etc/resolv.conf", 64 * 1024, &text, NULL);
        if (r < 0)
                return r;
        gw->dns = calloc(3, sizeof(*gw->dns));
        if (!gw->dns)
                return -ENOMEM;
        for (char *line = strtok_r(text, "\n", &save); line && gw->n_dns < 3;
             line = strtok_r(NULL, "\n", &save)) {
                char addr[INET6_ADDRSTRLEN + 1];
                struct sockaddr_in6 *s = &gw->dns[gw->n_dns];
                struct in_addr v4;
                char *pct;

                if (sscanf(line, " nameserver %46s", addr) != 1)
                        continue;
                if ((pct = strchr(addr, '%')))
                        *pct = '\0';
                *s = (struct sockaddr_in6){.sin6_family = AF_INET6, .sin6_port = htons(53)};
                if (inet_pton(AF_INET, addr, &v4) == 1)
                        net_addr_from_v4(&s->sin6_addr, &v4);
                else if (inet_pton(AF_INET6, addr, &s->sin6_addr) != 1)
                        continue;
                gw->n_dns++;
        }
        return 0;
}

static int check_config(const struct net_gw_config *c)
{
        if (c->mtu < NET_MTU_MIN || c->mtu > NET_MTU_MAX)
                return -EINVAL;
        if (!c->ipv4 && !c->ipv6)
                return -EINVAL;
        if (c->ipv4 && (c->prefix4 < 1 || c->prefix4 > 30))
                return -EINVAL;
        if (c->ipv6 && (c->prefix6 < 1 || c->prefix6 > 126))
                return -EINVAL;
        if (c->n_dns > 16 || c->n_ports > 256)
                return -EINVAL;
        return 0;
}

int net_gw_new(const struct net_gw_config *c, struct net_gw **ret)
{
        _cleanup_(net_gw_freep) struct net_gw *gw = NULL;
        struct epoll_event ev;
        int r;

        r = check_config(c);
        if (r < 0)
                return r;
        gw = calloc(1, sizeof(*gw));
        if (!gw)
                return -ENOMEM;
        gw->epfd = gw->inner_fd = gw->timer_fd = gw->nl_fd = gw->link_fd = -1;
        gw->cfg = *c;
        gw->cfg.policy = NULL;
        gw->cfg.dns = NULL;
        gw->cfg.ports = NULL;
        gw->cfg.host_alias4 = gw->cfg.host_alias6 = NULL;
        if (!gw->cfg.max_tcp)
                gw->cfg.max_tcp = 256;
        if (!gw->cfg.max_udp)
                gw->cfg.max_udp = 256;
        if (!gw->cfg.max_icmp)
                gw->cfg.max_icmp = 64;
        if (!gw->cfg.tcp_connect_timeout_ms)
                gw->cfg.tcp_connect_timeout_ms = 30000;
        if (!gw->cfg.dns_timeout_ms)
                gw->cfg.dns_timeout_ms = 5000;
        if (gw->cfg.max_tcp > 65536 || gw->cfg.max_udp > 65536 || gw->cfg.max_icmp > 65536)
                return -EINVAL;

        r = c->policy ? net_policy_copy(c->policy, &gw->policy)
                      : net_policy_from_profile("public", &gw->policy);
        if (r < 0)
                return r;
        if (c->n_dns) {
                gw->dns = calloc(c->n_dns, sizeof(*gw->dns));
                if (!gw->dns)
                        return -ENOMEM;
                for (size_t i = 0; i < c->n_dns; i++) {
                        gw->dns[i] = c->dns[i];
                        gw->dns[i].sin6_family = AF_INET6;
                        if (!gw->dns[i].sin6_port)
                                gw->dns[i].sin6_port = htons(53);
                }
                gw->n_dns = c->n_dns;
        } else if (read_resolv_conf(gw) < 0) {
                log_warn("net: cannot read /etc/resolv.conf; DNS will fail");
        }

        net_addr_from_v4(&gw->gw4m, &c->gw4);
        net_addr_from_v4(&gw->guest4m, &c->guest4);
        /* fe80:: + modified EUI-64 of the gateway's MAC */
        gw->gw_ll.s6_addr[0] = 0xfe;
        gw->gw_ll.s6_addr[1] = 0x80;
        gw->gw_ll.s6_addr[8] = c->gw_mac[0] ^ 2;
        gw->gw_ll.s6_addr[9] = c->gw_mac[1];
        gw->gw_ll.s6_addr[10] = c->gw_mac[2];
        gw->gw_ll.s6_addr[11] = 0xff;
        gw->gw_ll.s6_addr[12] = 0xfe;
        gw->gw_ll.s6_addr[13] = c->gw_mac[3];
        gw->gw_ll.s6_addr[14] = c->gw_mac[4];
        gw->gw_ll.s6_addr[15] = c->gw_mac[5];
        {
                struct in_addr lo = {htonl(INADDR_LOOPBACK)};
                if (c->host_alias4)
                        gw->alias4 = *c->host_alias4;
                else
                        net_addr_from_v4(&gw->alias4, &lo);
                gw->alias6 = c->host_alias6 ? *c->host_alias6 : in6addr_loopback;
        }
        memcpy(gw->guest_mac, c->guest_mac, 6);

        gw->epfd = epoll_create1(EPOLL_CLOEXEC);
        gw->inner_fd = epoll_create1(EPOLL_CLOEXEC);
        gw->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        if (gw->epfd < 0 || gw->inner_fd < 0 || gw->timer_fd < 0)
                return negative_errno();
        ev = (struct epoll_event){.events = EPOLLIN, .data.u64 = ep_ref(EP_INNER, 0, 0)};
        if (epoll_ctl(gw->epfd, EPOLL_CTL_ADD, gw->inner_fd, &ev) < 0)
                return negative_errno();
        ev = (struct epoll_event){.events = EPOLLIN, .data.u64 = ep_ref(EP_TIMER, 0, 0)};
        if (epoll_ctl(gw->epfd, EPOLL_CTL_ADD, gw->timer_fd, &ev) < 0)
                return negative_errno();
        gw->nl_fd = net_hostaddrs_monitor_open();
        if (gw->nl_fd >= 0) {
                ev = (struct epoll_event){.events = EPOLLIN, .data.u64 = ep_ref(EP_NETLINK, 0, 0)};
                if (epoll_ctl(gw->epfd, EPOLL_CTL_ADD, gw->nl_fd, &ev) < 0)
                        return negative_errno();
        } else {
                log_warn("net: no netlink socket (%s); host addresses are read once",
                         strerror(-gw->nl_fd));
        }
        r = net_hostaddrs_load(&gw->host);
        if (r < 0)
                return r;

        gw->rx = malloc(RX_CAP);
        gw->tx_cap = TX_CAP;
        gw->tx = malloc(gw->tx_cap);
        gw->scratch = malloc(4 + NET_FRAME_MAX);
        if (!gw->rx || !gw->tx || !gw->scratch)
                return -ENOMEM;
        r = net_flows_init(gw, gw->cfg.max_tcp + gw->cfg.max_udp + gw->cfg.max_icmp);
        if (r < 0)
                return r;
        r = net_dnsf_new(gw);
        if (r < 0)
                return r;
        gw->cfg.n_ports = 0;
        if (c->n_ports) {
                gw->listeners = calloc(c->n_ports, sizeof(*gw->listeners));
                if (!gw->listeners)
                        return -ENOMEM;
                for (size_t i = 0; i < c->n_ports; i++) {
                        gw->listeners[i].fd = -1;
                        gw->listeners[i].port = c->ports[i];
                }
                gw->n_listeners = c->n_ports;
                r = net_ports_open(gw);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(gw);
        return 0;
}

struct net_gw *net_gw_free(struct net_gw *gw)
{
        if (!gw)
                return NULL;
        net_flows_done(gw);
        net_dnsf_free(gw);
        net_ports_close(gw);
        safe_close(gw->link_fd);
        safe_close(gw->nl_fd);
        safe_close(gw->timer_fd);
        safe_close(gw->inner_fd);
        safe_close(gw->epfd);
        net_policy_done(&gw->policy);
        free(gw->listeners);
        free(gw->dns);
        free(gw->rx);
        free(gw->tx);
        free(gw->scratch);
        free(gw);
        return NULL;
}
