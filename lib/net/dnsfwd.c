/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: the DNS forwarder on the gateway's address.
 *
 * Queries come over UDP (frames to port 53 of the gateway) or over TCP (the
 * TCP translator connects such a flow to one end of a socketpair whose
 * other end, a "peer", is read here as a stream of length-prefixed
 * messages). Each query is parsed; a name the policy denies gets NXDOMAIN
 * at once. Otherwise it goes upstream with a fresh random id, from a fresh
 * socket (a random source port), over the transport it came on: UDP
 * queries over UDP, TCP queries over TCP (the fallback after TC=1). An
 * upstream that does not answer in time is replaced by the next one; after
 * the last, the guest gets SERVFAIL. Queries in flight are bounded; past
 * the bound the guest gets SERVFAIL.
 *
 * An answer is accepted only from the socket its query went out on, with
 * the same id and question. Its A/AAAA records are then checked: an
 * address that is not public (private, loopback, link-local, metadata, the
 * host, special-purpose) is allowed only if the policy would allow a flow
 * to it for that name; otherwise the whole answer becomes NXDOMAIN (rebind
 * protection). Allowed answers pin name -> address with their TTL (kept
 * between 60 s and a day), so that domain rules match the flows that
 * follow. A UDP answer larger than what the guest can take (its EDNS size,
 * or 512, within the MTU) is cut to its question with TC=1.
 */
#include "net-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "dns.h"
#include "lib/core/util.h"

#define MAX_QUERIES 64
#define MAX_PEERS   32
#define MAX_PINS    1024
#define MSG_MAX     65535
#define PIN_MIN_S   60u
#define PIN_MAX_S   86400u
#define MS          1000000ull

struct origin {
        bool stream;
        uint32_t peer, peer_gen;       /* stream */
        struct in6_addr guest, server; /* UDP: the guest and the address it asked */
        uint16_t gport;
        uint16_t limit; /* UDP: the largest answer the guest takes */
};

struct query {
        bool used, tcp;
        uint32_t gen;
        int fd;
        uint16_t guest_id, up_id;
        struct origin o;
        struct dns_question q;
        uint8_t *msg; /* [len be16][message], the id replaced */
        size_t len;   /* of msg, the prefix included */
        size_t sent;  /* TCP: bytes of msg written */
        uint8_t *ans; /* TCP: the answer being read, [len][message] */
        size_t alen;
        size_t upstream;
        uint64_t deadline;
};

struct peer {
        bool used;
        uint32_t gen;
        int fd;
        uint8_t *buf;
        size_t len;
};

struct pin {
        char name[NET_NAME_MAX + 1];
        struct in6_addr addr;
        uint64_t expires;
};

struct dns_fwd {
        struct query q[MAX_QUERIES];
        struct peer p[MAX_PEERS];
        struct pin *pins;
        size_t n_pins;
        uint8_t out[2 + MSG_MAX];
};

int net_dnsf_new(struct net_gw *gw)
{
        struct dns_fwd *d = calloc(1, sizeof(*d));

        if (!d)
                return -ENOMEM;
        d->pins = calloc(MAX_PINS, sizeof(*d->pins));
        if (!d->pins) {
                free(d);
                return -ENOMEM;
        }
        for (size_t i = 0; i < MAX_QUERIES; i++)
                d->q[i].fd = -1;
        for (size_t i = 0; i < MAX_PEERS; i++)
                d->p[i].fd = -1;
        gw->dnsf = d;
        return 0;
}

static void query_free(struct net_gw *gw, struct query *q)
{
        if (q->fd >= 0) {
                epoll_ctl(gw->inner_fd, EPOLL_CTL_DEL, q->fd, NULL);
                close(q->fd);
        }
        free(q->msg);
        free(q->ans);
        *q = (struct query){.fd = -1, .gen = q->gen + 1};
}

