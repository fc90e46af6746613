/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: the state store over SQLite.
 *
 * One struct store is one SQLite connection to $home/db/msb.db. Opening
 * sets the connection up (busy timeout, foreign keys, WAL, synchronous=
 * NORMAL) and migrates: each missing migration runs in a BEGIN IMMEDIATE
 * transaction that first re-reads user_version, so it is applied exactly
 * once. A user_version above what this binary knows is refused. Switching
 * a new database to WAL needs an exclusive lock and SQLite does not wait
 * for it (no busy handler there), so processes opening at the same moment
 * take turns for that phase with flock() on $home/db/open.lock; once a
 * database is in WAL mode (a property of the file) nothing else needs it.
 *
 * Every query is a prepared statement with bound parameters, finalized by
 * a cleanup attribute. Every write is one BEGIN IMMEDIATE transaction: the
 * write lock is taken up front (waiting up to the busy timeout), so a
 * transaction never has to upgrade a read lock, which in WAL mode is what
 * fails with SQLITE_BUSY without waiting. Multi-row reads (lists, a row
 * with its labels) run in one read transaction so they see one snapshot.
 *
 * Rows are copied into caller-owned structs (strdup'ed strings) and the
 * out-parameter is written only once everything is copied. The database is
 * a file any process of the user may have damaged: text columns read as
 * NULL where the schema says NOT NULL count as corruption (-EBADMSG).
 */
#include "store-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

#include "lib/core/log.h"
#include "lib/core/util.h"

#define BUSY_TIMEOUT_MS 10000
#define MAX_FILTERS     64

static const char *const statuses[] = {
        "created", "starting", "running", "stopping", "stopped", "crashed",
};

static bool status_valid(const char *status)
{
        if (!status)
                return false;
        for (size_t i = 0; i < ARRAY_SIZE(statuses); i++)
                if (streq(status, statuses[i]))
                        return true;
        return false;
}

int64_t store_now_ms(void)
{
        return (int64_t)(now_ns(CLOCK_REALTIME) / 1000000);
}

int store_schema_version(void)
{
        return (int)store_n_migrations;
}

/* ---- helpers shared by lib/store (store-internal.h) ---- */

int store_sql_error(struct store *s, int rc, const char *what)
{
        int ext = sqlite3_extended_errcode(s->db);

        log_debug("store: %s: %s (%d)", what, sqlite3_errmsg(s->db), ext);
        switch (ext) {
        case SQLITE_CONSTRAINT_UNIQUE:
        case SQLITE_CONSTRAINT_PRIMARYKEY:
                return -EEXIST;
        case SQLITE_CONSTRAINT_FOREIGNKEY:
                return -ENOENT;
        default:
                break;
        }
        switch (rc & 0xff) {
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_PERM:
        case SQLITE_READONLY:
        case SQLITE_AUTH:
                return -EACCES;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                return -EBADMSG;
        default:
                return -EIO;
        }
}

int store_prepare(struct store *s, const char *sql, sqlite3_stmt **ret)
{
        int rc = sqlite3_prepare_v2(s->db, sql, -1, ret, NULL);

        if (rc != SQLITE_OK)
                return store_sql_error(s, rc, "prepare");
        return 0;
}

int store_exec_stmt(struct store *s, sqlite3_stmt *stmt, const char *what)
{
        int rc;

        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
                ;
        if (rc != SQLITE_DONE)
                return store_sql_error(s, rc, what);
        return 0;
}

/* Runs one fixed statement (no parameters). */
static int exec_sql(struct store *s, const char *sql)
{
        _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
        int r = store_prepare(s, sql, &stmt);

        if (r < 0)
                return r;
        return store_exec_stmt(s, stmt, sql);
}

int store_tx_begin(struct store *s)
{
        return exec_sql(s, "BEGIN IMMEDIATE");
}

static int tx_begin_read(struct store *s)
{
        return exec_sql(s, "BEGIN");
}

int store_tx_end(struct store *s, int r)
{
        int k;

        if (r < 0) {
                if (!sqlite3_get_autocommit(s->db))
                        (void)exec_sql(s, "ROLLBACK");
                return r;
        }
        k = exec_sql(s, "COMMIT");
        if (k < 0) {
                if (!sqlite3_get_autocommit(s->db))
                        (void)exec_sql(s, "ROLLBACK");
                return k;
        }
        return r;
}

/* Copies a text column; NULL (or anything that is not text) is corruption
 * when the column is NOT NULL, and allowed (*ret = NULL) otherwise. */
static int column_strdup(sqlite3_stmt *stmt, int col, bool nullable, char **ret)
{
        const unsigned char *t;
        char *copy;

        if (sqlite3_column_type(stmt, col) == SQLITE_NULL) {
                if (!nullable)
                        return -EBADMSG;
                *ret = NULL;
                return 0;
        }
        t = sqlite3_column_text(stmt, col);
        if (!t)
                return -ENOMEM;
        copy = strdup((const char *)t);
        if (!copy)
                return -ENOMEM;
        *ret = copy;
        return 0;
}

/* ---- open, migrate, close ---- */

static int get_user_version(struct store *s, int64_t *ret)
{
        _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
        int r, rc;

        r = store_prepare(s, "PRAGMA user_version", &stmt);
        if (r < 0)
                return r;
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_ROW)
                return store_sql_error(s, rc, "read user_version");
        *ret = sqlite3_column_int64(stmt, 0);
        return 0;
}

