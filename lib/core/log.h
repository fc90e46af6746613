/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Logging without printing: internal code calls log_debug() and friends, and
 * whoever embeds us decides where lines go by installing a handler. With no
 * handler installed nothing is formatted, so debug logging costs a branch.
 * The CLI installs a stderr handler for --debug (or MSB_LOG=debug); the
 * supervisor and the agent install their own.
 */
#pragma once

#include <stdarg.h>

enum log_level {
        LOG_LEVEL_ERROR = 0,
        LOG_LEVEL_WARN = 1,
        LOG_LEVEL_INFO = 2,
        LOG_LEVEL_DEBUG = 3,
};

typedef void (*log_handler_fn)(enum log_level level, const char *msg, void *userdata);

/* Installs the handler and the most verbose level it wants. NULL removes it. */
void log_set_handler(log_handler_fn fn, enum log_level max_level, void *userdata);

/* Parses "error", "warn", "info", "debug". -EINVAL otherwise. */
int log_level_from_string(const char *s, enum log_level *ret);

void log_emit(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_emit(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_emit(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)  log_emit(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_emit(LOG_LEVEL_DEBUG, __VA_ARGS__)
