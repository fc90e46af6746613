/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: a fixed buffer per operation, filled bottom-up. The
 * first writer states the cause, callers above prefix their context, so a
 * message reads from the outside in: "image X: layer 2/5 sha256:...: entry
 * 'etc/passwd': parent is not a directory".
 */
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static __attribute__((format(printf, 2, 0))) void err_vset(struct oci_err *e, const char *fmt,
                                                           va_list ap)
{
        vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
}

int oci_err_set(struct oci_err *e, int r, const char *fmt, ...)
{
        va_list ap;

        if (!e)
                return r;
        va_start(ap, fmt);
        err_vset(e, fmt, ap);
        va_end(ap);
        return r;
}

int oci_err_default(struct oci_err *e, int r, const char *fmt, ...)
{
        va_list ap;

        if (!e || e->msg[0])
                return r;
        va_start(ap, fmt);
        err_vset(e, fmt, ap);
        va_end(ap);
        return r;
}

/* Appends s to dst (a buffer of size bytes), truncating. */
static void append(char *dst, size_t size, const char *s)
{
        size_t len = strlen(dst), n = strlen(s);

        if (len + 1 >= size)
                return;
        if (n > size - 1 - len)
                n = size - 1 - len;
        memcpy(dst + len, s, n);
        dst[len + n] = '\0';
}

int oci_err_prefix(struct oci_err *e, int r, const char *fmt, ...)
{
        char out[OCI_ERR_MAX];
        va_list ap;

        if (!e)
                return r;
        va_start(ap, fmt);
        vsnprintf(out, sizeof(out), fmt, ap);
        va_end(ap);
        append(out, sizeof(out), ": ");
        append(out, sizeof(out), e->msg[0] ? e->msg : strerror(r < 0 ? -r : EIO));
        memcpy(e->msg, out, sizeof(out));
        return r;
}