static int set_journal_wal(struct store *s)
{
        _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
        const unsigned char *mode;
        int r, rc;

        /* WAL is a property of the file: set it only when it is not yet */
        r = store_prepare(s, "PRAGMA journal_mode", &stmt);
        if (r < 0)
                return r;
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_ROW)
                return store_sql_error(s, rc, "read journal_mode");
        mode = sqlite3_column_text(stmt, 0);
        if (mode && streq((const char *)mode, "wal"))
                return 0;
        sqlite3_finalize(TAKE_PTR(stmt));

        r = store_prepare(s, "PRAGMA journal_mode=WAL", &stmt);
        if (r < 0)
                return r;
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_ROW)
                return store_sql_error(s, rc, "set journal_mode");
        mode = sqlite3_column_text(stmt, 0);
        if (!mode || !streq((const char *)mode, "wal")) {
                log_debug("store: journal_mode stays %s", mode ? (const char *)mode : "?");
                return -EIO;
        }
        return 0;
}

/* Applies the next migration if user_version still calls for it; sets
 * *ret_version to the version found at the start of the transaction. */
static int migrate_step(struct store *s, int64_t *ret_version)
{
        _cleanup_free_ char *bump = NULL;
        int64_t v = 0;
        int r;

        r = store_tx_begin(s);
        if (r < 0)
                return r;
        r = get_user_version(s, &v);
        if (r >= 0 && v >= 0 && (uint64_t)v < store_n_migrations) {
                char *errmsg = NULL;
                int rc = sqlite3_exec(s->db, store_migrations[v], NULL, NULL, &errmsg);

                if (rc != SQLITE_OK) {
                        log_debug("store: migration %" PRId64 ": %s", v + 1, errmsg ? errmsg : "?");
                        r = store_sql_error(s, rc, "migrate");
                }
                sqlite3_free(errmsg);
                if (r >= 0) {
                        /* PRAGMA takes no parameters; v is our own integer */
                        bump = strdup_printf("PRAGMA user_version = %" PRId64, v + 1);
                        r = bump ? exec_sql(s, bump) : -ENOMEM;
                }
        }
        r = store_tx_end(s, r);
        if (r < 0)
                return r;
        *ret_version = v;
        return 0;
}

