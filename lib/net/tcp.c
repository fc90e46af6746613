/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: the TCP translator. No TCP stack: each guest
 * connection is mapped onto one host socket, and the kernel's TCP does the
 * real work on the host side. What we keep per flow is the two sequence
 * spaces and a few flags.
 *
 * Opening (egress): the guest's SYN is checked against the policy, then a
 * non-blocking connect() starts; only when it succeeds does the guest get
 * our SYN-ACK (MSS from the MTU, window scale only if the guest offered
 * one, no SACK or timestamps). A refusal, a denial, the flow limit or the
 * connect timeout answer RST; a host or network the host cannot reach, or
 * that prohibits the connection, the ICMP error that says so (the guest's
 * connect() fails as the host's did). Inbound (published ports): the accepted
 * socket gets a SYN sent into the guest, and the flow opens on its SYN-ACK.
 *
 * Guest to host: data is taken in order at rcv_nxt (an overlap is trimmed)
 * and send()-ed without blocking. A segment after a gap is answered with a
 * duplicate ACK, so the guest fast-retransmits what is missing, and kept
 * (up to OOO_FLOW_MAX bytes in OOO_SEGS_MAX segments per flow, OOO_TOTAL_MAX
 * in all; one that overlaps kept data is not): when the gap is filled, the
 * kept data follows it to the host and one ACK covers it all. Without that,
 * a guest that lost one segment of a flight had to resend the whole flight,
 * one round trip per segment, or after a timeout with its timer backing
 * off. The window we advertise is the free space of the host socket's send
 * buffer, but the kernel counts its own overhead too and may refuse the end
 * of a flight we invited: that tail is held (up to HELD_MAX per flow),
 * acknowledged, and written on EPOLLOUT before anything newer; only beyond
 * that bound is data dropped for the guest to resend. When the window runs
 * low we wait for EPOLLOUT and send a window update. ACKs are batched: one
 * per flow per batch of frames.
 *
 * Host to guest: unacknowledged data stays in the host socket. We peek at
 * it from the offset snd_nxt - snd_una (SO_PEEK_OFF; where the kernel lacks
 * it, a discard buffer in front of the peek) straight into the frame queue,
 * as MSS-sized segments, as far as the guest's window allows; when the
 * guest acknowledges, that many bytes are discarded from the socket
 * (MSG_TRUNC). On RTO (1 s at first, doubling to 30 s) or three duplicate
 * ACKs, snd_nxt goes back to snd_una and sending resumes from peek offset
 * 0. A zero window is probed with one byte on the RTO.
 *
 * Closing: the guest's FIN, once everything before it reached the host
 * socket, becomes shutdown(SHUT_WR); the host's EOF becomes our FIN once all
 * data before it was sent. When both FINs are acknowledged the host socket
 * is closed and the flow lingers 2 s to answer a retransmitted FIN. A
 * guest RST aborts the host socket (SO_LINGER 0: the host peer sees RST);
 * a host error sends RST to the guest. Idle flows end after 2 hours,
 * half-closed ones after 60 s without progress.
 */
#include "net-internal.h"

#include <errno.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lib/core/util.h"

#define TCP_WS        8
#define RTO_INIT_MS   1000u
#define RTO_MAX_MS    30000u
#define MAX_RETRIES   10
#define IDLE_MS       (2u * 3600u * 1000u)
#define CLOSING_MS    60000u
#define LINGER_MS     2000u
#define SEGS_MAX      64
#define DISCARD_MAX   (1u << 20)   /* in flight without SO_PEEK_OFF */
#define HELD_MAX      (256u << 10) /* guest data held while the host socket is full */
#define OOO_FLOW_MAX  (4u << 20)   /* out-of-order guest data kept per flow */
#define OOO_SEGS_MAX  512u         /* ... in so many segments at most */
#define OOO_TOTAL_MAX (16u << 20)  /* ... and in all */
#define MS            1000000ull

#define SEQ_LT(a, b) ((int32_t)((a) - (b)) < 0)
#define SEQ_LE(a, b) ((int32_t)((a) - (b)) <= 0)

static uint32_t random_isn(void)
{
        uint32_t v = 0;

        if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != sizeof(v))
                v = (uint32_t)net_now();
        return v;
}

/* Free space of the host socket's send buffer: the window we offer. The
 * kernel takes data while the memory queued (SK_MEMINFO_WMEM_QUEUED, skb
 * overhead included) is below the buffer size, so that is the measure;
 * the bytes queued (SIOCOUTQ) would overstate the room. Offering all of it
 * (rather than a safe half) lets the socket fill now and then, which is
 * what makes the kernel grow its buffer; what it then refuses is held.
 * Zero while data is held: that goes first.
 *
 * A window smaller than a segment is offered as zero (receiver-side silly
 * window avoidance): a Linux sender holding a full segment does not send
 * into it but waits for its persist timer (200 ms and more), while a zero
 * window makes us announce the space on EPOLLOUT. The threshold is capped
 * at an eighth of the buffer, less than EPOLLOUT guarantees (a third
 * free), so that wake-up always reopens the window. */
static uint32_t host_space(const struct flow *f)
{
        uint32_t mem[SK_MEMINFO_VARS];
        socklen_t sl = sizeof(mem);
        int outq = 0, sndbuf = 0;
        uint32_t space, buf;

        if (f->fd < 0 || f->tcp.flags & TCP_F_GUEST_FIN || f->tcp.held_len)
                return 0;
        if (getsockopt(f->fd, SOL_SOCKET, SO_MEMINFO, mem, &sl) == 0 &&
            sl > SK_MEMINFO_WMEM_QUEUED * sizeof(uint32_t)) {
                buf = mem[SK_MEMINFO_SNDBUF];
                space = buf > mem[SK_MEMINFO_WMEM_QUEUED] ? buf - mem[SK_MEMINFO_WMEM_QUEUED] : 0;
        } else {
                sl = sizeof(sndbuf);
                if (ioctl(f->fd, SIOCOUTQ, &outq) < 0 ||
                    getsockopt(f->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &sl) < 0)
                        return 0;
                buf = (uint32_t)MAX(sndbuf, 0);
                space = sndbuf > outq ? (uint32_t)(sndbuf - outq) / 2 : 0;
        }
        return space < MIN((uint32_t)f->tcp.mss, buf / 8) ? 0 : space;
}

