/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Starting a sandbox's supervisor (msb-sandbox) and waiting for its verdict
 * on the ready fd (docs/supervisor.md, "Launch").
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "state.h"

struct launch_result {
        char accel[8];
        char notice[256];
        uint64_t start_ns;
        uint64_t guest_boot_ns;
        uint64_t guest_ready_ns;
};

/* Spawns the supervisor of sandbox name, detached from this process, and
 * waits for its ready line (up to wait_ms; the supervisor applies the boot
 * timeout itself), watching cancel_fd (-1: none). With keep_watch the
 * supervisor keeps watching this process (*ret_parent_fd: close it to stop
 * the sandbox); without, it is told to detach once ready and
 * *ret_parent_fd is -1. Sets the API error on failure (the supervisor's own
 * message and kind when it reported one). */
int launch_supervisor(const struct sandbox_paths *p, const char *name, bool keep_watch,
                      int cancel_fd, uint64_t wait_ms, int *ret_parent_fd,
                      struct launch_result *ret);