static int migrate(struct store *s, char *errmsg, size_t errmsg_size)
{
        int64_t v = 0;
        int r;

        for (;;) {
                r = migrate_step(s, &v);
                if (r < 0) {
                        snprintf(errmsg, errmsg_size, "cannot migrate the state database at %s: %s",
                                 s->path, strerror(-r));
                        return r;
                }
                if (v < 0 || (uint64_t)v > store_n_migrations) {
                        snprintf(errmsg, errmsg_size,
                                 "the state database at %s has schema version %" PRId64
                                 ", newer than this msb (%zu); upgrade msb",
                                 s->path, v, store_n_migrations);
                        return -EPROTO;
                }
                if ((uint64_t)v == store_n_migrations)
                        return 0;
        }
}

void store_close(struct store *s)
{
        if (!s)
                return;
        sqlite3_close_v2(s->db);
        free(s->path);
        free(s);
}

DEFINE_FREEP(struct store, store_close)

/* Takes $dir/open.lock, waiting for whoever holds it. Returns the fd. */
static int lock_open_phase(const char *dir)
{
        _cleanup_free_ char *path = strdup_printf("%s/open.lock", dir);
        _cleanup_close_ int fd = -1;

        if (!path)
                return -ENOMEM;
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return negative_errno();
        while (flock(fd, LOCK_EX) < 0)
                if (errno != EINTR)
                        return negative_errno();
        return TAKE_FD(fd);
}

int store_open(const char *home, struct store **ret, char *errmsg, size_t errmsg_size)
{
        _cleanup_(store_closep) struct store *s = NULL;
        _cleanup_free_ char *dir = NULL;
        _cleanup_close_ int lock_fd = -1;
        char dummy[1];
        int r, rc;

        if (!errmsg) {
                errmsg = dummy;
                errmsg_size = sizeof(dummy);
        }
        if (errmsg_size > 0)
                errmsg[0] = '\0';
        if (!home || !*home)
                return -EINVAL;

        s = calloc(1, sizeof(*s));
        dir = strdup_printf("%s/db", home);
        if (!s || !dir)
                return -ENOMEM;
        s->path = strdup_printf("%s/msb.db", dir);
        if (!s->path)
                return -ENOMEM;
        r = mkdir_p(dir, 0700);
        if (r < 0) {
                snprintf(errmsg, errmsg_size, "cannot create %s: %s", dir, strerror(-r));
                return r;
        }
        lock_fd = lock_open_phase(dir);
        if (lock_fd < 0) {
                snprintf(errmsg, errmsg_size, "cannot lock %s/open.lock: %s", dir,
                         strerror(-lock_fd));
                return lock_fd;
        }

        rc = sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
        if (rc != SQLITE_OK) {
                r = s->db ? store_sql_error(s, rc, "open") : -ENOMEM;
                snprintf(errmsg, errmsg_size, "cannot open the state database at %s: %s", s->path,
                         s->db ? sqlite3_errmsg(s->db) : strerror(-r));
                return r;
        }
        sqlite3_extended_result_codes(s->db, 1);
        sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);

        r = exec_sql(s, "PRAGMA foreign_keys=ON");
        if (r >= 0)
                r = set_journal_wal(s);
        if (r >= 0)
                r = exec_sql(s, "PRAGMA synchronous=NORMAL");
        if (r < 0) {
                if (r == -EBADMSG)
                        snprintf(errmsg, errmsg_size,
                                 "the state database at %s is damaged or not a database (%s)",
                                 s->path, sqlite3_errmsg(s->db));
                else
                        snprintf(errmsg, errmsg_size, "cannot open the state database at %s: %s",
                                 s->path, sqlite3_errmsg(s->db));
                return r;
        }

        r = migrate(s, errmsg, errmsg_size);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

/* ---- sandboxes ---- */

void store_sandbox_clear(struct store_sandbox *sb)
{
        if (!sb)
                return;
        free(sb->name);
        free(sb->image);
        free(sb->config);
        free(sb->status);
        for (size_t i = 0; i < sb->n_labels; i++) {
                free(sb->labels[i].key);
                free(sb->labels[i].value);
        }
        free(sb->labels);
        *sb = (struct store_sandbox){0};
}

