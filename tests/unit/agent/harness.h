/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The plumbing shared by the agent tests: the static agent started with
 * --serve-fd over a socketpair (MSB_AGENTD names the binary), frames out and
 * in with the host's codec, and waits that are bounded by IO_TIMEOUT_MS only
 * so that a broken agent fails a test instead of hanging it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/proto/proto.h"

#define IO_TIMEOUT_MS 60000

struct agent {
        pid_t pid;
        int fd;
        struct frame_reader fr;
        uint8_t *body; /* the current message's body (frames move in the reader) */
        struct cbor_buf out;
};

extern struct agent A;

/* Growable bytes, NUL-terminated for convenience. */
struct outbuf {
        char *data;
        size_t len, cap;
};

void append(struct outbuf *b, const uint8_t *data, size_t len);

/* cmocka setup/teardown: the agent as root, or (setup_nobody) as 65534. */
int agent_setup(void **state);
int agent_setup_nobody(void **state);
int agent_teardown(void **state);
void agent_wait_exit(int *ret_status);

/* Writes the frames queued in A.out; what the agent sends meanwhile is taken
 * into the reader, so neither side can block the other. */
void send_out(void);
/* The next message from the agent; false at the end of the stream. */
bool recv_msg(struct proto_msg *m);
void expect_msg(struct proto_msg *m);
/* Reads until the core.error on id; returns it. */
void expect_error(uint32_t id, struct proto_error *ret);
/* Sends a ping and reads up to its pong: everything sent before was handled.
 * The messages read meanwhile go to fn (sync_ping drops them). */
void sync_ping(uint32_t id);
void sync_ping_with(uint32_t id, void (*fn)(const struct proto_msg *m, void *userdata),
                    void *userdata);
void expect_ready(void);

int pidfd_open(pid_t pid);
/* Blocks until the process behind pidfd has terminated; closes pidfd. */
void wait_pidfd(int pidfd);