static void peer_close(struct net_gw *gw, struct peer *p)
{
        if (p->fd >= 0) {
                epoll_ctl(gw->inner_fd, EPOLL_CTL_DEL, p->fd, NULL);
                close(p->fd);
        }
        free(p->buf);
        *p = (struct peer){.fd = -1, .gen = p->gen + 1};
}

void net_dnsf_free(struct net_gw *gw)
{
        struct dns_fwd *d = gw->dnsf;

        if (!d)
                return;
        for (size_t i = 0; i < MAX_QUERIES; i++)
                if (d->q[i].used)
                        query_free(gw, &d->q[i]);
        for (size_t i = 0; i < MAX_PEERS; i++)
                if (d->p[i].used)
                        peer_close(gw, &d->p[i]);
        free(d->pins);
        free(d);
        gw->dnsf = NULL;
}

/* ------------------------------------------------------------------------ */
/* Pins: which names this sandbox resolved to an address                    */
/* ------------------------------------------------------------------------ */

static void pin_add(struct dns_fwd *d, const char *name, const struct in6_addr *a, uint32_t ttl,
                    uint64_t now)
{
        uint64_t expires = now + (uint64_t)MIN(MAX(ttl, PIN_MIN_S), PIN_MAX_S) * 1000 * MS;
        struct pin *victim = NULL;

        for (size_t i = 0; i < d->n_pins; i++) {
                struct pin *p = &d->pins[i];
                if (IN6_ARE_ADDR_EQUAL(&p->addr, a) && streq(p->name, name)) {
                        p->expires = MAX(p->expires, expires);
                        return;
                }
                if (!victim || p->expires < victim->expires)
                        victim = p;
        }
        if (d->n_pins < MAX_PINS)
                victim = &d->pins[d->n_pins++];
        snprintf(victim->name, sizeof(victim->name), "%s", name);
        victim->addr = *a;
        victim->expires = expires;
}

size_t net_dnsf_names(struct net_gw *gw, const struct in6_addr *a, const char **names, size_t max)
{
        struct dns_fwd *d = gw->dnsf;
        uint64_t now = net_now();
        size_t n = 0;

        for (size_t i = 0; i < d->n_pins && n < max; i++)
                if (d->pins[i].expires > now && IN6_ARE_ADDR_EQUAL(&d->pins[i].addr, a))
                        names[n++] = d->pins[i].name;
        return n;
}

/* ------------------------------------------------------------------------ */
/* Answers to the guest                                                     */
/* ------------------------------------------------------------------------ */

static void deliver(struct net_gw *gw, const struct origin *o, uint8_t *m, size_t n,
                    const struct dns_question *q)
{
        if (o->stream) {
                struct peer *p = &gw->dnsf->p[o->peer];
                uint8_t hdr[2];
                struct iovec iov[2] = {{hdr, 2}, {m, n}};
                ssize_t w;

                if (!p->used || p->gen != o->peer_gen)
                        return;
                net_put16(hdr, (uint16_t)n);
                w = writev(p->fd, iov, 2);
                if (w != (ssize_t)(n + 2))
                        peer_close(gw, p); /* the guest does not read: drop it */
                return;
        }
        if (n > o->limit) {
                n = dns_truncate(m, q);
                gw->stats.dns_truncated++;
        }
        net_udp_to_guest(gw, &o->server, 53, &o->guest, o->gport, m, n);
}

static void reply_error(struct net_gw *gw, const struct origin *o, const uint8_t *msg,
                        const struct dns_question *q, uint8_t rcode)
{
        size_t n = dns_reply_error(msg, q, rcode, gw->dnsf->out, sizeof(gw->dnsf->out));

        if (n)
                deliver(gw, o, gw->dnsf->out, n, q);
}

