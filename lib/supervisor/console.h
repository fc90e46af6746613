/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest's serial console as the supervisor keeps it: QEMU writes the
 * console's bytes (the kernel log, and whatever else the guest writes to
 * ttyS0) to one end of a socketpair; the supervisor reads the other end from
 * its event loop and appends them to logs/kernel.log, a log file that
 * rotates to kernel.log.1 at its limit. A guest that writes to its console
 * without end costs the host at most twice the limit of disk. While the
 * supervisor is busy, the guest's console writes wait (QEMU's serial port
 * stops taking bytes); nothing is lost.
 */
#pragma once

#include <stdint.h>

#include "lib/core/macro.h"

#define CONSOLE_LOG_MAX_BYTES (16ull << 20)

struct console;

/* Empties path (each run's console log starts empty) and opens it, and makes
 * the socketpair. *ret_qemu_fd is QEMU's end (close-on-exec): the caller
 * passes it to vm_start() and then closes it. 0 or -errno. */
int console_new(const char *path, uint64_t max_bytes, struct console **ret, int *ret_qemu_fd);
struct console *console_free(struct console *c); /* NULL is fine; returns NULL */
DEFINE_FREEP(struct console, console_free)

/* Our end, non-blocking: poll it for reading. */
int console_fd(const struct console *c);

/* Reads what QEMU has written so far and appends it to the log. Returns 1
 * once QEMU's end is closed (stop polling), else 0. A log that cannot be
 * written (a full disk) loses the bytes, with one warning, but the console
 * keeps being read: a stalled console would stall the guest. */
int console_drain(struct console *c);
