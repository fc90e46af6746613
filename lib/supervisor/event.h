/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The supervisor's epoll data: every registered fd carries a reference that
 * says which kind of fd it is, which slot (client, control connection) it
 * belongs to, and that slot's generation, so one switch dispatches and an
 * event still queued for a slot that was freed and reused in the same batch
 * is recognised as stale and ignored.
 *
 *   bits 63..56 kind, 55..32 generation (24 bits), 31..0 index
 */
#pragma once

#include <stdint.h>

enum ev_kind {
        EV_NONE = 0,
        EV_RELAY_AGENT,    /* the agent channel (relay) */
        EV_RELAY_CLIENT,   /* a client of agent.sock (relay), index = slot */
        EV_AGENT_LISTEN,   /* agent.sock */
        EV_CONTROL_LISTEN, /* control.sock */
        EV_CONTROL,        /* a control connection, index = slot */
        EV_QEMU,           /* QEMU's pidfd */
        EV_SIGNAL,         /* the signalfd */
        EV_TIMER,          /* the timerfd of every deadline */
        EV_PARENT,         /* --parent-fd */
        EV_NET,            /* the network gateway's own epoll fd */
        EV_CONSOLE,        /* the console socket */
};

#define EV_GEN_MASK 0xffffffu

static inline uint64_t ev_ref(enum ev_kind kind, uint32_t gen, uint32_t index)
{
        return (uint64_t)kind << 56 | (uint64_t)(gen & EV_GEN_MASK) << 32 | index;
}

static inline enum ev_kind ev_ref_kind(uint64_t ref)
{
        return (enum ev_kind)(ref >> 56);
}

static inline uint32_t ev_ref_gen(uint64_t ref)
{
        return (uint32_t)(ref >> 32) & EV_GEN_MASK;
}

static inline uint32_t ev_ref_index(uint64_t ref)
{
        return (uint32_t)ref;
}