static uint16_t window_field(const struct flow *f, bool syn)
{
        uint32_t space = host_space(f);

        if (syn)
                return (uint16_t)MIN(space, 65535u);
        return (uint16_t)MIN(space >> f->tcp.our_ws, 65535u);
}

/* We announced a zero window or hold data: on EPOLLOUT, write what is held
 * and announce the space. */
static void want_space(struct net_gw *gw, uint32_t idx)
{
        struct flow *f = &gw->flows[idx];

        if (f->fd < 0 || (f->tcp.flags & TCP_F_WANT_OUT) || f->tcp.state == TS_CONNECTING ||
            ((f->tcp.flags & TCP_F_GUEST_FIN) && !f->tcp.held_len))
                return;
        f->tcp.flags |= TCP_F_WANT_OUT;
        net_flow_set_events(gw, idx, EPOLLIN | EPOLLRDHUP | EPOLLOUT | EPOLLET);
}

/* A segment without data from the flow's remote end to the guest: SYN
 * (SYN-ACK) at snd_una, everything else at snd_nxt. */
static void send_ctl(struct net_gw *gw, uint32_t idx, uint8_t flags)
{
        struct flow *f = &gw->flows[idx];
        struct tcp_flow *t = &f->tcp;
        bool v4 = net_addr_is_v4(&f->key.gaddr), syn = flags & NET_TCP_SYN;
        uint8_t opt[NET_TCP_SYN_OPT_LEN];
        size_t opt_len = 0, hl;
        uint8_t *p = net_tx_reserve(gw, net_l4_off(v4) + NET_TCP_LEN + sizeof(opt));

        if (!p)
                return;
        if (syn) {
                net_tcp_syn_opts(opt, t->mss, t->our_ws);
                /* Window scale only when both ends use it: an inbound SYN
                 * offers it, a SYN-ACK only answers an offer. */
                opt_len = t->our_ws ? NET_TCP_SYN_OPT_LEN : 4;
        }
        t->last_win = window_field(f, syn);
        if (flags & NET_TCP_ACK)
                t->ack_sent = t->rcv_nxt;
        if (t->last_win == 0)
                want_space(gw, idx);
        hl = net_tcp_header(p + net_l4_off(v4), f->key.rport, f->key.gport,
                            syn ? t->snd_una : t->snd_nxt, flags & NET_TCP_ACK ? t->rcv_nxt : 0,
                            flags, t->last_win, opt, opt_len);
        net_tx_l4(gw, p, &f->key.raddr, &f->key.gaddr, IPPROTO_TCP, hl);
}

/* RST for a segment that belongs to no flow, or that we refuse. */
static void reset_packet(struct net_gw *gw, const struct net_pkt *k)
{
        bool v4 = k->family == AF_INET;
        uint8_t *p = net_tx_reserve(gw, net_l4_off(v4) + NET_TCP_LEN);
        uint32_t ack = k->seq + (uint32_t)k->payload_len + !!(k->tcp_flags & NET_TCP_SYN) +
                       !!(k->tcp_flags & NET_TCP_FIN);
        size_t hl;

        if (!p)
                return;
        if (k->tcp_flags & NET_TCP_ACK)
                hl = net_tcp_header(p + net_l4_off(v4), k->dport, k->sport, k->ack, 0, NET_TCP_RST,
                                    0, NULL, 0);
        else
                hl = net_tcp_header(p + net_l4_off(v4), k->dport, k->sport, 0, ack,
                                    NET_TCP_RST | NET_TCP_ACK, 0, NULL, 0);
        net_tx_l4(gw, p, &k->dst, &k->src, IPPROTO_TCP, hl);
}

/* A duplicate ACK, now: the same ACK number and window as the last one, so
 * that the guest counts it and retransmits after three (fast retransmit)
 * instead of waiting for its RTO. */
static void dup_ack(struct net_gw *gw, uint32_t idx)
{
        struct flow *f = &gw->flows[idx];
        struct tcp_flow *t = &f->tcp;
        bool v4 = net_addr_is_v4(&f->key.gaddr);
        uint8_t *p = net_tx_reserve(gw, net_l4_off(v4) + NET_TCP_LEN);
        size_t hl;

        if (!p)
                return;
        t->ack_sent = t->rcv_nxt;
        hl = net_tcp_header(p + net_l4_off(v4), f->key.rport, f->key.gport, t->snd_nxt, t->rcv_nxt,
                            NET_TCP_ACK, t->last_win, NULL, 0);
        net_tx_l4(gw, p, &f->key.raddr, &f->key.gaddr, IPPROTO_TCP, hl);
}

static void ack_due(struct net_gw *gw, uint32_t idx, bool now)
{
        struct tcp_flow *t = &gw->flows[idx].tcp;

        if (now)
                t->flags |= TCP_F_ACK_NOW;
        if (!(t->flags & TCP_F_ACK_DUE)) {
                t->flags |= TCP_F_ACK_DUE;
                gw->ack_list[gw->n_ack++] = idx;
        }
}

