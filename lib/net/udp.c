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
 */
#include "net-internal.h"

#include <errno.h>
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
        if (connect(fd, (struct sockaddr *)&sa, sl) < 0) {
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

void net_udp_event(struct net_gw *gw, uint32_t idx)
{
        struct flow *f = &gw->flows[idx];

        for (int i = 0; i < BATCH; i++) {
                ssize_t n = recv(f->fd, gw->scratch, NET_FRAME_MAX, MSG_DONTWAIT);

                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return;
                if (n < 0)
                        continue; /* an ICMP error reported on the socket */
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
                        key.raddr = v4 ? gw->gw4m : gw->cfg.gw6;
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

void net_icmp_event(struct net_gw *gw, uint32_t idx)
{
        struct flow *f = &gw->flows[idx];
        bool v4 = net_addr_is_v4(&f->key.gaddr);

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
