/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: UDP and ICMP echo flows.
 *
 * UDP: the first datagram from a guest port to a remote address and port
 * opens a flow (after the policy agrees): a host UDP socket connect()-ed to
 * that remote, so that only its answers come back. Datagrams go through
 * unchanged; answers become frames to the guest from the remote's address
 * and port. A flow ends after its idle time (60 s; 10 s for DNS); when the
 * table is full the least recently used flow is closed to make room, so a
 * flood of flows can only push out other flows, never grow anything.
 * Datagrams that do not fit the guest's MTU are dropped and counted.
 *
 * Published UDP ports: the listener's socket is shared by its flows; each
 * host-side client becomes a flow into the guest from the gateway's
 * address, and the guest's answers are sent back to that client.
 *
 * ICMP echo: an unprivileged ping socket (SOCK_DGRAM, IPPROTO_ICMP or
 * ICMPV6) per echo id and remote. The kernel picks the id on the wire, so
 * replies get the guest's id back before they are framed. Where the host
 * does not allow ping sockets (net.ipv4.ping_group_range), the guest gets
 * "administratively prohibited".
 *
 * Errors: both kinds of host socket queue the ICMP errors that come back
 * for what they sent (IP_RECVERR, read on EPOLLERR with MSG_ERRQUEUE): port
 * and host unreachable, prohibited, time exceeded. Each is passed to the
 * guest as an ICMP error about the datagram or echo it sent, so that its
 * socket fails at once (ECONNREFUSED, EHOSTUNREACH...) rather than waiting
 * for an answer that will not come. "Fragmentation needed" is not: the host
 * fragments what it sends, the guest's MTU is its own business.
 */
#include "net-internal.h"

#include <errno.h>
#include <linux/errqueue.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define UDP_IDLE_MS  60000u
#define DNS_IDLE_MS  10000u
#define ICMP_IDLE_MS 30000u
#define BATCH        32
#define MS           1000000ull

static uint32_t idle_ms(const struct net_gw *gw, const struct flow *f)
{
        if (f->type == FLOW_ICMP)
                return ICMP_IDLE_MS;
        if (gw->cfg.udp_idle_ms)
                return gw->cfg.udp_idle_ms;
        return f->key.rport == 53 ? DNS_IDLE_MS : UDP_IDLE_MS;
}

static void touch(struct net_gw *gw, uint32_t idx)
{
        net_flow_touch(gw, idx);
        net_flow_deadline(gw, idx, net_now() + idle_ms(gw, &gw->flows[idx]) * MS);
}

void net_udp_to_guest(struct net_gw *gw, const struct in6_addr *src, uint16_t sport,
                      const struct in6_addr *dst, uint16_t dport, const void *data, size_t len)
{
        bool v4 = net_addr_is_v4(dst);
        size_t l4 = NET_UDP_LEN + len;
        uint8_t *f, *p;

        if (net_l4_off(v4) - NET_ETH_LEN + l4 > gw->cfg.mtu) {
                gw->stats.tx_dropped++;
                return;
        }
        if (!(f = net_tx_reserve(gw, net_l4_off(v4) + l4)))
                return;
        p = f + net_l4_off(v4);
        net_put16(p, sport);
        net_put16(p + 2, dport);
        net_put16(p + 4, (uint16_t)l4);
        memcpy(p + NET_UDP_LEN, data, len);
        net_tx_l4(gw, f, src, dst, IPPROTO_UDP, l4);
}

/* Makes room for one more flow of the type by closing the oldest. */
static void make_room(struct net_gw *gw, enum flow_type type, uint32_t count, uint32_t max)
{
        uint32_t old;

        if (count < max)
                return;
        old = net_flow_lru_oldest(gw, type);
        if (old == FLOW_NONE)
                return;
        net_flow_free(gw, old);
        if (type == FLOW_UDP)
                gw->stats.udp_evicted++;
}