/* Frees the flow; the host peer sees RST (SO_LINGER {1, 0} before close). */
static void host_abort(struct net_gw *gw, uint32_t idx)
{
        struct flow *f = &gw->flows[idx];
        struct linger l = {1, 0};

        if (f->fd >= 0 && !(f->tcp.flags & TCP_F_UNIX))
                setsockopt(f->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        net_flow_free(gw, idx);
}

/* Both ways: RST to the guest, RST to the host. */
static void reset_flow(struct net_gw *gw, uint32_t idx)
{
        send_ctl(gw, idx, NET_TCP_RST | NET_TCP_ACK);
        host_abort(gw, idx);
}

/* The host's connect() failed with err: tell the guest's SYN the way the
 * host was told. Unreachable or prohibited become that ICMP error, which
 * fails the guest's connect() with the same errno; the rest (refused,
 * timed out) a RST. Frees the flow. */
static void syn_failed(struct net_gw *gw, uint32_t idx, int err)
{
        struct flow *f = &gw->flows[idx];
        struct tcp_flow *t = &f->tcp;
        uint8_t syn[NET_TCP_LEN];

        switch (err) {
        case ENETUNREACH:
        case EHOSTUNREACH:
        case EACCES:
        case EPERM:
                net_tcp_header(syn, f->key.gport, f->key.rport, t->rcv_nxt - 1, 0, NET_TCP_SYN, 0,
                               NULL, 0);
                net_icmp_flow_error(gw,
                                    err == ENETUNREACH    ? NET_ICMP_NET_UNREACH
                                    : err == EHOSTUNREACH ? NET_ICMP_HOST_UNREACH
                                                          : NET_ICMP_PROHIBITED,
                                    &f->key, false, syn, sizeof(syn));
                break;
        default:
                t->snd_nxt = t->snd_una;
                send_ctl(gw, idx, NET_TCP_RST | NET_TCP_ACK);
        }
        net_flow_free(gw, idx);
}

static void arm(struct net_gw *gw, uint32_t idx, uint32_t ms, bool rto)
{
        gw->flows[idx].tcp.rto_armed = rto;
        net_flow_deadline(gw, idx, net_now() + ms * MS);
}

/* The deadline once nothing is in flight: idle or closing. */
static void arm_idle(struct net_gw *gw, uint32_t idx)
{
        const struct tcp_flow *t = &gw->flows[idx].tcp;

        arm(gw, idx, t->flags & (TCP_F_GUEST_FIN | TCP_F_FIN_SENT) ? CLOSING_MS : IDLE_MS, false);
}

/* Discards n acknowledged bytes from the host socket. */
static int discard(struct net_gw *gw, struct flow *f, uint32_t n)
{
        while (n > 0) {
                ssize_t r;

                if (f->tcp.flags & TCP_F_UNIX)
                        r = recv(f->fd, gw->scratch, MIN(n, NET_FRAME_MAX), MSG_DONTWAIT);
                else
                        r = recv(f->fd, NULL, n, MSG_TRUNC | MSG_DONTWAIT);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        return r < 0 ? -errno : -EIO;
                n -= (uint32_t)r;
        }
        return 0;
}

/* Go back to the oldest unacknowledged byte and send again from there. */
static void rewind_send(struct flow *f)
{
        struct tcp_flow *t = &f->tcp;
        int zero = 0;

        t->snd_nxt = t->snd_una;
        if (t->flags & TCP_F_PEEK_OFF)
                setsockopt(f->fd, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero));
        t->dupacks = 0;
}

/* Both directions closed and acknowledged: close the host socket, linger. */
static void check_closed(struct net_gw *gw, uint32_t idx)
{
        struct flow *f = &gw->flows[idx];
        struct tcp_flow *t = &f->tcp;

        if (!(t->flags & TCP_F_GUEST_FIN) || !(t->flags & TCP_F_FIN_ACKED) || t->held_len)
                return;
        if (f->fd >= 0) {
                epoll_ctl(gw->inner_fd, EPOLL_CTL_DEL, f->fd, NULL);
                close(f->fd);
                f->fd = -1;
                f->events = 0;
        }
        t->state = TS_LINGER;
        arm(gw, idx, LINGER_MS, false);
}

/* Our FIN, once the host has closed and everything before it was sent. */
static void maybe_fin(struct net_gw *gw, uint32_t idx)
{
        struct tcp_flow *t = &gw->flows[idx].tcp;

        if (!(t->flags & TCP_F_HOST_EOF) || (t->flags & TCP_F_FIN_ACKED))
                return;
        if (!(t->flags & TCP_F_FIN_SENT)) {
                t->fin_seq = t->snd_nxt;
                t->flags |= TCP_F_FIN_SENT;
        }
        if (t->snd_nxt != t->fin_seq)
                return;
        if (t->snd_nxt == t->snd_una)
                arm(gw, idx, t->rto_ms, true);
        send_ctl(gw, idx, NET_TCP_FIN | NET_TCP_ACK);
        t->snd_nxt = t->fin_seq + 1;
        if (SEQ_LT(t->snd_max, t->snd_nxt))
                t->snd_max = t->snd_nxt;
}

/* Peeks host data for up to budget bytes straight into the frame queue and
 * sends them. Returns the bytes sent (*ret_want: the bytes asked for), 0
 * when the socket had nothing, -EAGAIN when the queue has no room,
 * -ECONNRESET when the flow is gone. */
