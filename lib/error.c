/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The diagnostics of the API: the last error of each thread and the log
 * handler.
 *
 * Theory of operation: thread-local storage, so bindings that call from
 * several threads each see their own last failure, and a failed create (which
 * has no handle yet) still has somewhere to put its message.
 */
#include "error.h"
#include "lib/core/log.h"

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

static msb_log_fn api_log_fn;

_Static_assert((int)MSB_LOG_DEBUG == (int)LOG_LEVEL_DEBUG, "log levels must match");

static void api_log_forward(enum log_level level, const char *msg, void *userdata)
{
        api_log_fn((msb_log_level)level, msg, userdata);
}

void msb_set_log_handler(msb_log_fn fn, msb_log_level max_level, void *userdata)
{
        api_log_fn = fn;
        log_set_handler(fn ? api_log_forward : NULL, (enum log_level)max_level, userdata);
}

const char *msb_errmsg(void)
{
        return error_message;
}

msb_error_kind msb_errkind(void)
{
        return error_kind;
}
