/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host end of the agent channel: one byte stream of frames to the guest
 * agent, shared by every session (exec, ping, ...) of one sandbox.
 *
 * Frames are read only when some caller waits (chan_pump); each one is
 * decoded, checked and queued on the session its id names, so a caller
 * waiting on one session never loses another session's frames. Frames for
 * ids nobody holds open are dropped. A malformed frame poisons the channel.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "lib/proto/proto.h"

struct chan;

/* A queued message; msg.payload points into this allocation. */
struct chan_msg {
        struct chan_msg *next;
        struct proto_msg msg;
        size_t payload_len;
        uint8_t payload[];
};

/* Takes ownership of fd (a connected stream socket straight to the agent).
 * Session ids are taken from [1, 2^32). */
int chan_new(int fd, struct chan **ret);

/* Takes ownership of fd, connected to a supervisor's agent relay: reads the
 * relay's hello (the client's id range and the agent's core.ready) within
 * timeout_ms. Session ids are then taken from that range. -EBADMSG on a
 * malformed hello, -ETIMEDOUT, -EPIPE. */
int chan_new_relay(int fd, int timeout_ms, struct chan **ret, struct proto_ready *ret_ready);
void chan_free(struct chan *ch);
int chan_fd(const struct chan *ch);

/* Opens a session: a fresh id whose frames will be queued. Closing it drops
 * its queue and every later frame for it. Id 0 is always open. */
uint32_t chan_session_open(struct chan *ch);
void chan_session_close(struct chan *ch, uint32_t id);

/* Sends one or more whole frames. Waits for the socket to take them; fails
 * with -EPIPE when the peer is gone. */
int chan_send(struct chan *ch, const struct cbor_buf *frames);

/* Reads what is there (waiting up to timeout_ms; -1 forever) and queues the
 * frames. 1 when something was read, 0 on timeout, -EPIPE at end of stream,
 * -EBADMSG (sticky) on a malformed frame, -EINTR if poll was interrupted. */
int chan_pump(struct chan *ch, int timeout_ms);

/* The oldest queued message of session id, or NULL. Free it with free(). */
struct chan_msg *chan_pop(struct chan *ch, uint32_t id);

/* The version both sides speak, set from core.ready. */
void chan_set_version(struct chan *ch, uint32_t version);