/* A new flow with a connected host socket of the given type. */
static uint32_t open_flow(struct net_gw *gw, enum flow_type type, const struct flow_key *key,
                          int sotype, int proto, uint16_t port)
{
        struct sockaddr_storage sa;
        socklen_t sl = net_host_sockaddr(gw, &key->raddr, port, &sa);
        uint32_t idx;
        struct flow *f;
        int fd;

        if (type == FLOW_UDP)
                make_room(gw, type, gw->n_udp, gw->cfg.max_udp);
        else
                make_room(gw, type, gw->n_icmp, gw->cfg.max_icmp);
        if (sa.ss_family == AF_INET && proto == IPPROTO_ICMPV6)
                proto = IPPROTO_ICMP;
        fd = socket(sa.ss_family, sotype | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
        if (fd < 0)
                return FLOW_NONE;
        if (setsockopt(fd, sa.ss_family == AF_INET ? SOL_IP : SOL_IPV6,
                       sa.ss_family == AF_INET ? IP_RECVERR : IPV6_RECVERR, &(int){1},
                       sizeof(int)) < 0 ||
            connect(fd, (struct sockaddr *)&sa, sl) < 0) {
                close(fd);
                return FLOW_NONE;
        }
        idx = net_flow_new(gw, type, key);
        if (idx == FLOW_NONE) {
                close(fd);
                return FLOW_NONE;
        }
        f = &gw->flows[idx];
        f->fd = fd;
        net_flow_set_events(gw, idx, EPOLLIN);
        if (type == FLOW_UDP)
                gw->stats.udp_opened++;
        else
                gw->stats.icmp_opened++;
        return idx;
}

void net_udp_from_guest(struct net_gw *gw, const struct net_pkt *k)
{
        struct flow_key key = flow_key_of(k, IPPROTO_UDP);
        uint32_t idx = net_flow_lookup(gw, &key);
        struct flow *f;
        ssize_t n;

        if (k->dport == 0)
                return;
        if (idx == FLOW_NONE) {
                if (!net_allow_flow(gw, NET_DIR_EGRESS, IPPROTO_UDP, &k->src, k->sport, &k->dst,
                                    k->dport)) {
                        net_icmp_unreach(gw, k);
                        return;
                }
                idx = open_flow(gw, FLOW_UDP, &key, SOCK_DGRAM, IPPROTO_UDP, k->dport);
                if (idx == FLOW_NONE) {
                        net_icmp_unreach(gw, k);
                        return;
                }
        }
        f = &gw->flows[idx];
        touch(gw, idx);
        if (f->udp.inbound) {
                const struct sockaddr_storage *c = &f->udp.client;
                n = sendto(f->fd, k->payload, k->payload_len, MSG_DONTWAIT,
                           (const struct sockaddr *)c,
                           c->ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                                   : sizeof(struct sockaddr_in6));
        } else {
                n = send(f->fd, k->payload, k->payload_len, MSG_DONTWAIT);
        }
        if (n > 0)
                gw->stats.bytes_to_host += (uint64_t)n;
}

/* The kind of error an ICMP or ICMPv6 message from beyond the host
 * reports, or -1 for one the guest is not told about. */
static int error_kind(const struct sock_extended_err *ee)
{
        if (ee->ee_origin == SO_EE_ORIGIN_ICMP && ee->ee_type == 3) {
                switch (ee->ee_code) {
                case 0:  /* net unreachable */
                case 6:  /* net unknown */
                case 11: /* net unreachable for TOS */
                        return NET_ICMP_NET_UNREACH;
                case 2: /* protocol unreachable */
                case 3: /* port unreachable */
                        return NET_ICMP_PORT_UNREACH;
                case 4: /* fragmentation needed */
                        return -1;
                case 9:  /* net prohibited */
                case 10: /* host prohibited */
                case 13: /* communication prohibited */
                        return NET_ICMP_PROHIBITED;
                default: /* host unreachable, unknown, isolated, for TOS; precedence */
                        return NET_ICMP_HOST_UNREACH;
                }
        }
        if (ee->ee_origin == SO_EE_ORIGIN_ICMP6 && ee->ee_type == 1) {
                switch (ee->ee_code) {
                case 0: /* no route */
                case 2: /* beyond the scope of the source address */
                        return NET_ICMP_NET_UNREACH;
                case 3: /* address unreachable */
                        return NET_ICMP_HOST_UNREACH;
                case 4: /* port unreachable */
                        return NET_ICMP_PORT_UNREACH;
                default: /* prohibited, source address failed policy, reject route */
                        return NET_ICMP_PROHIBITED;
                }
        }
        if ((ee->ee_origin == SO_EE_ORIGIN_ICMP && ee->ee_type == 11) ||
            (ee->ee_origin == SO_EE_ORIGIN_ICMP6 && ee->ee_type == 3))
                return NET_ICMP_TIME_EXCEEDED;
        return -1;
}

/* Whether the error came from the remote itself (a port unreachable
 * does) rather than from a router on the way. */
static bool from_remote(const struct net_gw *gw, const struct flow *f,
                        const struct sock_extended_err *ee)
{
        const struct sockaddr *o = SO_EE_OFFENDER(ee);
        struct sockaddr_storage remote;

        net_host_sockaddr(gw, &f->key.raddr, 0, &remote);
        if (o->sa_family != remote.ss_family)
                return false;
        if (o->sa_family == AF_INET)
                return memcmp(&((const struct sockaddr_in *)o)->sin_addr,
                              &((const struct sockaddr_in *)&remote)->sin_addr, 4) == 0;
        return memcmp(&((const struct sockaddr_in6 *)o)->sin6_addr,
                      &((const struct sockaddr_in6 *)&remote)->sin6_addr, 16) == 0;
}

/* Passes the errors queued on a flow's host socket to the guest. What
 * comes with each is the start of the payload the host socket sent: of an
 * echo, its header (the sequence number the guest's ping matches). */
static void flow_errors(struct net_gw *gw, uint32_t idx)
{
        struct flow *f = &gw->flows[idx];

        for (int i = 0; i < BATCH; i++) {
                union {
                        struct cmsghdr h;
                        uint8_t buf[CMSG_SPACE(sizeof(struct sock_extended_err) +
                                               sizeof(struct sockaddr_in6))];
                } ctl;
                uint8_t sent[NET_ICMP_LEN] = {0}, l4[NET_UDP_LEN];
                struct iovec iov = {sent, sizeof(sent)};
                struct msghdr m = {
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = &ctl,
                        .msg_controllen = sizeof(ctl),
                };
                const struct sock_extended_err *ee = NULL;
                int kind;

                if (recvmsg(f->fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
                        return;
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
                        if ((c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) ||
                            (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR))
                                ee = (const struct sock_extended_err *)CMSG_DATA(c);
                if (!ee || (kind = error_kind(ee)) < 0)
                        continue;
                if (f->type == FLOW_UDP) {
                        net_put16(l4, f->key.gport);
                        net_put16(l4 + 2, f->key.rport);
                        net_put16(l4 + 4, NET_UDP_LEN);
                } else {
                        memcpy(l4, sent, sizeof(l4));
                        l4[0] = net_addr_is_v4(&f->key.gaddr) ? 8 : 128; /* echo request */
                        l4[1] = 0;
                        net_put16(l4 + 4, f->key.gport);
                }
                net_icmp_flow_error(gw, (enum net_icmp_err)kind, &f->key, from_remote(gw, f, ee),
                                    l4, sizeof(l4));
        }
}

void net_udp_event(struct net_gw *gw, uint32_t idx, uint32_t events)
{
        struct flow *f = &gw->flows[idx];

        if (events & EPOLLERR)
                flow_errors(gw, idx);
        for (int i = 0; i < BATCH; i++) {
                ssize_t n = recv(f->fd, gw->scratch, NET_FRAME_MAX, MSG_DONTWAIT);

                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return;
                if (n < 0)
                        continue; /* the error flow_errors() passed on */
                gw->stats.bytes_from_host += (uint64_t)n;
                touch(gw, idx);
                net_udp_to_guest(gw, &f->key.raddr, f->key.rport, &f->key.gaddr, f->key.gport,
                                 gw->scratch, (size_t)n);
        }
}

void net_udp_timer(struct net_gw *gw, uint32_t idx)
{
        net_flow_free(gw, idx);
}

/* The inbound flow of a listener for this client, if there is one. */
static uint32_t find_client(struct net_gw *gw, uint32_t lidx, const struct sockaddr_storage *c)
{
        for (uint32_t i = gw->lru_head; i != FLOW_NONE; i = gw->flows[i].lru_next) {
                const struct flow *f = &gw->flows[i];
                if (f->type == FLOW_UDP && f->udp.inbound && f->udp.listener == lidx &&
                    memcmp(&f->udp.client, c, sizeof(*c)) == 0)
                        return i;
        }
        return FLOW_NONE;
}

void net_udp_inbound(struct net_gw *gw, struct listener *l, uint32_t lidx)
{
        bool v4 = net_addr_is_v4(&l->port.bind) ? gw->cfg.ipv4 : !gw->cfg.ipv6;

        for (int i = 0; i < BATCH; i++) {
                struct sockaddr_storage c;
                socklen_t cl = sizeof(c);
                ssize_t n;
                uint32_t idx;
                struct flow *f;

                memset(&c, 0, sizeof(c));
                n = recvfrom(l->fd, gw->scratch, NET_FRAME_MAX, MSG_DONTWAIT, (struct sockaddr *)&c,
                             &cl);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return;
                if (n < 0)
                        continue;
                idx = find_client(gw, lidx, &c);
                if (idx == FLOW_NONE) {
                        struct flow_key key = {.proto = IPPROTO_UDP, .gport = l->port.guest_port};
                        struct in6_addr src;
                        uint16_t sport;

                        net_sockaddr_addr(&c, &src, &sport);
                        key.gaddr = v4 ? gw->guest4m : gw->cfg.guest6;
                        key.raddr = *net_gw_addr(gw, v4);
                        if (!net_allow_flow(gw, NET_DIR_INGRESS, IPPROTO_UDP, &src, sport,
                                            &key.gaddr, key.gport))
                                continue;
                        key.rport = sport;
                        for (uint16_t p = 49152; net_flow_lookup(gw, &key) != FLOW_NONE && p; p++)
                                key.rport = p;
                        make_room(gw, FLOW_UDP, gw->n_udp, gw->cfg.max_udp);
                        idx = net_flow_new(gw, FLOW_UDP, &key);
                        if (idx == FLOW_NONE)
                                continue;
                        gw->stats.udp_opened++;
                        f = &gw->flows[idx];
                        f->fd = l->fd;
                        f->udp.inbound = true;
                        f->udp.listener = lidx;
                        f->udp.client = c;
                }
                f = &gw->flows[idx];
                gw->stats.bytes_from_host += (uint64_t)n;
                touch(gw, idx);
                net_udp_to_guest(gw, &f->key.raddr, f->key.rport, &f->key.gaddr, f->key.gport,
                                 gw->scratch, (size_t)n);
        }
}

/* ------------------------------------------------------------------------ */
/* ICMP echo                                                                */
/* ------------------------------------------------------------------------ */

void net_icmp_from_guest(struct net_gw *gw, const struct net_pkt *k)
{
        struct flow_key key = {
                .proto = k->proto,
                .gport = k->icmp_id,
                .gaddr = k->src,
                .raddr = k->dst,
        };
        uint32_t idx = net_flow_lookup(gw, &key);
        ssize_t n;

        if (idx == FLOW_NONE) {
                if (!net_allow_flow(gw, NET_DIR_EGRESS, k->proto, &k->src, 0, &k->dst, 0)) {
                        net_icmp_unreach(gw, k);
                        return;
                }
                idx = open_flow(gw, FLOW_ICMP, &key, SOCK_DGRAM, k->proto, 0);
                if (idx == FLOW_NONE) {
                        /* No ping sockets on this host (ping_group_range). */
                        net_icmp_unreach(gw, k);
                        return;
                }
        }
        touch(gw, idx);
        /* The echo request as it came; the kernel sets id and checksum. */
        n = send(gw->flows[idx].fd, k->l4, k->l4_len, MSG_DONTWAIT);
        if (n > 0)
                gw->stats.bytes_to_host += (uint64_t)n;
}

void net_icmp_event(struct net_gw *gw, uint32_t idx, uint32_t events)
{
        struct flow *f = &gw->flows[idx];
        bool v4 = net_addr_is_v4(&f->key.gaddr);

        if (events & EPOLLERR)
                flow_errors(gw, idx);

        for (int i = 0; i < BATCH; i++) {
                ssize_t n = recv(f->fd, gw->scratch, NET_FRAME_MAX, MSG_DONTWAIT);
                uint8_t *fr, *p;

                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return;
                if (n < 0)
                        continue;
                if (n < 8 || gw->scratch[0] != (v4 ? 0 : 129))
                        continue; /* only echo replies */
                if (net_l4_off(v4) - NET_ETH_LEN + (size_t)n > gw->cfg.mtu ||
                    !(fr = net_tx_reserve(gw, net_l4_off(v4) + (size_t)n)))
                        continue;
                p = fr + net_l4_off(v4);
                memcpy(p, gw->scratch, (size_t)n);
                net_put16(p + 4, f->key.gport);
                gw->stats.bytes_from_host += (uint64_t)n;
                touch(gw, idx);
                net_tx_l4(gw, fr, &f->key.raddr, &f->key.gaddr, f->key.proto, (size_t)n);
        }
}