void store_sandbox_list_free(struct store_sandbox *list, size_t n)
{
        if (!list)
                return;
        for (size_t i = 0; i < n; i++)
                store_sandbox_clear(&list[i]);
        free(list);
}

static int labels_valid(const struct store_sandbox *sb)
{
        if (sb->n_labels > 0 && !sb->labels)
                return -EINVAL;
        for (size_t i = 0; i < sb->n_labels; i++) {
                const struct store_label *l = &sb->labels[i];

                /* "=" would make the filter KEY=VALUE ambiguous */
                if (!l->key || !l->value || !*l->key || strchr(l->key, '='))
                        return -EINVAL;
                for (size_t j = 0; j < i; j++)
                        if (streq(l->key, sb->labels[j].key))
                                return -EINVAL;
        }
        return 0;
}

static int insert_locked(struct store *s, const struct store_sandbox *sb, int64_t *ret_id)
{
        _cleanup_stmt_ sqlite3_stmt *stmt = NULL, *lstmt = NULL;
        int64_t now = store_now_ms(), id;
        int r;

        r = store_prepare(s,
                          "INSERT INTO sandboxes (name, image, config, status, ephemeral,"
                          " created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                          &stmt);
        if (r < 0)
                return r;
        sqlite3_bind_text(stmt, 1, sb->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, sb->image, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 3, sb->config, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 4, sb->status ? sb->status : "created", -1, SQLITE_STATIC);
        sqlite3_bind_int(stmt, 5, sb->ephemeral);
        sqlite3_bind_int64(stmt, 6, now);
        r = store_exec_stmt(s, stmt, "insert sandbox");
        if (r < 0)
                return r;
        id = sqlite3_last_insert_rowid(s->db);

        r = store_prepare(s, "INSERT INTO labels (sandbox_id, key, value) VALUES (?1, ?2, ?3)",
                          &lstmt);
        if (r < 0)
                return r;
        for (size_t i = 0; i < sb->n_labels; i++) {
                sqlite3_reset(lstmt);
                sqlite3_bind_int64(lstmt, 1, id);
                sqlite3_bind_text(lstmt, 2, sb->labels[i].key, -1, SQLITE_STATIC);
                sqlite3_bind_text(lstmt, 3, sb->labels[i].value, -1, SQLITE_STATIC);
                r = store_exec_stmt(s, lstmt, "insert label");
                if (r < 0)
                        return r == -EEXIST ? -EINVAL : r;
        }
        *ret_id = id;
        return 0;
}

int store_sandbox_insert(struct store *s, const struct store_sandbox *sb, int64_t *ret_id)
{
        int64_t id = 0;
        int r;

        if (!sb->name || !sb->image || !sb->config || (sb->status && !status_valid(sb->status)))
                return -EINVAL;
        r = labels_valid(sb);
        if (r < 0)
                return r;
        r = store_tx_begin(s);
        if (r < 0)
                return r;
        r = store_tx_end(s, insert_locked(s, sb, &id));
        if (r < 0)
                return r;
        if (ret_id)
                *ret_id = id;
        return 0;
}

#define SANDBOX_COLUMNS "id, name, image, config, status, ephemeral, created_at, updated_at"

/* Reads one row selected with SANDBOX_COLUMNS (labels not included). */
static int read_sandbox(sqlite3_stmt *stmt, struct store_sandbox *ret)
{
        struct store_sandbox sb = {0};
        int r;

        sb.id = sqlite3_column_int64(stmt, 0);
        r = column_strdup(stmt, 1, false, &sb.name);
        if (r >= 0)
                r = column_strdup(stmt, 2, false, &sb.image);
        if (r >= 0)
                r = column_strdup(stmt, 3, false, &sb.config);
        if (r >= 0)
                r = column_strdup(stmt, 4, false, &sb.status);
        if (r < 0) {
                store_sandbox_clear(&sb);
                return r;
        }
        sb.ephemeral = sqlite3_column_int(stmt, 5) != 0;
        sb.created_at = sqlite3_column_int64(stmt, 6);
        sb.updated_at = sqlite3_column_int64(stmt, 7);
        *ret = sb;
        return 0;
}

/* Fills sb->labels (ordered by key) from the database. */
static int read_labels(struct store *s, struct store_sandbox *sb)
{
        _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
        struct store_label *labels = NULL;
        size_t n = 0, cap = 0;
        int r, rc;

        r = store_prepare(s, "SELECT key, value FROM labels WHERE sandbox_id = ?1 ORDER BY key",
                          &stmt);
        if (r < 0)
                return r;
        sqlite3_bind_int64(stmt, 1, sb->id);
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 4;
                        struct store_label *nl = reallocarray(labels, ncap, sizeof(*nl));

                        if (!nl) {
                                r = -ENOMEM;
                                break;
                        }
                        labels = nl;
                        cap = ncap;
                }
                labels[n] = (struct store_label){0};
                r = column_strdup(stmt, 0, false, &labels[n].key);
                if (r >= 0)
                        r = column_strdup(stmt, 1, false, &labels[n].value);
                n++;
                if (r < 0)
                        break;
        }
        if (r >= 0 && rc != SQLITE_DONE)
                r = store_sql_error(s, rc, "read labels");
        sb->labels = labels;
        sb->n_labels = n;
        return r; /* on failure the caller clears sb, labels included */
}