static ssize_t push_once(struct net_gw *gw, uint32_t idx, uint32_t budget, size_t *ret_want)
{
        struct flow *f = &gw->flows[idx];
        struct tcp_flow *t = &f->tcp;
        bool v4 = net_addr_is_v4(&f->key.gaddr), peek_off = t->flags & TCP_F_PEEK_OFF;
        uint32_t in_flight = t->snd_nxt - t->snd_una;
        size_t hdr = net_l4_off(v4) + NET_TCP_LEN, stride = 4 + hdr + t->mss, nio = 0, want = 0;
        struct iovec iov[SEGS_MAX + 1];
        struct msghdr mh = {.msg_iov = iov};
        uint32_t segs;
        uint8_t *base;
        ssize_t n;

        segs = (uint32_t)MIN((size_t)SEGS_MAX, net_tx_room(gw) / stride);
        segs = MIN(segs, (budget + t->mss - 1) / t->mss);
        if (segs == 0 || !(base = net_tx_reserve(gw, segs * stride - 4)))
                return -EAGAIN; /* the queue is full: resumed when it drains */
        if (!peek_off && in_flight) {
                if (in_flight > DISCARD_MAX)
                        return -EAGAIN;
                if (!gw->sink && !(gw->sink = malloc(DISCARD_MAX)))
                        return -EAGAIN;
                iov[nio++] = (struct iovec){gw->sink, in_flight};
        }
        for (uint32_t i = 0; i < segs; i++) {
                size_t len = MIN((size_t)t->mss, (size_t)budget - want);
                iov[nio++] = (struct iovec){base + i * stride + hdr, len};
                want += len;
        }
        mh.msg_iovlen = nio;
        n = recvmsg(f->fd, &mh, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
                reset_flow(gw, idx);
                return -ECONNRESET;
        }
        if (n < 0)
                n = 0;
        if (!peek_off)
                n = n > (ssize_t)in_flight ? n - (ssize_t)in_flight : 0;
        *ret_want = want;
        if (n == 0)
                return 0;
        t->last_win = window_field(f, false);
        t->ack_sent = t->rcv_nxt;
        if (t->last_win == 0)
                want_space(gw, idx);
        for (size_t off = 0, i = 0; off < (size_t)n; i++) {
                size_t len = MIN((size_t)t->mss, (size_t)n - off);
                uint8_t *fr = base + i * stride;

                net_tcp_header(fr + net_l4_off(v4), f->key.rport, f->key.gport,
                               t->snd_nxt + (uint32_t)off, t->rcv_nxt,
                               NET_TCP_ACK | (off + len == (size_t)n ? NET_TCP_PSH : 0),
                               t->last_win, NULL, 0);
                net_tx_l4(gw, fr, &f->key.raddr, &f->key.gaddr, IPPROTO_TCP, NET_TCP_LEN + len);
                off += len;
        }
        gw->stats.bytes_from_host += (uint64_t)n;
        if (t->snd_nxt == t->snd_una)
                arm(gw, idx, t->rto_ms, true);
        t->snd_nxt += (uint32_t)n;
        if (SEQ_LT(t->snd_max, t->snd_nxt))
                t->snd_max = t->snd_nxt;
        return n;
}

/* Sends host data to the guest as far as its window and our queue allow;
 * force_wnd > 0 probes a zero window. */
static void push(struct net_gw *gw, uint32_t idx, uint32_t force_wnd)
{
        struct flow *f = &gw->flows[idx];
        struct tcp_flow *t = &f->tcp;

        if (t->state != TS_ESTABLISHED || f->fd < 0)
                return;
        for (int round = 0; round < 16; round++) {
                uint32_t in_flight = t->snd_nxt - t->snd_una;
                uint32_t wnd = MAX(t->guest_wnd, force_wnd);
                size_t want = 0;
                ssize_t n;

                uint32_t budget;

                if ((t->flags & TCP_F_FIN_SENT) && !SEQ_LT(t->snd_nxt, t->fin_seq)) {
                        maybe_fin(gw, idx); /* sends it again after a rewind */
                        return;
                }
                if (in_flight >= wnd) {
                        if (wnd == 0 && in_flight == 0 && !t->rto_armed)
                                arm(gw, idx, t->rto_ms, true); /* probe it later */
                        return;
                }
                budget = wnd - in_flight;
                if (t->flags & TCP_F_FIN_SENT)
                        budget = MIN(budget, t->fin_seq - t->snd_nxt);
                n = push_once(gw, idx, budget, &want);
                if (n < 0)
                        return;
                if ((size_t)n < want) {
                        /* The socket is drained: after EOF, our FIN. */
                        maybe_fin(gw, idx);
                        return;
                }
        }
}

/* ------------------------------------------------------------------------ */
/* Opening                                                                  */
/* ------------------------------------------------------------------------ */

static uint16_t mss_for(const struct net_gw *gw, bool v4)
{
        return (uint16_t)MIN(gw->cfg.mtu - (v4 ? 40u : 60u), 65535u);
}

