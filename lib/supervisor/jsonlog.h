/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JSON-lines log files of a sandbox (logs/system.log, logs/exec.log): one
 * object per line, each starting with "ts" (UTC, milliseconds) and
 * "source". A file that would grow past its size limit is first renamed to
 * PATH.1 (replacing the previous one), so a log never takes more than twice
 * its limit on disk.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/core/json.h"
#include "lib/core/macro.h"

#define JSONLOG_MAX_BYTES (64ull << 20)

struct jsonlog;

/* Opens (creating, mode 0600) path for appending; max_bytes is the size at
 * which it rotates. 0 or -errno. */
int jsonlog_open(const char *path, uint64_t max_bytes, struct jsonlog **ret);
struct jsonlog *jsonlog_free(struct jsonlog *l); /* NULL is fine; returns NULL */
DEFINE_FREEP(struct jsonlog, jsonlog_free)

/* Starts a line in w (initialised by the caller): the object, "ts" (now)
 * and "source". */
void jsonlog_begin(struct json_writer *w, const char *source);

/* Ends the object, writes the line (rotating first if needed) and frees w's
 * text. 0 or -errno (the writer's error, or the file's). */
int jsonlog_commit(struct jsonlog *l, struct json_writer *w);
