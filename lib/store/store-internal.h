/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Inside the store: the handle, the migrations and the transaction and
 * error helpers, shared by every .c file of lib/store (the sandbox tables in
 * store.c; further tables, such as the image index, in files of their own).
 */
#pragma once

#include <sqlite3.h>
#include <stddef.h>

#include "store.h"

struct store {
        sqlite3 *db;
        char *path; /* $home/db/msb.db */
};

/* The schema, one SQL script per version: store_migrations[i] takes a
 * database from user_version i to i + 1 (lib/store/migrations.c). */
extern const char *const store_migrations[];
extern const size_t store_n_migrations;

/* Maps the connection's last SQLite error (rc is the result code that was
 * returned) to -errno and logs it at debug level with what was being done:
 * -EEXIST (a UNIQUE or PRIMARY KEY constraint), -ENOENT (a FOREIGN KEY
 * constraint: the parent row is missing), -EBUSY, -ENOMEM, -ENOSPC,
 * -EACCES, -EBADMSG (corrupt, not a database), else -EIO. */
int store_sql_error(struct store *s, int rc, const char *what);

/* Prepares sql (one statement) on the connection. 0 or -errno. */
int store_prepare(struct store *s, const char *sql, sqlite3_stmt **ret);

/* Steps a statement that returns no row (or whose rows are ignored). */
int store_exec_stmt(struct store *s, sqlite3_stmt *stmt, const char *what);

/* BEGIN IMMEDIATE (a write transaction; waits up to the busy timeout). */
int store_tx_begin(struct store *s);
/* Commits when r >= 0, rolls back otherwise; returns r, or the commit's
 * error. */
int store_tx_end(struct store *s, int r);

static inline void store_stmt_finalizep(sqlite3_stmt **stmt)
{
        sqlite3_finalize(*stmt); /* NULL is a no-op */
}
#define _cleanup_stmt_ __attribute__((cleanup(store_stmt_finalizep)))
