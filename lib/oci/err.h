/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Error detail inside lib/oci. Functions return -errno like everywhere else;
 * a caller that wants to tell a user what went wrong passes a struct oci_err,
 * which the deepest function that knows the cause fills ("digest mismatch:
 * expected ..., got ...") and each level above may prefix with its context
 * ("layer 2/5 sha256:ab12...: "). The API boundary turns it into the one
 * message of msb_errmsg(). A NULL struct oci_err is allowed everywhere.
 */
#pragma once

#include <stdbool.h>

#define OCI_ERR_MAX 512

struct oci_err {
        char msg[OCI_ERR_MAX];
};

/* Replaces the message; returns r (a negative errno) for `return oci_err_set(...)`. */
int oci_err_set(struct oci_err *e, int r, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Like oci_err_set() but only when no message was set yet, so that the
 * deepest cause wins. Returns r. */
int oci_err_default(struct oci_err *e, int r, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Prepends "<context>: " to the message (or sets it to the context and
 * strerror(-r) when empty). Returns r. */
int oci_err_prefix(struct oci_err *e, int r, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static inline bool oci_err_empty(const struct oci_err *e)
{
        return !e || !e->msg[0];
}
