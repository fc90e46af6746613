/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: one process-wide handler pointer. log_emit() formats
 * into a stack buffer only when a handler wants the level, then hands the
 * line over. Handlers are installed once at start-up, before threads exist.
 */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static log_handler_fn log_handler;
static enum log_level log_max_level = LOG_LEVEL_ERROR;
static void *log_userdata;

void log_set_handler(log_handler_fn fn, enum log_level max_level, void *userdata)
{
        log_handler = fn;
        log_max_level = max_level;
        log_userdata = userdata;
}

int log_level_from_string(const char *s, enum log_level *ret)
{
        static const char *const names[] = {"error", "warn", "info", "debug"};

        for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                if (strcmp(s, names[i]) == 0) {
                        *ret = (enum log_level)i;
                        return 0;
                }
        }
        return -EINVAL;
}

void log_emit(enum log_level level, const char *fmt, ...)
{
        char buf[4096];
        va_list ap;
        int saved = errno;

        if (!log_handler || level > log_max_level)
                return;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        log_handler(level, buf, log_userdata);
        errno = saved;
}