static int get_locked(struct store *s, const char *name, struct store_sandbox *ret)
{
        _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
        struct store_sandbox sb;
        int r, rc;

        r = store_prepare(s, "SELECT " SANDBOX_COLUMNS " FROM sandboxes WHERE name = ?1", &stmt);
        if (r < 0)
                return r;
        sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_sql_error(s, rc, "get sandbox");
        r = read_sandbox(stmt, &sb);
        if (r < 0)
                return r;
        r = read_labels(s, &sb);
        if (r < 0) {
                store_sandbox_clear(&sb);
                return r;
        }
        *ret = sb;
        return 0;
}

int store_sandbox_get(struct store *s, const char *name, struct store_sandbox *ret)
{
        int r;

        if (!name)
                return -EINVAL;
        r = tx_begin_read(s);
        if (r < 0)
                return r;
        return store_tx_end(s, get_locked(s, name, ret));
}

/* SELECT ... WHERE one EXISTS clause per filter, parameters ?1, ?2, ... */
static int build_list_query(const char *const *filters, size_t n, char **ret)
{
        static const char head[] = "SELECT " SANDBOX_COLUMNS " FROM sandboxes s WHERE 1";
        static const char clause[] =
                " AND EXISTS (SELECT 1 FROM labels l WHERE l.sandbox_id = s.id AND l.key = ?";
        static const char tail[] = " ORDER BY created_at, id";
        size_t cap = sizeof(head) + sizeof(tail) + n * (sizeof(clause) + 48), len;
        char *sql = malloc(cap);
        unsigned param = 1;

        if (!sql)
                return -ENOMEM;
        len = (size_t)snprintf(sql, cap, "%s", head);
        for (size_t i = 0; i < n; i++) {
                if (strchr(filters[i], '='))
                        len += (size_t)snprintf(sql + len, cap - len, "%s%u AND l.value = ?%u)",
                                                clause, param, param + 1);
                else
                        len += (size_t)snprintf(sql + len, cap - len, "%s%u)", clause, param);
                param += 2;
        }
        snprintf(sql + len, cap - len, "%s", tail);
        *ret = sql;
        return 0;
}

