/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: the flow table. All flows live in one array sized at
 * creation (max_tcp + max_udp + max_icmp), so nothing a guest does can grow
 * it; free slots form a list through hnext. A flow is found by its key
 * (protocol, guest address and port, remote address and port) through a
 * chained hash table with twice as many buckets as slots. Each slot has a
 * generation, bumped when it is freed, which travels in the epoll data so
 * that an event read before the flow died is recognised as stale. UDP and
 * ICMP flows are also on a least-recently-used list: when one of those
 * types is full, the oldest is closed to make room.
 */
#include "net-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

static uint32_t key_hash(const struct net_gw *gw, const struct flow_key *k)
{
        const uint8_t *p = (const uint8_t *)k;
        uint32_t h = 2166136261u; /* FNV-1a */

        for (size_t i = 0; i < sizeof(*k); i++)
                h = (h ^ p[i]) * 16777619u;
        return h & (gw->n_buckets - 1);
}

int net_flows_init(struct net_gw *gw, uint32_t capacity)
{
        uint32_t nb = 16;

        while (nb < 2 * capacity)
                nb <<= 1;
        gw->flows = calloc(capacity, sizeof(*gw->flows));
        gw->buckets = malloc(nb * sizeof(*gw->buckets));
        gw->ack_list = malloc(capacity * sizeof(*gw->ack_list));
        if (!gw->flows || !gw->buckets || !gw->ack_list)
                return -ENOMEM;
        gw->n_flows = capacity;
        gw->n_buckets = nb;
        for (uint32_t i = 0; i < nb; i++)
                gw->buckets[i] = FLOW_NONE;
        for (uint32_t i = 0; i < capacity; i++) {
                gw->flows[i].fd = -1;
                gw->flows[i].hnext = i + 1 < capacity ? i + 1 : FLOW_NONE;
        }
        gw->free_head = capacity ? 0 : FLOW_NONE;
        gw->lru_head = gw->lru_tail = FLOW_NONE;
        return 0;
}

void net_flows_done(struct net_gw *gw)
{
        if (!gw->flows)
                return;
        for (uint32_t i = 0; i < gw->n_flows; i++)
                if (gw->flows[i].type != FLOW_FREE)
                        net_flow_free(gw, i);
        free(gw->flows);
        free(gw->buckets);
        free(gw->ack_list);
        gw->flows = NULL;
}

uint32_t net_flow_lookup(struct net_gw *gw, const struct flow_key *k)
{
        for (uint32_t i = gw->buckets[key_hash(gw, k)]; i != FLOW_NONE; i = gw->flows[i].hnext)
                if (memcmp(&gw->flows[i].key, k, sizeof(*k)) == 0)
                        return i;
        return FLOW_NONE;
}

static uint32_t *count_of(struct net_gw *gw, enum flow_type type)
{
        return type == FLOW_TCP ? &gw->n_tcp : type == FLOW_UDP ? &gw->n_udp : &gw->n_icmp;
}

static uint32_t max_of(const struct net_gw *gw, enum flow_type type)
{
        return type == FLOW_TCP   ? gw->cfg.max_tcp
               : type == FLOW_UDP ? gw->cfg.max_udp
                                  : gw->cfg.max_icmp;
}

static void lru_unlink(struct net_gw *gw, uint32_t idx)
{
        struct flow *f = &gw->flows[idx];

        if (f->lru_prev != FLOW_NONE)
                gw->flows[f->lru_prev].lru_next = f->lru_next;
        else
                gw->lru_head = f->lru_next;
        if (f->lru_next != FLOW_NONE)
                gw->flows[f->lru_next].lru_prev = f->lru_prev;
        else
                gw->lru_tail = f->lru_prev;
        f->lru_prev = f->lru_next = FLOW_NONE;
}

