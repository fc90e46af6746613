/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ready line: the one JSON line the supervisor writes to its --ready-fd
 * when the sandbox is up (or could not start), then closes the fd
 * (docs/supervisor.md, "Launch"). Its writer and its parser live here
 * together. A line is at most READYLINE_MAX bytes, less than PIPE_BUF, and
 * written with one write(), so a reader never sees half of it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define READYLINE_MAX 4000

/* Failure kinds: the names of msb_error_kind. */
#define READY_INVALID_ARGUMENT  "invalid_argument"
#define READY_IMAGE_NOT_FOUND   "image_not_found"
#define READY_IMAGE_INVALID     "image_invalid"
#define READY_HOST_MISSING      "host_missing"
#define READY_ACCEL_UNAVAILABLE "accel_unavailable"
#define READY_BOOT_TIMEOUT      "boot_timeout"
#define READY_VM_FAILED         "vm_failed"
#define READY_PROTOCOL          "protocol"
#define READY_CANCELLED         "cancelled"
#define READY_CONFLICT          "conflict" /* the sandbox already runs */
#define READY_SYSTEM            "system"

struct readyline {
        bool ok;
        /* failure */
        char kind[32];
        char message[512];
        /* success */
        char accel[8];          /* "kvm", "tcg" */
        char notice[256];       /* why this accelerator, or "" */
        uint64_t start_ns;      /* supervisor start to core.ready (CLOCK_MONOTONIC) */
        uint64_t guest_boot_ns; /* the agent's core.ready times (guest CLOCK_BOOTTIME) */
        uint64_t guest_ready_ns;
        int64_t pid; /* the supervisor */
        int64_t qemu_pid;
};

/* The line (newline included, at most READYLINE_MAX bytes: long texts are
 * cut), to free(). 0 or -ENOMEM. */
int readyline_format(const struct readyline *rl, char **ret);

/* Parses one line (without or with its newline). -EBADMSG if it is not
 * what readyline_format() writes. Texts that do not fit are cut. */
int readyline_parse(const char *line, size_t len, struct readyline *ret);
