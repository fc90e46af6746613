/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: thread-local storage, so bindings that call from
 * several threads each see their own last failure, and a failed create (which
 * has no handle yet) still has somewhere to put its message.
 */
#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

static _Thread_local msb_error_kind error_kind;
static _Thread_local char error_message[512];

int error_set(msb_error_kind kind, int r, const char *fmt, ...)
{
        va_list ap;

        error_kind = kind;
        va_start(ap, fmt);
        vsnprintf(error_message, sizeof(error_message), fmt, ap);
        va_end(ap);
        return r < 0 ? r : -EIO;
}

void error_clear(void)
{
        error_kind = MSB_ERR_NONE;
        error_message[0] = '\0';
}

const char *msb_errmsg(void)
{
        return error_message;
}

msb_error_kind msb_errkind(void)
{
        return error_kind;
}