/* Most recently used at the tail. */
static void lru_append(struct net_gw *gw, uint32_t idx)
{
        struct flow *f = &gw->flows[idx];

        f->lru_prev = gw->lru_tail;
        f->lru_next = FLOW_NONE;
        if (gw->lru_tail != FLOW_NONE)
                gw->flows[gw->lru_tail].lru_next = idx;
        else
                gw->lru_head = idx;
        gw->lru_tail = idx;
}

void net_flow_touch(struct net_gw *gw, uint32_t idx)
{
        if (gw->flows[idx].type == FLOW_TCP || gw->lru_tail == idx)
                return;
        lru_unlink(gw, idx);
        lru_append(gw, idx);
}

uint32_t net_flow_lru_oldest(const struct net_gw *gw, enum flow_type type)
{
        for (uint32_t i = gw->lru_head; i != FLOW_NONE; i = gw->flows[i].lru_next)
                if (gw->flows[i].type == type)
                        return i;
        return FLOW_NONE;
}

uint32_t net_flow_new(struct net_gw *gw, enum flow_type type, const struct flow_key *k)
{
        uint32_t idx = gw->free_head, b;
        struct flow *f;

        if (*count_of(gw, type) >= max_of(gw, type) || idx == FLOW_NONE)
                return FLOW_NONE;
        f = &gw->flows[idx];
        gw->free_head = f->hnext;
        f->type = (uint8_t)type;
        f->fd = -1;
        f->events = 0;
        f->deadline = 0;
        f->key = *k;
        memset(&f->tcp, 0, MAX(sizeof(f->tcp), sizeof(f->udp)));
        b = key_hash(gw, k);
        f->hnext = gw->buckets[b];
        gw->buckets[b] = idx;
        f->lru_prev = f->lru_next = FLOW_NONE;
        if (type != FLOW_TCP)
                lru_append(gw, idx);
        (*count_of(gw, type))++;
        return idx;
}

void net_flow_free(struct net_gw *gw, uint32_t idx)
{
        struct flow *f = &gw->flows[idx];
        uint32_t *p = &gw->buckets[key_hash(gw, &f->key)];

        while (*p != FLOW_NONE && *p != idx)
                p = &gw->flows[*p].hnext;
        if (*p == idx)
                *p = f->hnext;
        if (f->type != FLOW_TCP)
                lru_unlink(gw, idx);
        if (f->type == FLOW_TCP) {
                free(f->tcp.held);
                net_tcp_drop_ooo(gw, &f->tcp);
        }
        if (f->type == FLOW_TCP && (f->tcp.flags & TCP_F_ACK_DUE)) {
                for (uint32_t i = 0; i < gw->n_ack; i++)
                        if (gw->ack_list[i] == idx) {
                                gw->ack_list[i] = gw->ack_list[--gw->n_ack];
                                break;
                        }
        }
        /* A listener's fd is shared by its inbound UDP flows: not theirs. */
        if (f->fd >= 0 && !(f->type == FLOW_UDP && f->udp.inbound)) {
                epoll_ctl(gw->inner_fd, EPOLL_CTL_DEL, f->fd, NULL);
                close(f->fd);
        }
        (*count_of(gw, f->type))--;
        f->fd = -1;
        f->type = FLOW_FREE;
        f->gen = (f->gen + 1) & 0xffffffffu;
        f->deadline = 0;
        f->hnext = gw->free_head;
        gw->free_head = idx;
}

void net_flow_set_events(struct net_gw *gw, uint32_t idx, uint32_t events)
{
        struct flow *f = &gw->flows[idx];
        struct epoll_event ev = {.events = events, .data.u64 = ep_ref(EP_FLOW, idx, f->gen)};

        if (f->fd < 0 || events == f->events)
                return;
        if (epoll_ctl(gw->inner_fd, f->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, f->fd, &ev) == 0)
                f->events = events;
}

void net_flow_deadline(struct net_gw *gw, uint32_t idx, uint64_t deadline)
{
        gw->flows[idx].deadline = deadline;
        if (deadline)
                net_timer_arm(gw, deadline);
}
