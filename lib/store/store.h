/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The state store: $MSB_HOME/db/msb.db, SQLite in WAL mode, shared by every
 * msb process, supervisor and library user on the machine. Schema and the
 * meaning of each column: docs/supervisor.md. Versioned migrations run in
 * one transaction at open; a database newer than this binary is refused.
 *
 * Concurrency: each process opens its own connection (busy timeout 10 s);
 * every write is one short transaction (BEGIN IMMEDIATE), so concurrent
 * writers serialise instead of failing with SQLITE_BUSY. A struct store is
 * one connection: use it from one thread at a time, and never in a child
 * after fork() (the child opens its own). Docs: docs/store.md.
 *
 * Errors are -errno: -ENOENT (no such row), -EEXIST (a unique name taken),
 * -EINVAL (a bad argument: unknown status, bad label, NULL field), -EPROTO
 * (schema too new; store_open explains in errmsg), -EBADMSG (the file is
 * damaged or not a database), -EBUSY (locked past the busy timeout),
 * -EACCES, -ENOSPC, -ENOMEM, -EIO (another SQLite failure). SQLite's own
 * message is logged at debug level.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct store;

/* Opens $home/db/msb.db (creating $home/db/ with mode 0700 and the
 * database when missing; $home/db/open.lock serialises concurrent opens)
 * and migrates it to store_schema_version(). errmsg (may be NULL) gets one
 * line on failure. */
int store_open(const char *home, struct store **ret, char *errmsg, size_t errmsg_size);
void store_close(struct store *s);

/* The schema version this binary creates and understands. */
int store_schema_version(void);

struct store_label {
        char *key;
        char *value;
};

struct store_sandbox {
        int64_t id;
        char *name;
        char *image;
        char *config; /* JSON text (config.json as created) */
        char *status; /* created|starting|running|stopping|stopped|crashed */
        bool ephemeral;
        int64_t created_at; /* Unix ms */
        int64_t updated_at;
        struct store_label *labels;
        size_t n_labels;
};

void store_sandbox_clear(struct store_sandbox *sb); /* frees members */
void store_sandbox_list_free(struct store_sandbox *list, size_t n);

/* Inserts a sandbox with its labels in one transaction (id, created_at,
 * updated_at are set by the store; status defaults to "created" when NULL;
 * ret_id may be NULL). Label keys are non-empty, unique and without '='
 * (else -EINVAL); values may be empty. -EEXIST if the name is taken. */
int store_sandbox_insert(struct store *s, const struct store_sandbox *sb, int64_t *ret_id);
/* The sandbox and its labels (ordered by key). -ENOENT if absent. */
int store_sandbox_get(struct store *s, const char *name, struct store_sandbox *ret);
/* All sandboxes ordered by creation; label_filters (may be NULL) are
 * "KEY=VALUE" (the value is everything after the first '='; "KEY=" matches
 * an empty value) or "KEY" (any value) strings that must all match. At most
 * 64 filters; an empty key is -EINVAL. An empty result is *ret = NULL,
 * *ret_n = 0. */
int store_sandbox_list(struct store *s, const char *const *label_filters, size_t n_filters,
                       struct store_sandbox **ret, size_t *ret_n);
/* Sets status (one of the statuses above, else -EINVAL) and updated_at. */
int store_sandbox_set_status(struct store *s, const char *name, const char *status);
/* Removes the sandbox, its labels and its runs. -ENOENT if absent. */
int store_sandbox_delete(struct store *s, const char *name);

struct store_run {
        int64_t id;
        int64_t sandbox_id;
        pid_t supervisor_pid;
        pid_t qemu_pid;
        int64_t started_at;
        int64_t ended_at; /* 0 while running */
        char *reason;     /* NULL while running */
};

void store_run_clear(struct store_run *r);

/* Records a run starting now. A pid <= 0 is stored as unknown (reads back
 * as 0). -ENOENT if the sandbox does not exist; ret_run_id may be NULL. */
int store_run_begin(struct store *s, int64_t sandbox_id, pid_t supervisor_pid, pid_t qemu_pid,
                    int64_t *ret_run_id);
/* Ends the run (ended_at = now) with reason (required), and sets the
 * sandbox status in the same transaction (status NULL: left alone).
 * Ending an ended run again is a no-op (0): reason and status stay as the
 * first end left them. -ENOENT if the run does not exist. */
int store_run_end(struct store *s, int64_t run_id, const char *reason, const char *status);
/* The newest run of a sandbox; -ENOENT if it never ran. */
int store_run_last(struct store *s, int64_t sandbox_id, struct store_run *ret);

/* Unix milliseconds now (CLOCK_REALTIME). */
int64_t store_now_ms(void);