/* Settings every host-side socket gets. */
static void host_socket_setup(struct flow *f)
{
        int one = 1, zero = 0;

        if (!(f->tcp.flags & TCP_F_UNIX))
                setsockopt(f->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (setsockopt(f->fd, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) == 0)
                f->tcp.flags |= TCP_F_PEEK_OFF;
}

/* The host connection exists: answer the guest's SYN. */
static void connected(struct net_gw *gw, uint32_t idx)
{
        struct flow *f = &gw->flows[idx];
        struct tcp_flow *t = &f->tcp;

        t->state = TS_SYN_RCVD;
        t->snd_nxt = t->snd_max = t->snd_una + 1;
        net_flow_set_events(gw, idx, EPOLLIN | EPOLLRDHUP | EPOLLET);
        send_ctl(gw, idx, NET_TCP_SYN | NET_TCP_ACK);
        arm(gw, idx, t->rto_ms, true);
}

static void open_egress(struct net_gw *gw, const struct net_pkt *k, const struct flow_key *key)
{
        bool local_dns = net_is_gw(gw, &k->dst) && k->dport == 53;
        struct sockaddr_storage sa;
        socklen_t sl;
        uint32_t idx;
        struct flow *f;
        struct tcp_flow *t;
        int fd = -1;

        if (local_dns) {
                if (!gw->policy.dns) {
                        reset_packet(gw, k);
                        return;
                }
        } else if (!net_allow_flow(gw, NET_DIR_EGRESS, IPPROTO_TCP, &k->src, k->sport, &k->dst,
                                   k->dport)) {
                reset_packet(gw, k);
                return;
        }
        idx = net_flow_new(gw, FLOW_TCP, key);
        if (idx == FLOW_NONE) {
                gw->stats.tcp_limit_rst++;
                reset_packet(gw, k);
                return;
        }
        gw->stats.tcp_opened++;
        f = &gw->flows[idx];
        t = &f->tcp;
        t->rcv_nxt = k->seq + 1;
        t->guest_ws = k->wscale >= 0 ? (uint8_t)k->wscale : 0;
        t->our_ws = k->wscale >= 0 ? TCP_WS : 0;
        t->mss = MIN(k->mss ? k->mss : 536, mss_for(gw, k->family == AF_INET));
        t->guest_wnd = k->win; /* a SYN's window is never scaled */
        t->snd_una = t->snd_nxt = t->snd_max = random_isn();
        t->rto_ms = RTO_INIT_MS;
        t->state = TS_CONNECTING;

        if (local_dns) {
                if (net_dnsf_tcp_open(gw, &fd) < 0) {
                        net_flow_free(gw, idx);
                        reset_packet(gw, k);
                        return;
                }
                f->fd = fd;
                t->flags |= TCP_F_UNIX;
                host_socket_setup(f);
                connected(gw, idx);
                return;
        }
        sl = net_host_sockaddr(gw, &k->dst, k->dport, &sa);
        fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
        if (fd < 0) {
                net_flow_free(gw, idx);
                reset_packet(gw, k);
                return;
        }
        f->fd = fd;
        host_socket_setup(f);
        if (connect(fd, (struct sockaddr *)&sa, sl) == 0) {
                connected(gw, idx);
                return;
        }
        if (errno != EINPROGRESS) {
                syn_failed(gw, idx, errno);
                return;
        }
        net_flow_set_events(gw, idx, EPOLLOUT | EPOLLET);
        arm(gw, idx, gw->cfg.tcp_connect_timeout_ms, false);
}

void net_tcp_inbound(struct net_gw *gw, int fd, const struct net_port *port,
                     const struct sockaddr_storage *peer)
{
        _cleanup_close_ int owned = fd;
        bool want_v4 = net_addr_is_v4(&port->bind) ? gw->cfg.ipv4 : !gw->cfg.ipv6;
        struct flow_key key = {.proto = IPPROTO_TCP, .gport = port->guest_port};
        struct in6_addr src;
        uint16_t sport;
        uint32_t idx;
        struct flow *f;
        struct tcp_flow *t;

        net_sockaddr_addr(peer, &src, &sport);
        key.gaddr = want_v4 ? gw->guest4m : gw->cfg.guest6;
        key.raddr = *net_gw_addr(gw, want_v4);
        if (!net_allow_flow(gw, NET_DIR_INGRESS, IPPROTO_TCP, &src, sport, &key.gaddr,
                            port->guest_port))
                return;
        /* The guest sees the connection come from the gateway, from the
         * client's port when that is free. */
        key.rport = sport;
        for (int i = 0; i < 16 && net_flow_lookup(gw, &key) != FLOW_NONE; i++)
                key.rport = (uint16_t)(49152 + random_isn() % 16384);
        if (net_flow_lookup(gw, &key) != FLOW_NONE)
                return;
        idx = net_flow_new(gw, FLOW_TCP, &key);
        if (idx == FLOW_NONE) {
                gw->stats.tcp_limit_rst++;
                return;
        }
        gw->stats.tcp_opened++;
        f = &gw->flows[idx];
        t = &f->tcp;
        f->fd = TAKE_FD(owned);
        fd_set_nonblock(f->fd, true);
        t->flags = TCP_F_INBOUND;
        host_socket_setup(f);
        t->our_ws = TCP_WS;
        t->mss = mss_for(gw, want_v4);
        t->snd_una = random_isn();
        t->snd_nxt = t->snd_max = t->snd_una + 1;
        t->rto_ms = RTO_INIT_MS;
        t->state = TS_SYN_SENT;
        net_flow_set_events(gw, idx, EPOLLIN | EPOLLRDHUP | EPOLLET);
        send_ctl(gw, idx, NET_TCP_SYN);
        arm(gw, idx, t->rto_ms, true);
}

/* ------------------------------------------------------------------------ */
/* Segments from the guest                                                  */
/* ------------------------------------------------------------------------ */

static void take_ack(struct net_gw *gw, uint32_t idx, const struct net_pkt *k)
{
        struct flow *f = &gw->flows[idx];
        struct tcp_flow *t = &f->tcp;
        uint32_t ack = k->ack, wnd = (uint32_t)k->win << t->guest_ws;

        if (SEQ_LT(t->snd_una, ack) && SEQ_LE(ack, t->snd_max)) {
                uint32_t data_end = ack;

                if ((t->flags & TCP_F_FIN_SENT) && SEQ_LT(t->fin_seq, ack)) {
                        t->flags |= TCP_F_FIN_ACKED;
                        data_end = t->fin_seq;
                }
                if (SEQ_LT(t->snd_una, data_end) && discard(gw, f, data_end - t->snd_una) < 0) {
                        reset_flow(gw, idx);
                        return;
                }
                t->snd_una = ack;
                if (SEQ_LT(t->snd_nxt, ack))
                        t->snd_nxt = ack; /* data sent before a rewind got there */
                t->dupacks = 0;
                t->retries = 0;
                t->rto_ms = RTO_INIT_MS;
                if (t->snd_nxt != t->snd_una)
                        arm(gw, idx, t->rto_ms, true);
                else
                        arm_idle(gw, idx);
        } else if (ack == t->snd_una && t->snd_nxt != t->snd_una && k->payload_len == 0 &&
                   !(k->tcp_flags & (NET_TCP_SYN | NET_TCP_FIN)) && wnd == t->guest_wnd) {
                if (++t->dupacks == 3) {
                        rewind_send(f);
                        gw->stats.tcp_retransmits++;
                }
        }
        t->guest_wnd = wnd;
}

/* Appends what fits under HELD_MAX of data[0, n) to the held data; returns
 * how much. */
static size_t hold(struct tcp_flow *t, const uint8_t *data, size_t n)
{
        uint8_t *p;

        n = MIN(n, (size_t)(HELD_MAX - t->held_len));
        if (n == 0)
                return 0;
        p = realloc(t->held, t->held_len + n);
        if (!p)
                return 0;
        memcpy(p + t->held_len, data, n);
        t->held = p;
        t->held_len += (uint32_t)n;
        return n;
}

/* Writes held data to the host socket: 0 when none is left, -EAGAIN when
 * the socket is full again, another -errno when it failed. */
static int flush_held(struct net_gw *gw, struct flow *f)
{
        struct tcp_flow *t = &f->tcp;
        ssize_t n;

        if (!t->held_len)
                return 0;
        n = send(f->fd, t->held, t->held_len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0)
                return errno == EINTR ? -EAGAIN : -errno;
        gw->stats.bytes_to_host += (uint64_t)n;
        t->held_len -= (uint32_t)n;
        if (t->held_len) {
                memmove(t->held, t->held + n, t->held_len);
                return -EAGAIN;
        }
        free(t->held);
        t->held = NULL;
        if (t->flags & TCP_F_GUEST_FIN)
                shutdown(f->fd, SHUT_WR);
        return 0;
}

/* Passes in-order guest data on to the host socket, holding what it
 * refuses (up to HELD_MAX), and advances rcv_nxt by what was taken. Returns
 * that, or -1 after resetting the flow on a host error. */
static ssize_t deliver(struct net_gw *gw, uint32_t idx, const uint8_t *data, size_t want)
{
        struct flow *f = &gw->flows[idx];
        struct tcp_flow *t = &f->tcp;
        ssize_t n = 0;
        size_t took;

        if (!t->held_len) {
                n = send(f->fd, data, want, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n < 0 && errno != EAGAIN && errno != EINTR) {
                        reset_flow(gw, idx);
                        return -1;
                }
                n = MAX(n, 0);
                gw->stats.bytes_to_host += (uint64_t)n;
        }
        took = (size_t)n + hold(t, data + n, want - (size_t)n);
        gw->stats.tcp_held += took - (size_t)n;
        t->rcv_nxt += (uint32_t)took;
        if (!t->rto_armed)
                arm_idle(gw, idx);
        if ((size_t)n < want)
                want_space(gw, idx);
        return (ssize_t)took;
}

/* Out-of-order guest data, kept in sequence order without overlaps. */
struct tcp_ooo {
        struct tcp_ooo *next;
        uint32_t seq, len;
        uint8_t data[];
};

/* Frees the first kept segment. */
static void pop_ooo(struct net_gw *gw, struct tcp_flow *t)
{
        struct tcp_ooo *s = t->ooo;

        t->ooo = s->next;
        t->ooo_len -= s->len;
        t->ooo_n--;
        gw->ooo_bytes -= s->len;
        free(s);
}

void net_tcp_drop_ooo(struct net_gw *gw, struct tcp_flow *t)
{
        while (t->ooo)
                pop_ooo(gw, t);
}

/* Keeps a segment that arrived after a gap, unless it overlaps kept data
 * (a retransmission of it, most likely) or the bounds are reached. */
static void keep_ooo(struct net_gw *gw, struct tcp_flow *t, uint32_t seq, const uint8_t *data,
                     size_t len)
{
        struct tcp_ooo **p = &t->ooo, *s;

        if (len == 0 || t->ooo_n == OOO_SEGS_MAX || t->ooo_len + len > OOO_FLOW_MAX ||
            gw->ooo_bytes + len > OOO_TOTAL_MAX)
                return;
        while (*p && SEQ_LT((*p)->seq + (*p)->len - 1, seq))
                p = &(*p)->next;
        if (*p && SEQ_LT((*p)->seq, seq + (uint32_t)len))
                return; /* overlaps */
        s = malloc(sizeof(*s) + len);
        if (!s)
                return;
        s->seq = seq;
        s->len = (uint32_t)len;
        memcpy(s->data, data, len);
        s->next = *p;
        *p = s;
        t->ooo_len += (uint32_t)len;
        t->ooo_n++;
        gw->ooo_bytes += len;
        gw->stats.tcp_ooo++;
}

/* After rcv_nxt moved: passes on the kept data it reached. Stops where the
 * host socket (and the held data) is full; what is left stays kept. */
static int deliver_ooo(struct net_gw *gw, uint32_t idx)
{
        struct tcp_flow *t = &gw->flows[idx].tcp;
        struct tcp_ooo *s;

        while ((s = t->ooo) && !SEQ_LT(t->rcv_nxt, s->seq)) {
                uint32_t off = t->rcv_nxt - s->seq;

                if (off < s->len) {
                        ssize_t took = deliver(gw, idx, s->data + off, s->len - off);

                        if (took < 0)
                                return -1;
                        if ((size_t)took < s->len - off)
                                return 0;
                }
                pop_ooo(gw, t);
        }
        return 0;
}

static void take_data(struct net_gw *gw, uint32_t idx, const struct net_pkt *k)
{
        struct flow *f = &gw->flows[idx];
        struct tcp_flow *t = &f->tcp;
        bool fin = k->tcp_flags & NET_TCP_FIN;
        uint32_t off = t->rcv_nxt - k->seq;
        size_t len = k->payload_len;

        if (!len && !fin) {
                if (k->seq != t->rcv_nxt)
                        ack_due(gw, idx, true); /* a window probe: answer it */
                return;
        }
        if (t->flags & TCP_F_GUEST_FIN) {
                ack_due(gw, idx, true); /* a retransmitted FIN */
                return;
        }
        /* Out of order (a gap before it, kept but for a FIN) or entirely
         * old: dup ACK. */
        if ((int32_t)off < 0 || off > len || (off == len && !fin)) {
                if ((int32_t)off < 0 && !fin)
                        keep_ooo(gw, t, k->seq, k->payload, len);
                dup_ack(gw, idx);
                return;
        }
        if (len > off) {
                size_t want = len - off;
                ssize_t took = deliver(gw, idx, k->payload + off, want);

                if (took < 0)
                        return;
                if ((size_t)took == want && t->ooo) {
                        if (fin)
                                net_tcp_drop_ooo(gw, t); /* nothing follows a FIN */
                        else if (deliver_ooo(gw, idx) < 0)
                                return;
                }
                if ((size_t)took < want) {
                        /* Beyond what we hold: dropped. The guest resends it
                         * once the window we announce on EPOLLOUT lets it. */
                        gw->stats.tcp_host_full++;
                        t->flags |= TCP_F_DROPPED;
                        ack_due(gw, idx, true);
                        return;
                }
        }
        if (fin) {
                if (!t->held_len)
                        shutdown(f->fd, SHUT_WR);
                t->rcv_nxt++;
                t->flags |= TCP_F_GUEST_FIN;
                ack_due(gw, idx, true);
                if (!t->rto_armed)
                        arm_idle(gw, idx);
                check_closed(gw, idx);
                return;
        }
        ack_due(gw, idx, false);
}

static void established(struct net_gw *gw, uint32_t idx, const struct net_pkt *k)
{
        struct flow *f = &gw->flows[idx];
        struct tcp_flow *t = &f->tcp;
        uint32_t gen = f->gen;

        if (k->tcp_flags & NET_TCP_SYN) {
                ack_due(gw, idx, true);
                return;
        }
        if (!(k->tcp_flags & NET_TCP_ACK))
                return;
        take_ack(gw, idx, k);
        if (f->type != FLOW_TCP || f->gen != gen)
                return;
        take_data(gw, idx, k);
        if (f->type != FLOW_TCP || f->gen != gen || t->state != TS_ESTABLISHED)
                return;
        check_closed(gw, idx);
        if (t->state == TS_ESTABLISHED)
                push(gw, idx, 0);
}

void net_tcp_from_guest(struct net_gw *gw, const struct net_pkt *k)
{
        struct flow_key key = flow_key_of(k, IPPROTO_TCP);
        uint32_t idx = net_flow_lookup(gw, &key);
        struct flow *f;
        struct tcp_flow *t;

        if (idx == FLOW_NONE) {
                if (k->tcp_flags & NET_TCP_RST)
                        return;
                if ((k->tcp_flags & (NET_TCP_SYN | NET_TCP_ACK)) == NET_TCP_SYN)
                        open_egress(gw, k, &key);
                else
                        reset_packet(gw, k);
                return;
        }
        f = &gw->flows[idx];
        t = &f->tcp;
        if (k->tcp_flags & NET_TCP_RST) {
                host_abort(gw, idx);
                return;
        }
        switch (t->state) {
        case TS_CONNECTING:
                return; /* a retransmitted SYN: we answer once connected */
        case TS_SYN_RCVD:
                if ((k->tcp_flags & (NET_TCP_SYN | NET_TCP_ACK)) == NET_TCP_SYN) {
                        send_ctl(gw, idx, NET_TCP_SYN | NET_TCP_ACK);
                        return;
                }
                if (!(k->tcp_flags & NET_TCP_ACK))
                        return;
                if (k->ack != t->snd_una + 1) {
                        reset_packet(gw, k);
                        return;
                }
                t->snd_una = k->ack;
                t->state = TS_ESTABLISHED;
                t->retries = 0;
                t->guest_wnd = (uint32_t)k->win << t->guest_ws;
                arm_idle(gw, idx);
                established(gw, idx, k);
                return;
        case TS_SYN_SENT:
                if ((k->tcp_flags & (NET_TCP_SYN | NET_TCP_ACK)) != (NET_TCP_SYN | NET_TCP_ACK))
                        return;
                if (k->ack != t->snd_una + 1) {
                        reset_packet(gw, k);
                        return;
                }
                t->rcv_nxt = k->seq + 1;
                if (k->wscale >= 0) {
                        t->guest_ws = (uint8_t)k->wscale;
                } else {
                        t->our_ws = 0;
                        t->guest_ws = 0;
                }
                if (k->mss)
                        t->mss = MIN(t->mss, k->mss);
                t->snd_una = k->ack;
                t->guest_wnd = k->win;
                t->state = TS_ESTABLISHED;
                t->retries = 0;
                arm_idle(gw, idx);
                ack_due(gw, idx, true);
                push(gw, idx, 0);
                return;
        case TS_ESTABLISHED:
                established(gw, idx, k);
                return;
        case TS_LINGER:
                if (k->tcp_flags & NET_TCP_FIN)
                        send_ctl(gw, idx, NET_TCP_ACK);
                return;
        }
}

void net_tcp_flush_acks(struct net_gw *gw)
{
        for (uint32_t i = 0; i < gw->n_ack; i++) {
                uint32_t idx = gw->ack_list[i];
                struct flow *f = &gw->flows[idx];
                struct tcp_flow *t = &f->tcp;
                bool now = t->flags & TCP_F_ACK_NOW;

                t->flags &= (uint16_t) ~(TCP_F_ACK_DUE | TCP_F_ACK_NOW);
                if (f->type != FLOW_TCP || t->state == TS_CONNECTING || t->state == TS_SYN_SENT)
                        continue;
                if (now || t->ack_sent != t->rcv_nxt || window_field(f, false) != t->last_win)
                        send_ctl(gw, idx, NET_TCP_ACK);
        }
        gw->n_ack = 0;
}

/* ------------------------------------------------------------------------ */
/* Host socket events and timers                                            */
/* ------------------------------------------------------------------------ */

void net_tcp_event(struct net_gw *gw, uint32_t idx, uint32_t events)
{
        struct flow *f = &gw->flows[idx];
        struct tcp_flow *t = &f->tcp;

        if (t->state == TS_CONNECTING) {
                int err = 0;
                socklen_t sl = sizeof(err);

                if (getsockopt(f->fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0)
                        err = errno;
                if (err || (events & (EPOLLERR | EPOLLHUP))) {
                        syn_failed(gw, idx, err);
                        return;
                }
                if (events & EPOLLOUT)
                        connected(gw, idx);
                return;
        }
        if (events & EPOLLERR) {
                reset_flow(gw, idx);
                return;
        }
        if (events & (EPOLLRDHUP | EPOLLHUP))
                t->flags |= TCP_F_HOST_EOF;
        if ((events & EPOLLOUT) && (t->flags & TCP_F_WANT_OUT)) {
                int r = flush_held(gw, f);

                if (r < 0 && r != -EAGAIN) {
                        reset_flow(gw, idx);
                        return;
                }
                t->flags &= (uint16_t)~TCP_F_WANT_OUT;
                net_flow_set_events(gw, idx, EPOLLIN | EPOLLRDHUP | EPOLLET);
                /* kept data the full socket stopped, now that it has room */
                if (r == 0 && t->ooo) {
                        uint32_t before = t->rcv_nxt;

                        if (deliver_ooo(gw, idx) < 0)
                                return;
                        if (t->rcv_nxt != before)
                                ack_due(gw, idx, true);
                        r = t->held_len ? -EAGAIN : 0;
                }
                if (r == -EAGAIN) {
                        want_space(gw, idx); /* more to write first */
                } else if (t->flags & TCP_F_DROPPED) {
                        /* The guest sent data we dropped and now waits for its
                         * retransmission timer, which backs off each time the
                         * resent data meets a full socket again (seconds, then
                         * minutes). A window update plus three duplicate ACKs
                         * makes it fast-retransmit at once instead. */
                        t->flags &= (uint16_t)~TCP_F_DROPPED;
                        t->last_win = window_field(f, false);
                        for (int i = 0; i < 4; i++)
                                dup_ack(gw, idx);
                } else {
                        ack_due(gw, idx, true); /* window update */
                }
                if (r == 0 && (t->flags & TCP_F_GUEST_FIN)) {
                        check_closed(gw, idx); /* it waited for the held data */
                        if (t->state == TS_LINGER)
                                return;
                }
        }
        if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))
                push(gw, idx, 0);
}

