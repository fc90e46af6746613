/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The control socket's language (docs/supervisor.md, "The control socket"):
 * one JSON object per line in, one per line out. This module parses
 * requests and formats answers; the supervisor owns the connections.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CTLMSG_MAX_LINE                (64u << 10) /* a longer request is refused */
#define CTLMSG_DEFAULT_STOP_TIMEOUT_MS 10000u
#define CTLMSG_MAX_STOP_TIMEOUT_MS     (24u * 3600u * 1000u)

enum ctlmsg_op {
        CTLMSG_STATUS,
        CTLMSG_STOP,
};

struct ctlmsg_request {
        enum ctlmsg_op op;
        uint64_t timeout_ms; /* stop: how long the guest gets to shut down */
};

/* Parses one request (the line without its newline). -EBADMSG when it is
 * not a JSON object with a string "op", or a field is of the wrong type or
 * out of range; -EOPNOTSUPP for an op we do not know. */
int ctlmsg_parse(const char *line, size_t len, struct ctlmsg_request *ret);

/* The answer to a request that failed to parse or could not be served:
 * the text for r (-EBADMSG "bad request", -EOPNOTSUPP "unknown op",
 * -E2BIG "request too long", else strerror). */
const char *ctlmsg_error_text(int r);

struct ctlmsg_status {
        const char *status; /* "starting", "running", "stopping" */
        pid_t pid;
        pid_t qemu_pid;
        int64_t started_at; /* Unix ms */
        size_t clients;
        size_t sessions;
        const char *accel;
        const char *network; /* a JSON object (addresses, counters), or NULL */
};

/* Answer lines, newline included, to free(). 0 or -ENOMEM. */
int ctlmsg_format_status(const struct ctlmsg_status *s, char **ret);
int ctlmsg_format_stopped(const char *reason, char **ret);
int ctlmsg_format_error(const char *error, char **ret);