/* Rebind protection: true when every address in the answer may be used. */
static bool answer_allowed(struct net_gw *gw, const struct query *qr, const uint8_t *m, size_t n)
{
        struct dns_addr a[64];
        size_t na;
        const char *names[1] = {qr->q.name};

        if (dns_parse_answers(m, n, a, ARRAY_SIZE(a), &na) < 0)
                return false;
        na = MIN(na, ARRAY_SIZE(a));
        for (size_t i = 0; i < na; i++) {
                struct net_policy_query pq = {
                        .direction = NET_DIR_EGRESS,
                        .addr = &a[i].addr,
                        .groups = net_groups(gw, &a[i].addr),
                        .names = names,
                        .n_names = 1,
                        .ignore_ports = true,
                };

                if (pq.groups & NET_GROUP_PUBLIC)
                        continue;
                if (net_policy_eval(&gw->policy, &pq, NULL) == NET_ALLOW)
                        continue;
                gw->stats.dns_rebind_blocked++;
                net_report_deny(gw, &(struct net_deny){.direction = NET_DIR_EGRESS,
                                                       .name = qr->q.name,
                                                       .rebind = true,
                                                       .dst = a[i].addr});
                return false;
        }
        for (size_t i = 0; i < na; i++)
                pin_add(gw->dnsf, qr->q.name, &a[i].addr, a[i].ttl, net_now());
        return true;
}

/* An answer from upstream for query qi: 0 when taken, -EBADMSG when it is
 * not the answer to this query. */
static int answer(struct net_gw *gw, struct query *qr, uint8_t *m, size_t n)
{
        struct dns_question aq;

        if (n < DNS_HDR_LEN || net_get16(m) != qr->up_id || dns_parse_question(m, n, &aq) < 0 ||
            !streq(aq.name, qr->q.name) || aq.qtype != qr->q.qtype || !(m[2] & 0x80))
                return -EBADMSG;
        net_put16(m, qr->guest_id);
        aq.id = qr->guest_id;
        if (answer_allowed(gw, qr, m, n))
                deliver(gw, &qr->o, m, n, &aq);
        else
                reply_error(gw, &qr->o, m, &aq, DNS_RCODE_NXDOMAIN);
        query_free(gw, qr);
        return 0;
}

/* ------------------------------------------------------------------------ */
/* Upstream                                                                 */
/* ------------------------------------------------------------------------ */