void net_tcp_resume(struct net_gw *gw)
{
        for (uint32_t i = 0; i < gw->n_flows; i++)
                if (gw->flows[i].type == FLOW_TCP && gw->flows[i].tcp.state == TS_ESTABLISHED)
                        push(gw, i, 0);
}

void net_tcp_timer(struct net_gw *gw, uint32_t idx)
{
        struct flow *f = &gw->flows[idx];
        struct tcp_flow *t = &f->tcp;

        switch (t->state) {
        case TS_CONNECTING:
                t->snd_nxt = t->snd_una;
                send_ctl(gw, idx, NET_TCP_RST | NET_TCP_ACK);
                net_flow_free(gw, idx);
                return;
        case TS_LINGER:
                net_flow_free(gw, idx);
                return;
        case TS_SYN_RCVD:
        case TS_SYN_SENT:
                if (++t->retries > MAX_RETRIES) {
                        host_abort(gw, idx);
                        return;
                }
                t->rto_ms = MIN(t->rto_ms * 2, RTO_MAX_MS);
                send_ctl(gw, idx,
                         t->state == TS_SYN_SENT ? NET_TCP_SYN : NET_TCP_SYN | NET_TCP_ACK);
                arm(gw, idx, t->rto_ms, true);
                return;
        default:
                break;
        }
        if (!t->rto_armed) {
                reset_flow(gw, idx); /* idle for too long */
                return;
        }
        t->rto_armed = false;
        if (t->snd_nxt == t->snd_una &&
            !(t->flags & TCP_F_FIN_SENT && !(t->flags & TCP_F_FIN_ACKED))) {
                if (t->guest_wnd == 0) {
                        push(gw, idx, 1); /* zero-window probe */
                        if (f->type == FLOW_TCP && !f->deadline) {
                                t->rto_ms = MIN(t->rto_ms * 2, RTO_MAX_MS);
                                arm(gw, idx, t->rto_ms, true);
                        }
                        return;
                }
                arm_idle(gw, idx);
                return;
        }
        if (++t->retries > MAX_RETRIES) {
                reset_flow(gw, idx);
                return;
        }
        gw->stats.tcp_retransmits++;
        t->rto_ms = MIN(t->rto_ms * 2, RTO_MAX_MS);
        rewind_send(f);
        arm(gw, idx, t->rto_ms, true);
        push(gw, idx, 0);
}
