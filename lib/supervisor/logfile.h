/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The log files of a sandbox: append-only, and bounded. A file that would
 * grow past its size limit is first renamed to PATH.1 (replacing the
 * previous one), so a log never takes more than twice its limit on disk,
 * whatever the guest writes. logs/system.log and logs/exec.log hold JSON
 * lines (logfile_json_*): one object per line, each starting with "ts" (UTC,
 * milliseconds) and "source"; logs/kernel.log holds the console's bytes as
 * they come (logfile_append).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/core/json.h"
#include "lib/core/macro.h"

#define LOGFILE_MAX_BYTES (64ull << 20)

struct logfile;

/* Opens (creating, mode 0600) path for appending; max_bytes is the size at
 * which it rotates. 0 or -errno. */
int logfile_open(const char *path, uint64_t max_bytes, struct logfile **ret);
struct logfile *logfile_free(struct logfile *l); /* NULL is fine; returns NULL */
DEFINE_FREEP(struct logfile, logfile_free)

/* Appends data as it is, rotating first if it would not fit. A chunk
 * larger than the limit is written whole into a fresh file. 0 or -errno. */
int logfile_append(struct logfile *l, const void *data, size_t len);

/* Starts a line in w (initialised by the caller): the object, "ts" (now)
 * and "source". */
void logfile_json_begin(struct json_writer *w, const char *source);

/* Ends the object, writes the line (rotating first if needed) and frees w's
 * text. 0 or -errno (the writer's error, or the file's). */
int logfile_json_commit(struct logfile *l, struct json_writer *w);