static int list_locked(struct store *s, sqlite3_stmt *stmt, struct store_sandbox **ret,
                       size_t *ret_n)
{
        struct store_sandbox *list = NULL;
        size_t n = 0, cap = 0;
        int r = 0, rc;

        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 8;
                        struct store_sandbox *nl = reallocarray(list, ncap, sizeof(*nl));

                        if (!nl) {
                                r = -ENOMEM;
                                break;
                        }
                        list = nl;
                        cap = ncap;
                }
                r = read_sandbox(stmt, &list[n]);
                if (r < 0)
                        break;
                n++;
                r = read_labels(s, &list[n - 1]);
                if (r < 0)
                        break;
        }
        if (r >= 0 && rc != SQLITE_DONE)
                r = store_sql_error(s, rc, "list sandboxes");
        if (r < 0) {
                store_sandbox_list_free(list, n);
                return r;
        }
        *ret = list;
        *ret_n = n;
        return 0;
}

int store_sandbox_list(struct store *s, const char *const *label_filters, size_t n_filters,
                       struct store_sandbox **ret, size_t *ret_n)
{
        _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
        _cleanup_free_ char *sql = NULL;
        int r;

        if (n_filters > MAX_FILTERS || (n_filters > 0 && !label_filters))
                return -EINVAL;
        for (size_t i = 0; i < n_filters; i++)
                if (!label_filters[i] || !*label_filters[i] || *label_filters[i] == '=')
                        return -EINVAL;
        r = build_list_query(label_filters, n_filters, &sql);
        if (r < 0)
                return r;
        r = store_prepare(s, sql, &stmt);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_filters; i++) {
                const char *f = label_filters[i], *eq = strchr(f, '=');
                int param = (int)(2 * i + 1);

                if (eq) {
                        sqlite3_bind_text(stmt, param, f, (int)(eq - f), SQLITE_STATIC);
                        sqlite3_bind_text(stmt, param + 1, eq + 1, -1, SQLITE_STATIC);
                } else {
                        sqlite3_bind_text(stmt, param, f, -1, SQLITE_STATIC);
                }
        }
        r = tx_begin_read(s);
        if (r < 0)
                return r;
        return store_tx_end(s, list_locked(s, stmt, ret, ret_n));
}

/* Runs a prepared write statement in its own transaction; -ENOENT when it
 * changed no row. */
static int write_one(struct store *s, sqlite3_stmt *stmt, const char *what)
{
        int r = store_tx_begin(s);

        if (r < 0)
                return r;
        r = store_exec_stmt(s, stmt, what);
        if (r >= 0 && sqlite3_changes(s->db) == 0)
                r = -ENOENT;
        return store_tx_end(s, r);
}

int store_sandbox_set_status(struct store *s, const char *name, const char *status)
{
        _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
        int r;

        if (!name || !status_valid(status))
                return -EINVAL;
        r = store_prepare(s, "UPDATE sandboxes SET status = ?1, updated_at = ?2 WHERE name = ?3",
                          &stmt);
        if (r < 0)
                return r;
        sqlite3_bind_text(stmt, 1, status, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 2, store_now_ms());
        sqlite3_bind_text(stmt, 3, name, -1, SQLITE_STATIC);
        return write_one(s, stmt, "set status");
}

int store_sandbox_delete(struct store *s, const char *name)
{
        _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
        int r;

        if (!name)
                return -EINVAL;
        /* labels and runs go with it: ON DELETE CASCADE, foreign_keys=ON */
        r = store_prepare(s, "DELETE FROM sandboxes WHERE name = ?1", &stmt);
        if (r < 0)
                return r;
        sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
        return write_one(s, stmt, "delete sandbox");
}

/* ---- runs ---- */

void store_run_clear(struct store_run *r)
{
        if (!r)
                return;
        free(r->reason);
        *r = (struct store_run){0};
}

static void bind_pid(sqlite3_stmt *stmt, int param, pid_t pid)
{
        if (pid > 0)
                sqlite3_bind_int64(stmt, param, pid);
        else
                sqlite3_bind_null(stmt, param);
}

