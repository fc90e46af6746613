/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent relay: one agent channel (the guest's virtio-serial port, a
 * stream of frames) shared by up to RELAY_MAX_CLIENTS clients of agent.sock.
 * The contract is docs/supervisor.md ("The agent relay"); in short:
 *
 *  - each client gets a slot k and owns the session ids
 *    [relay_range_start(k), relay_range_end(k)); on connect it receives a
 *    hello, [id_start u32 BE][id_end u32 BE], then the agent's core.ready
 *    frame exactly as the agent sent it;
 *  - a client frame whose id is outside its range (0 included), or that
 *    carries FRAME_SHUTDOWN, drops the client;
 *  - agent frames go to the client owning their id (after the exec log
 *    tap); frames nobody owns are dropped;
 *  - when a client leaves, the agent gets core.relay.client.disconnected
 *    with the client's range, on id 0, then (unless one is already on its
 *    way) a core.ping on RELAY_BARRIER_ID, an id in no client's range: the
 *    slot is given to a new client only once that ping is answered, so that
 *    no frame meant for the old client reaches the new one;
 *  - queues are bounded (RELAY_QUEUE_CAP per destination) with
 *    backpressure: while a client's queue is over the cap the relay stops
 *    reading the agent, while the agent's is over the cap it stops reading
 *    clients. A queue never holds more than RELAY_QUEUE_MAX bytes. A client
 *    that lets its queue sit over the cap without taking a byte for
 *    RELAY_STALL_TIMEOUT_MS is dropped (relay_expire), so that one stuck
 *    client cannot stall the agent's output to everyone for ever.
 *
 * The relay registers its fds in the caller's epoll set with ev_ref()
 * references (lib/supervisor/event.h) of kinds EV_RELAY_AGENT and
 * EV_RELAY_CLIENT, and the caller hands those events to relay_dispatch().
 * Nothing here knows about QEMU: a test drives it over socketpairs.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/core/frame.h"
#include "lib/core/macro.h"
#include "lib/proto/proto.h"

struct logfile;

#define RELAY_MAX_CLIENTS 64u
#define RELAY_RANGE_SHIFT 26u
#define RELAY_HELLO_LEN   8u
#define RELAY_BARRIER_ID  UINT32_MAX /* the relay's own session id */
/* bytes queued to one destination before it pushes back */
#define RELAY_QUEUE_CAP        (1u << 20)
#define RELAY_READ_CHUNK       (64u << 10) /* bytes read from one socket per event */
#define RELAY_MAX_SESSIONS     4096u       /* open sessions over all clients */
#define RELAY_STALL_TIMEOUT_MS 60000u
/* The most a queue can hold: the cap, one read's worth of frames past it,
 * and one whole frame of the largest size. */
#define RELAY_QUEUE_MAX (RELAY_QUEUE_CAP + RELAY_READ_CHUNK + FRAME_HEADER_LEN + FRAME_MAX_LEN)

/* Slot k owns [k * 2^26 + 1, (k + 1) * 2^26); the last slot's end is
 * capped at UINT32_MAX (the end must fit the hello's u32). */
static inline uint32_t relay_range_start(uint32_t slot)
{
        return (slot << RELAY_RANGE_SHIFT) + 1u;
}

static inline uint32_t relay_range_end(uint32_t slot)
{
        uint64_t end = (uint64_t)(slot + 1u) << RELAY_RANGE_SHIFT;
        return end > UINT32_MAX ? UINT32_MAX : (uint32_t)end;
}

struct relay;

/* Takes agent_fd (a connected stream socket; made non-blocking) and adds
 * it to epfd. exec_log (may be NULL) receives the exec log tap; it must
 * outlive the relay. Until the agent's core.ready arrives the relay only
 * waits for it: any other frame is a protocol error. */
int relay_new(int epfd, int agent_fd, struct logfile *exec_log, struct relay **ret);
struct relay *relay_free(struct relay *r); /* closes every fd; NULL is fine */
DEFINE_FREEP(struct relay, relay_free)

/* Handles one epoll event of kind EV_RELAY_AGENT or EV_RELAY_CLIENT (a
 * stale reference is ignored). 0, or a fatal error of the agent channel:
 * -EBADMSG (a bad frame length, or something other than a valid core.ready
 * first), -ENOMEM. A failing client is dropped, never an error here. */
int relay_dispatch(struct relay *r, uint64_t ref, uint32_t events);

/* true once core.ready arrived (its payload in *ret, if ret is set). */
bool relay_is_ready(const struct relay *r, struct proto_ready *ret);
/* true once the agent channel is gone (end of stream or write error). */
bool relay_agent_closed(const struct relay *r);

/* Takes a connected client socket: queues the hello and returns the slot
 * (>= 0). -EAGAIN before core.ready, -EBUSY when every slot is taken,
 * -EPIPE once the agent is gone; the fd is closed on failure. */
int relay_add_client(struct relay *r, int fd);

size_t relay_n_clients(const struct relay *r);
/* Sessions seen starting (SESSION_START from a client) and not yet ended
 * (TERMINAL from the agent), whether or not their client is still here. */
size_t relay_n_sessions(const struct relay *r);
/* Bytes waiting in a client's queue; 0 for a free slot. */
size_t relay_client_queued(const struct relay *r, uint32_t slot);

/* Queues core.shutdown (id 0, FRAME_SHUTDOWN) to the agent. */
int relay_send_shutdown(struct relay *r);

/* The CLOCK_MONOTONIC time (ns) at which relay_expire() has work, or 0. */
uint64_t relay_next_deadline(const struct relay *r);
/* Drops the clients stalled past RELAY_STALL_TIMEOUT_MS at now_ns. */
void relay_expire(struct relay *r, uint64_t now_ns);

/* When the VM is gone: reads what the agent channel still holds, routes
 * it, and gives every client one last non-blocking write. */
void relay_drain(struct relay *r);