static int query_send(struct net_gw *gw, struct query *qr)
{
        const struct sockaddr_in6 *s = &gw->dns[qr->upstream];
        struct sockaddr_storage sa;
        socklen_t sl = net_sockaddr(&s->sin6_addr, ntohs(s->sin6_port), &sa);
        uint32_t idx = (uint32_t)(qr - gw->dnsf->q);
        int fd;

        fd = socket(sa.ss_family,
                    (qr->tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        if (connect(fd, (struct sockaddr *)&sa, sl) < 0 && errno != EINPROGRESS) {
                int r = negative_errno();
                close(fd);
                return r;
        }
        qr->fd = fd;
        qr->sent = 0;
        qr->alen = 0;
        if (!qr->tcp && send(fd, qr->msg + 2, qr->len - 2, MSG_DONTWAIT) < 0) {
                int r = negative_errno();
                qr->fd = safe_close(fd);
                return r;
        }
        if (net_inner_add(gw, fd, qr->tcp ? EPOLLOUT | EPOLLIN : EPOLLIN,
                          ep_ref(EP_DNS, idx, qr->gen)) < 0) {
                qr->fd = safe_close(fd);
                return -EIO;
        }
        qr->deadline = net_now() + gw->cfg.dns_timeout_ms * MS;
        net_timer_arm(gw, qr->deadline);
        return 0;
}

/* This upstream failed or timed out: the next one, or SERVFAIL. */
static void query_next(struct net_gw *gw, struct query *qr)
{
        if (qr->fd >= 0) {
                epoll_ctl(gw->inner_fd, EPOLL_CTL_DEL, qr->fd, NULL);
                qr->fd = safe_close(qr->fd);
        }
        while (++qr->upstream < gw->n_dns)
                if (query_send(gw, qr) == 0)
                        return;
        net_put16(qr->msg + 2, qr->guest_id);
        reply_error(gw, &qr->o, qr->msg + 2, &qr->q, DNS_RCODE_SERVFAIL);
        query_free(gw, qr);
}

static void query_start(struct net_gw *gw, const uint8_t *m, size_t n, const struct origin *o)
{
        struct dns_fwd *d = gw->dnsf;
        const char *names[1];
        struct dns_question q;
        const struct net_rule *rule;
        struct net_policy_query pq = {.direction = NET_DIR_EGRESS, .names = names, .n_names = 1};
        struct query *qr = NULL;

        gw->stats.dns_queries++;
        if (dns_parse_question(m, n, &q) < 0 || (q.flags & 0x8000))
                return; /* not a query we can answer, not even with an error */
        if (!gw->policy.dns) {
                reply_error(gw, o, m, &q, DNS_RCODE_REFUSED);
                return;
        }
        names[0] = q.name;
        if (net_policy_eval(&gw->policy, &pq, &rule) == NET_DENY) {
                gw->stats.dns_denied++;
                net_report_deny(gw, &(struct net_deny){.direction = NET_DIR_EGRESS,
                                                       .name = q.name,
                                                       .rule = rule});
                reply_error(gw, o, m, &q, DNS_RCODE_NXDOMAIN);
                return;
        }
        for (size_t i = 0; i < MAX_QUERIES && !qr; i++)
                if (!d->q[i].used)
                        qr = &d->q[i];
        if (!qr || gw->n_dns == 0 || !(qr->msg = malloc(n + 2))) {
                reply_error(gw, o, m, &q, DNS_RCODE_SERVFAIL);
                return;
        }
        qr->used = true;
        qr->tcp = o->stream;
        qr->o = *o;
        qr->q = q;
        qr->guest_id = q.id;
        if (getrandom(&qr->up_id, sizeof(qr->up_id), GRND_NONBLOCK) != sizeof(qr->up_id))
                qr->up_id = (uint16_t)net_now();
        net_put16(qr->msg, (uint16_t)n);
        memcpy(qr->msg + 2, m, n);
        net_put16(qr->msg + 2, qr->up_id);
        qr->len = n + 2;
        qr->upstream = 0;
        if (query_send(gw, qr) < 0) {
                qr->upstream = 0;
                query_next(gw, qr);
        }
}

void net_dnsf_udp(struct net_gw *gw, const struct net_pkt *k)
{
        bool v4 = k->family == AF_INET;
        struct origin o = {
                .guest = k->src,
                .server = k->dst,
                .gport = k->sport,
        };
        uint16_t limit = dns_udp_limit(k->payload, k->payload_len);
        size_t room = gw->cfg.mtu - (net_l4_off(v4) - NET_ETH_LEN) - NET_UDP_LEN;

        o.limit = (uint16_t)MIN((size_t)limit, room);
        query_start(gw, k->payload, k->payload_len, &o);
}

/* ------------------------------------------------------------------------ */
/* The TCP service                                                          */
/* ------------------------------------------------------------------------ */

int net_dnsf_tcp_open(struct net_gw *gw, int *ret_fd)
{
        struct dns_fwd *d = gw->dnsf;
        struct peer *p = NULL;
        int sv[2];

        for (size_t i = 0; i < MAX_PEERS && !p; i++)
                if (!d->p[i].used)
                        p = &d->p[i];
        if (!p)
                return -EMFILE;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
                return negative_errno();
        p->buf = malloc(2 + MSG_MAX);
        if (!p->buf || net_inner_add(gw, sv[0], EPOLLIN | EPOLLRDHUP,
                                     ep_ref(EP_DNS_PEER, (uint32_t)(p - d->p), p->gen)) < 0) {
                free(p->buf);
                p->buf = NULL;
                close(sv[0]);
                close(sv[1]);
                return -ENOMEM;
        }
        p->used = true;
        p->fd = sv[0];
        p->len = 0;
        *ret_fd = sv[1];
        return 0;
}

static void peer_event(struct net_gw *gw, struct peer *p, uint32_t events)
{
        uint32_t idx = (uint32_t)(p - gw->dnsf->p);
        ssize_t n = read(p->fd, p->buf + p->len, 2 + MSG_MAX - p->len);
        size_t off = 0;

        if (n <= 0) {
                if (n < 0 && errno == EAGAIN && !(events & (EPOLLHUP | EPOLLERR)))
                        return;
                peer_close(gw, p);
                return;
        }
        p->len += (size_t)n;
        while (p->len - off >= 2) {
                size_t mlen = net_get16(p->buf + off);
                struct origin o = {.stream = true, .peer = idx, .peer_gen = p->gen};

                if (mlen < DNS_HDR_LEN) {
                        peer_close(gw, p);
                        return;
                }
                if (p->len - off < 2 + mlen)
                        break;
                query_start(gw, p->buf + off + 2, mlen, &o);
                if (!p->used)
                        return;
                off += 2 + mlen;
        }
        memmove(p->buf, p->buf + off, p->len - off);
        p->len -= off;
}

static void upstream_event(struct net_gw *gw, struct query *qr, uint32_t events)
{
        if (!qr->tcp) {
                for (int i = 0; i < 8 && qr->used; i++) {
                        ssize_t n = recv(qr->fd, gw->dnsf->out, MSG_MAX, MSG_DONTWAIT);
                        if (n < 0 && errno == EAGAIN)
                                return;
                        if (n < 0) {
                                query_next(gw, qr); /* refused: the next server */
                                return;
                        }
                        answer(gw, qr, gw->dnsf->out, (size_t)n);
                }
                return;
        }
        if (qr->sent < qr->len && (events & EPOLLOUT)) {
                ssize_t w = send(qr->fd, qr->msg + qr->sent, qr->len - qr->sent,
                                 MSG_DONTWAIT | MSG_NOSIGNAL);
                if (w < 0 && errno != EAGAIN) {
                        query_next(gw, qr);
                        return;
                }
                if (w > 0)
                        qr->sent += (size_t)w;
        }
        if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                ssize_t n;

                if (!qr->ans && !(qr->ans = malloc(2 + MSG_MAX))) {
                        query_next(gw, qr);
                        return;
                }
                n = recv(qr->fd, qr->ans + qr->alen, 2 + MSG_MAX - qr->alen, MSG_DONTWAIT);
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n <= 0) {
                        query_next(gw, qr);
                        return;
                }
                qr->alen += (size_t)n;
                if (qr->alen >= 2) {
                        size_t need = 2 + (size_t)net_get16(qr->ans);
                        if (qr->alen >= need) {
                                /* answer() frees qr and with it ans: copy first. */
                                memcpy(gw->dnsf->out, qr->ans + 2, need - 2);
                                if (answer(gw, qr, gw->dnsf->out, need - 2) < 0)
                                        query_next(gw, qr);
                        }
                }
        }
}

void net_dnsf_event(struct net_gw *gw, enum ep_type t, uint32_t idx, uint32_t gen, uint32_t events)
{
        struct dns_fwd *d = gw->dnsf;

        if (t == EP_DNS_PEER) {
                if (idx < MAX_PEERS && d->p[idx].used && d->p[idx].gen == gen)
                        peer_event(gw, &d->p[idx], events);
                return;
        }
        if (idx < MAX_QUERIES && d->q[idx].used && d->q[idx].gen == gen)
                upstream_event(gw, &d->q[idx], events);
}

uint64_t net_dnsf_timer(struct net_gw *gw, uint64_t now)
{
        struct dns_fwd *d = gw->dnsf;
        uint64_t next = 0;

        for (size_t i = 0; i < MAX_QUERIES; i++) {
                struct query *qr = &d->q[i];

                if (!qr->used)
                        continue;
                if (qr->deadline <= now) {
                        gw->stats.dns_timeouts++;
                        query_next(gw, qr);
                }
                if (qr->used && (!next || qr->deadline < next))
                        next = qr->deadline;
        }
        return next;
}