int store_run_begin(struct store *s, int64_t sandbox_id, pid_t supervisor_pid, pid_t qemu_pid,
                    int64_t *ret_run_id)
{
        _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
        int64_t id = 0;
        int r;

        r = store_prepare(s,
                          "INSERT INTO runs (sandbox_id, supervisor_pid, qemu_pid, started_at)"
                          " VALUES (?1, ?2, ?3, ?4)",
                          &stmt);
        if (r < 0)
                return r;
        sqlite3_bind_int64(stmt, 1, sandbox_id);
        bind_pid(stmt, 2, supervisor_pid);
        bind_pid(stmt, 3, qemu_pid);
        sqlite3_bind_int64(stmt, 4, store_now_ms());
        r = store_tx_begin(s);
        if (r < 0)
                return r;
        r = store_exec_stmt(s, stmt, "begin run"); /* -ENOENT: no such sandbox */
        if (r >= 0)
                id = sqlite3_last_insert_rowid(s->db);
        r = store_tx_end(s, r);
        if (r < 0)
                return r;
        if (ret_run_id)
                *ret_run_id = id;
        return 0;
}

static int run_end_locked(struct store *s, int64_t run_id, const char *reason, const char *status)
{
        _cleanup_stmt_ sqlite3_stmt *q = NULL, *u = NULL, *st = NULL;
        int64_t now = store_now_ms(), sandbox_id;
        int r, rc;

        r = store_prepare(s, "SELECT sandbox_id, ended_at IS NOT NULL FROM runs WHERE id = ?1", &q);
        if (r < 0)
                return r;
        sqlite3_bind_int64(q, 1, run_id);
        rc = sqlite3_step(q);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_sql_error(s, rc, "find run");
        if (sqlite3_column_int(q, 1))
                return 0; /* ended before: nothing changes */
        sandbox_id = sqlite3_column_int64(q, 0);

        r = store_prepare(s, "UPDATE runs SET ended_at = ?1, reason = ?2 WHERE id = ?3", &u);
        if (r < 0)
                return r;
        sqlite3_bind_int64(u, 1, now);
        sqlite3_bind_text(u, 2, reason, -1, SQLITE_STATIC);
        sqlite3_bind_int64(u, 3, run_id);
        r = store_exec_stmt(s, u, "end run");
        if (r < 0 || !status)
                return r;

        r = store_prepare(s, "UPDATE sandboxes SET status = ?1, updated_at = ?2 WHERE id = ?3",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_int64(st, 3, sandbox_id);
        return store_exec_stmt(s, st, "set status");
}

int store_run_end(struct store *s, int64_t run_id, const char *reason, const char *status)
{
        int r;

        if (!reason || (status && !status_valid(status)))
                return -EINVAL;
        r = store_tx_begin(s);
        if (r < 0)
                return r;
        return store_tx_end(s, run_end_locked(s, run_id, reason, status));
}

int store_run_last(struct store *s, int64_t sandbox_id, struct store_run *ret)
{
        _cleanup_stmt_ sqlite3_stmt *stmt = NULL;
        struct store_run run = {0};
        int r, rc;

        r = store_prepare(s,
                          "SELECT id, sandbox_id, supervisor_pid, qemu_pid, started_at,"
                          " ended_at, reason FROM runs WHERE sandbox_id = ?1"
                          " ORDER BY id DESC LIMIT 1",
                          &stmt);
        if (r < 0)
                return r;
        sqlite3_bind_int64(stmt, 1, sandbox_id);
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_sql_error(s, rc, "last run");
        run.id = sqlite3_column_int64(stmt, 0);
        run.sandbox_id = sqlite3_column_int64(stmt, 1);
        run.supervisor_pid = (pid_t)sqlite3_column_int64(stmt, 2);
        run.qemu_pid = (pid_t)sqlite3_column_int64(stmt, 3);
        run.started_at = sqlite3_column_int64(stmt, 4);
        run.ended_at = sqlite3_column_int64(stmt, 5); /* NULL reads as 0 */
        r = column_strdup(stmt, 6, true, &run.reason);
        if (r < 0)
                return r;
        *ret = run;
        return 0;
}
