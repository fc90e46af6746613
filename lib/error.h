/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The API's error state: one kind and one message per thread, set once at
 * the API boundary (internal code returns plain -errno) and read back with
 * msb_errmsg()/msb_errkind().
 */
#pragma once

#include "microsandbox.h"

/* Records kind and a formatted message for this thread; returns r (a
 * negative errno) so that callers can write `return error_set(...)`. */
int error_set(msb_error_kind kind, int r, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Clears the error of this thread (a call that succeeds leaves it alone). */
void error_clear(void);
