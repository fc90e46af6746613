/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the state store, each in a fresh $home under a temporary
 * directory: sandbox rows and labels, label filters, unique names, runs,
 * status updates, the schema (migration from an empty file, a newer schema
 * refused, garbage and damaged files refused cleanly) and concurrent
 * writers in separate processes with their own connections.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "lib/core/util.h"
#include "lib/store/store.h"

struct fixture {
        char home[256];
        char db[300];
        struct store *s;
};

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        const char *tmp = getenv("TMPDIR");

        if (!f)
                return -1;
        snprintf(f->home, sizeof(f->home), "%s/test-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(f->home))
                return -1;
        snprintf(f->db, sizeof(f->db), "%s/db/msb.db", f->home);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        store_close(f->s);
        rm_rf(f->home);
        free(f);
        return 0;
}

static struct store *open_ok(struct fixture *f)
{
        char err[512] = "";
        int r = store_open(f->home, &f->s, err, sizeof(err));

        if (r < 0)
                fail_msg("store_open: %s (%s)", strerror(-r), err);
        return f->s;
}

static int64_t insert(struct store *s, const char *name, const char *const *kv, size_t n_kv)
{
        struct store_label labels[8];
        struct store_sandbox sb = {
                .name = (char *)name,
                .image = (char *)"base",
                .config = (char *)"{\"version\":1}",
                .labels = labels,
                .n_labels = n_kv / 2,
        };
        int64_t id = 0;

        assert_true(n_kv / 2 <= 8);
        for (size_t i = 0; i < n_kv / 2; i++)
                labels[i] = (struct store_label){(char *)kv[2 * i], (char *)kv[2 * i + 1]};
        assert_int_equal(store_sandbox_insert(s, &sb, &id), 0);
        assert_true(id > 0);
        return id;
}

static void test_create_get_list_delete(void **state)
{
        struct fixture *f = *state;
        struct store *s = open_ok(f);
        struct store_sandbox sb = {0}, *list = NULL;
        struct stat st;
        size_t n = 0;
        int64_t before = store_now_ms(), a, b;

        /* $home/db was created private */
        assert_int_equal(stat(f->db, &st), 0);
        char dir[300];
        snprintf(dir, sizeof(dir), "%s/db", f->home);
        assert_int_equal(stat(dir, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0700);

        assert_int_equal(store_sandbox_list(s, NULL, 0, &list, &n), 0);
        assert_int_equal(n, 0);
        store_sandbox_list_free(list, n);

        a = insert(s, "web", (const char *const[]){"team", "a", "env", "prod"}, 4);
        struct store_sandbox eph = {.name = (char *)"tmp",
                                    .image = (char *)"alpine",
                                    .config = (char *)"{}",
                                    .status = (char *)"starting",
                                    .ephemeral = true};
        assert_int_equal(store_sandbox_insert(s, &eph, &b), 0);
        assert_true(b > a);

        assert_int_equal(store_sandbox_get(s, "web", &sb), 0);
        assert_true(sb.id == a);
        assert_string_equal(sb.name, "web");
        assert_string_equal(sb.image, "base");
        assert_string_equal(sb.config, "{\"version\":1}");
        assert_string_equal(sb.status, "created");
        assert_false(sb.ephemeral);
        assert_true(sb.created_at >= before && sb.created_at <= store_now_ms());
        assert_true(sb.updated_at == sb.created_at);
        assert_int_equal(sb.n_labels, 2); /* ordered by key */
        assert_string_equal(sb.labels[0].key, "env");
        assert_string_equal(sb.labels[0].value, "prod");
        assert_string_equal(sb.labels[1].key, "team");
        assert_string_equal(sb.labels[1].value, "a");
        store_sandbox_clear(&sb);
        assert_null(sb.name);

        assert_int_equal(store_sandbox_get(s, "tmp", &sb), 0);
        assert_true(sb.ephemeral);
        assert_string_equal(sb.status, "starting");
        assert_int_equal(sb.n_labels, 0);
        store_sandbox_clear(&sb);

        assert_int_equal(store_sandbox_get(s, "nope", &sb), -ENOENT);
        assert_null(sb.name); /* untouched */

        assert_int_equal(store_sandbox_list(s, NULL, 0, &list, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(list[0].name, "web"); /* creation order */
        assert_string_equal(list[1].name, "tmp");
        assert_int_equal(list[0].n_labels, 2);
        store_sandbox_list_free(list, n);

        assert_int_equal(store_sandbox_delete(s, "web"), 0);
        assert_int_equal(store_sandbox_delete(s, "web"), -ENOENT);
        assert_int_equal(store_sandbox_get(s, "web", &sb), -ENOENT);
        assert_int_equal(store_sandbox_list(s, NULL, 0, &list, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(list[0].name, "tmp");
        store_sandbox_list_free(list, n);

        /* the data survives a reopen */
        store_close(f->s);
        s = open_ok(f);
        assert_int_equal(store_sandbox_get(s, "tmp", &sb), 0);
        store_sandbox_clear(&sb);
}

static void test_invalid_arguments(void **state)
{
        struct fixture *f = *state;
        struct store *s = open_ok(f);
        struct store_label dup[] = {{(char *)"k", (char *)"1"}, {(char *)"k", (char *)"2"}};
        struct store_label eq[] = {{(char *)"a=b", (char *)"1"}};
        struct store_label empty[] = {{(char *)"", (char *)"1"}};
        struct store_sandbox sb = {
                .name = (char *)"x", .image = (char *)"i", .config = (char *)"{}"};
        struct store_sandbox *list;
        size_t n;

        sb.status = (char *)"bogus";
        assert_int_equal(store_sandbox_insert(s, &sb, NULL), -EINVAL);
        sb.status = NULL;
        sb.labels = dup;
        sb.n_labels = 2;
        assert_int_equal(store_sandbox_insert(s, &sb, NULL), -EINVAL);
        sb.labels = eq;
        sb.n_labels = 1;
        assert_int_equal(store_sandbox_insert(s, &sb, NULL), -EINVAL);
        sb.labels = empty;
        assert_int_equal(store_sandbox_insert(s, &sb, NULL), -EINVAL);
        sb.labels = NULL;
        sb.n_labels = 0;
        sb.config = NULL;
        assert_int_equal(store_sandbox_insert(s, &sb, NULL), -EINVAL);

        /* nothing was inserted by the failures */
        assert_int_equal(store_sandbox_list(s, NULL, 0, &list, &n), 0);
        assert_int_equal(n, 0);
        store_sandbox_list_free(list, n);

        assert_int_equal(store_sandbox_list(s, (const char *const[]){""}, 1, &list, &n), -EINVAL);
        assert_int_equal(store_sandbox_list(s, (const char *const[]){"=v"}, 1, &list, &n), -EINVAL);
}

static void test_unique_names(void **state)
{
        struct fixture *f = *state;
        struct store *s = open_ok(f);
        struct store_sandbox sb = {.name = (char *)"web",
                                   .image = (char *)"other",
                                   .config = (char *)"{}",
                                   .labels = (struct store_label[]){{(char *)"k", (char *)"v"}},
                                   .n_labels = 1};
        struct store_sandbox got = {0};
        int64_t id = -1;

        insert(s, "web", (const char *const[]){"team", "a"}, 2);
        assert_int_equal(store_sandbox_insert(s, &sb, &id), -EEXIST);
        assert_true(id == -1);
        /* the first one is intact, labels included */
        assert_int_equal(store_sandbox_get(s, "web", &got), 0);
        assert_string_equal(got.image, "base");
        assert_int_equal(got.n_labels, 1);
        assert_string_equal(got.labels[0].key, "team");
        store_sandbox_clear(&got);
        /* the name is free again after a delete */
        assert_int_equal(store_sandbox_delete(s, "web"), 0);
        assert_int_equal(store_sandbox_insert(s, &sb, &id), 0);
}

static void expect_names(struct store *s, const char *const *filters, size_t n_filters,
                         const char *expected)
{
        struct store_sandbox *list = NULL;
        char got[256] = "";
        size_t n = 0;

        assert_int_equal(store_sandbox_list(s, filters, n_filters, &list, &n), 0);
        for (size_t i = 0; i < n; i++) {
                if (i)
                        strcat(got, ",");
                strcat(got, list[i].name);
        }
        store_sandbox_list_free(list, n);
        assert_string_equal(got, expected);
}

static void test_label_filters(void **state)
{
        struct fixture *f = *state;
        struct store *s = open_ok(f);

        insert(s, "a", (const char *const[]){"team", "x", "env", "prod"}, 4);
        insert(s, "b", (const char *const[]){"team", "y", "env", "prod"}, 4);
        insert(s, "c", (const char *const[]){"team", "x"}, 2);
        insert(s, "d", (const char *const[]){"odd", "a=b", "empty", ""}, 4);
        insert(s, "e", NULL, 0);

        expect_names(s, NULL, 0, "a,b,c,d,e");
        expect_names(s, (const char *const[]){"team"}, 1, "a,b,c");
        expect_names(s, (const char *const[]){"team=x"}, 1, "a,c");
        expect_names(s, (const char *const[]){"team=x", "env=prod"}, 2, "a");
        expect_names(s, (const char *const[]){"team=x", "env"}, 2, "a");
        expect_names(s, (const char *const[]){"env=prod", "team=y"}, 2, "b");
        expect_names(s, (const char *const[]){"team=z"}, 1, "");
        expect_names(s, (const char *const[]){"nothing"}, 1, "");
        /* the value is everything after the first '=' */
        expect_names(s, (const char *const[]){"odd=a=b"}, 1, "d");
        expect_names(s, (const char *const[]){"odd=a"}, 1, "");
        /* "KEY=" matches an empty value only */
        expect_names(s, (const char *const[]){"empty="}, 1, "d");
        expect_names(s, (const char *const[]){"team="}, 1, "");
        /* filters are data, never SQL */
        expect_names(s, (const char *const[]){"team' OR 1=1 --"}, 1, "");
        /* deleting a sandbox removes its labels */
        assert_int_equal(store_sandbox_delete(s, "a"), 0);
        expect_names(s, (const char *const[]){"team=x"}, 1, "c");
}

static void test_status_updates(void **state)
{
        struct fixture *f = *state;
        struct store *s = open_ok(f);
        struct store_sandbox sb = {0};
        int64_t created;

        insert(s, "web", NULL, 0);
        assert_int_equal(store_sandbox_get(s, "web", &sb), 0);
        created = sb.created_at;
        store_sandbox_clear(&sb);

        static const char *const all[] = {"starting", "running", "stopping",
                                          "stopped",  "crashed", "created"};
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
                assert_int_equal(store_sandbox_set_status(s, "web", all[i]), 0);
                assert_int_equal(store_sandbox_get(s, "web", &sb), 0);
                assert_string_equal(sb.status, all[i]);
                assert_true(sb.created_at == created);
                assert_true(sb.updated_at >= created);
                store_sandbox_clear(&sb);
        }
        assert_int_equal(store_sandbox_set_status(s, "web", "paused"), -EINVAL);
        assert_int_equal(store_sandbox_set_status(s, "web", NULL), -EINVAL);
        assert_int_equal(store_sandbox_set_status(s, "nope", "running"), -ENOENT);
}

static void test_runs(void **state)
{
        struct fixture *f = *state;
        struct store *s = open_ok(f);
        struct store_run run = {0};
        struct store_sandbox sb = {0};
        int64_t id, other, r1, r2, r3, before = store_now_ms();

        id = insert(s, "web", NULL, 0);
        other = insert(s, "db", NULL, 0);
        assert_int_equal(store_run_last(s, id, &run), -ENOENT);
        assert_int_equal(store_run_begin(s, 999999, 1, 2, &r1), -ENOENT);

        assert_int_equal(store_run_begin(s, id, 100, 101, &r1), 0);
        assert_int_equal(store_sandbox_set_status(s, "web", "running"), 0);
        assert_int_equal(store_run_last(s, id, &run), 0);
        assert_true(run.id == r1);
        assert_true(run.sandbox_id == id);
        assert_int_equal(run.supervisor_pid, 100);
        assert_int_equal(run.qemu_pid, 101);
        assert_true(run.started_at >= before);
        assert_true(run.ended_at == 0);
        assert_null(run.reason);
        store_run_clear(&run);

        assert_int_equal(store_run_end(s, r1, "stopped", "stopped"), 0);
        assert_int_equal(store_run_last(s, id, &run), 0);
        assert_true(run.ended_at >= run.started_at);
        assert_string_equal(run.reason, "stopped");
        store_run_clear(&run);
        assert_int_equal(store_sandbox_get(s, "web", &sb), 0);
        assert_string_equal(sb.status, "stopped");
        store_sandbox_clear(&sb);

        /* ending again is a no-op: neither the reason nor the status change */
        assert_int_equal(store_run_end(s, r1, "crashed", "crashed"), 0);
        assert_int_equal(store_run_last(s, id, &run), 0);
        assert_string_equal(run.reason, "stopped");
        store_run_clear(&run);
        assert_int_equal(store_sandbox_get(s, "web", &sb), 0);
        assert_string_equal(sb.status, "stopped");
        store_sandbox_clear(&sb);

        assert_int_equal(store_run_end(s, 424242, "stopped", "stopped"), -ENOENT);
        assert_int_equal(store_run_end(s, r1, NULL, "stopped"), -EINVAL);
        assert_int_equal(store_run_end(s, r1, "stopped", "bogus"), -EINVAL);

        /* the newest run wins; unknown pids are stored as absent */
        assert_int_equal(store_run_begin(s, id, 200, 0, &r2), 0);
        assert_int_equal(store_run_begin(s, other, 300, 301, &r3), 0);
        assert_true(r2 > r1 && r3 > r2);
        assert_int_equal(store_run_last(s, id, &run), 0);
        assert_true(run.id == r2);
        assert_int_equal(run.qemu_pid, 0);
        store_run_clear(&run);
        /* a NULL status leaves the sandbox's status alone */
        assert_int_equal(store_sandbox_set_status(s, "web", "running"), 0);
        assert_int_equal(store_run_end(s, r2, "idle_timeout", NULL), 0);
        assert_int_equal(store_sandbox_get(s, "web", &sb), 0);
        assert_string_equal(sb.status, "running");
        store_sandbox_clear(&sb);

        /* deleting the sandbox removes its runs, not the others' */
        assert_int_equal(store_sandbox_delete(s, "web"), 0);
        assert_int_equal(store_run_last(s, id, &run), -ENOENT);
        assert_int_equal(store_run_end(s, r2, "stopped", NULL), -ENOENT);
        assert_int_equal(store_run_last(s, other, &run), 0);
        assert_true(run.id == r3);
        store_run_clear(&run);
}

/* Opens the database file directly, as another program would. */
static sqlite3 *raw_open(struct fixture *f)
{
        sqlite3 *db = NULL;

        assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
        return db;
}

static int64_t raw_int(sqlite3 *db, const char *sql)
{
        sqlite3_stmt *stmt;
        int64_t v;

        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
        v = sqlite3_column_int64(stmt, 0);
        sqlite3_finalize(stmt);
        return v;
}

static void make_db_dir(struct fixture *f)
{
        char dir[300];

        snprintf(dir, sizeof(dir), "%s/db", f->home);
        assert_int_equal(mkdir(dir, 0700), 0);
}

static void test_migration_from_empty_file(void **state)
{
        struct fixture *f = *state;
        sqlite3 *db;

        make_db_dir(f);
        assert_int_equal(write_file(f->db, "", 0600), 0);
        open_ok(f);
        assert_int_equal(store_schema_version(), 2);

        db = raw_open(f);
        assert_int_equal(raw_int(db, "PRAGMA user_version"), store_schema_version());
        assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                                     " AND name IN ('sandboxes', 'runs', 'labels')"),
                         3);
        {
                sqlite3_stmt *stmt;
                assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL),
                                 SQLITE_OK);
                assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
                assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "wal");
                sqlite3_finalize(stmt);
        }
        sqlite3_close(db);

        /* a second open finds the schema current and changes nothing */
        store_close(f->s);
        open_ok(f);
        insert(f->s, "web", NULL, 0);
}

static void test_newer_schema_refused(void **state)
{
        struct fixture *f = *state;
        char err[512] = "", expect[600];
        struct store *s = NULL;
        sqlite3 *db;

        make_db_dir(f);
        db = raw_open(f);
        assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);

        assert_int_equal(store_open(f->home, &s, err, sizeof(err)), -EPROTO);
        assert_null(s);
        snprintf(expect, sizeof(expect),
                 "the state database at %s has schema version 99, newer than this msb (%d);"
                 " upgrade msb",
                 f->db, store_schema_version());
        assert_string_equal(err, expect);
        /* the database was not touched */
        db = raw_open(f);
        assert_int_equal(raw_int(db, "PRAGMA user_version"), 99);
        assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_master"), 0);
        sqlite3_close(db);
        /* errmsg is optional */
        assert_int_equal(store_open(f->home, &s, NULL, 0), -EPROTO);
}

static void test_garbage_file(void **state)
{
        struct fixture *f = *state;
        char garbage[8192], err[512] = "";
        struct store *s = NULL;
        int r;

        for (size_t i = 0; i < sizeof(garbage); i++)
                garbage[i] = (char)(i * 7 + 13);
        make_db_dir(f);
        {
                int fd = open(f->db, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
                assert_true(fd >= 0);
                assert_int_equal(write_all(fd, garbage, sizeof(garbage)), 0);
                close(fd);
        }
        r = store_open(f->home, &s, err, sizeof(err));
        assert_int_equal(r, -EBADMSG);
        assert_null(s);
        assert_non_null(strstr(err, f->db));
        assert_non_null(strstr(err, "not a database"));
}

static void test_damaged_pages(void **state)
{
        struct fixture *f = *state;
        struct store_sandbox *list = NULL;
        struct store_sandbox sb = {0};
        char err[512] = "", name[32];
        struct stat st;
        size_t n = 0;
        int r, fd;

        /* a real database with a few pages, then its pages after the first
         * overwritten (header intact) */
        open_ok(f);
        for (int i = 0; i < 200; i++) {
                snprintf(name, sizeof(name), "sandbox-%d", i);
                insert(f->s, name, (const char *const[]){"k", "v"}, 2);
        }
        store_close(f->s);
        f->s = NULL;
        assert_int_equal(stat(f->db, &st), 0);
        assert_true(st.st_size > 4096);
        fd = open(f->db, O_WRONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        for (off_t off = 4096; off < st.st_size; off += 16) {
                static const char junk[16] = "\xff\x00\x13\x37garbagebytes";
                assert_int_equal(pwrite(fd, junk, sizeof(junk), off), (ssize_t)sizeof(junk));
        }
        close(fd);

        /* either refused at open or at the first query: never a crash */
        r = store_open(f->home, &f->s, err, sizeof(err));
        if (r < 0) {
                assert_true(r == -EBADMSG || r == -EIO);
                return;
        }
        r = store_sandbox_list(f->s, NULL, 0, &list, &n);
        if (r == 0)
                store_sandbox_list_free(list, n);
        else
                assert_true(r == -EBADMSG || r == -EIO);
        r = store_sandbox_get(f->s, "sandbox-150", &sb);
        if (r == 0)
                store_sandbox_clear(&sb);
        else
                assert_true(r == -EBADMSG || r == -EIO || r == -ENOENT);
}

#define N_WRITERS 8
#define N_ROUNDS  60

/* One writer process: its own connection; inserts N_ROUNDS sandboxes with a
 * label, moves each through statuses and a run, deletes every other one,
 * and records a run on the shared sandbox each round. Exit 0 on success. */
static int writer(const char *home, int k, int64_t shared_id)
{
        struct store *s = NULL;
        char name[32], value[16];
        int r;

        r = store_open(home, &s, NULL, 0);
        if (r < 0)
                return 10;
        snprintf(value, sizeof(value), "%d", k);
        for (int i = 0; i < N_ROUNDS; i++) {
                struct store_label l = {(char *)"writer", value};
                struct store_sandbox sb = {.name = name,
                                           .image = (char *)"base",
                                           .config = (char *)"{}",
                                           .labels = &l,
                                           .n_labels = 1};
                int64_t id, run, run2;

                snprintf(name, sizeof(name), "w%d-%d", k, i);
                if (store_sandbox_insert(s, &sb, &id) < 0)
                        return 11;
                if (store_sandbox_set_status(s, name, "starting") < 0 ||
                    store_run_begin(s, id, getpid(), 0, &run) < 0 ||
                    store_sandbox_set_status(s, name, "running") < 0 ||
                    store_run_end(s, run, "stopped", "stopped") < 0)
                        return 12;
                if (i % 2 == 1 && store_sandbox_delete(s, name) < 0)
                        return 13;
                if (store_run_begin(s, shared_id, getpid(), 0, &run2) < 0 ||
                    store_sandbox_set_status(s, "shared", i % 2 ? "running" : "stopped") < 0 ||
                    store_run_end(s, run2, "completed", NULL) < 0)
                        return 14;
        }
        store_close(s);
        return 0;
}

static void test_concurrent_writers(void **state)
{
        struct fixture *f = *state;
        struct store_sandbox *list = NULL;
        pid_t pids[N_WRITERS];
        int64_t shared_id;
        size_t n = 0;
        sqlite3 *db;

        open_ok(f);
        shared_id = insert(f->s, "shared", NULL, 0);
        store_close(f->s);
        f->s = NULL;

        for (int k = 0; k < N_WRITERS; k++) {
                pids[k] = fork();
                assert_true(pids[k] >= 0);
                if (pids[k] == 0)
                        _exit(writer(f->home, k, shared_id));
        }
        for (int k = 0; k < N_WRITERS; k++) {
                int status;

                assert_int_equal(waitpid(pids[k], &status, 0), pids[k]);
                assert_true(WIFEXITED(status));
                if (WEXITSTATUS(status) != 0)
                        fail_msg("writer %d failed with %d", k, WEXITSTATUS(status));
        }

        open_ok(f);
        for (int k = 0; k < N_WRITERS; k++) {
                char filter[32];
                const char *fl[] = {filter};

                snprintf(filter, sizeof(filter), "writer=%d", k);
                assert_int_equal(store_sandbox_list(f->s, fl, 1, &list, &n), 0);
                assert_int_equal(n, N_ROUNDS / 2);
                for (size_t i = 0; i < n; i++) {
                        char name[32];

                        snprintf(name, sizeof(name), "w%d-%zu", k, 2 * i);
                        assert_string_equal(list[i].name, name);
                        assert_string_equal(list[i].status, "stopped");
                        assert_int_equal(list[i].n_labels, 1);
                }
                store_sandbox_list_free(list, n);
        }
        db = raw_open(f);
        assert_int_equal(raw_int(db, "SELECT count(*) FROM sandboxes"),
                         1 + N_WRITERS * N_ROUNDS / 2);
        assert_int_equal(raw_int(db, "SELECT count(*) FROM labels"), N_WRITERS * N_ROUNDS / 2);
        /* runs of deleted sandboxes went with them */
        assert_int_equal(raw_int(db, "SELECT count(*) FROM runs WHERE sandbox_id <> "
                                     "(SELECT id FROM sandboxes WHERE name = 'shared')"),
                         N_WRITERS * N_ROUNDS / 2);
        assert_int_equal(raw_int(db, "SELECT count(*) FROM runs WHERE sandbox_id = "
                                     "(SELECT id FROM sandboxes WHERE name = 'shared')"
                                     " AND reason = 'completed' AND ended_at IS NOT NULL"),
                         N_WRITERS * N_ROUNDS);
        assert_int_equal(raw_int(db, "SELECT count(*) FROM runs WHERE ended_at IS NULL"), 0);
        assert_int_equal(raw_int(db, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
        sqlite3_close(db);
}

static void test_concurrent_first_open(void **state)
{
        struct fixture *f = *state;
        pid_t pids[N_WRITERS];
        struct store_sandbox *list = NULL;
        size_t n = 0;

        /* every process finds no database and creates/migrates it at once */
        for (int k = 0; k < N_WRITERS; k++) {
                pids[k] = fork();
                assert_true(pids[k] >= 0);
                if (pids[k] == 0) {
                        struct store *s = NULL;
                        char name[16];
                        struct store_sandbox sb = {
                                .name = name, .image = (char *)"base", .config = (char *)"{}"};

                        snprintf(name, sizeof(name), "p%d", k);
                        if (store_open(f->home, &s, NULL, 0) < 0)
                                _exit(1);
                        if (store_sandbox_insert(s, &sb, NULL) < 0)
                                _exit(2);
                        store_close(s);
                        _exit(0);
                }
        }
        for (int k = 0; k < N_WRITERS; k++) {
                int status;

                assert_int_equal(waitpid(pids[k], &status, 0), pids[k]);
                assert_true(WIFEXITED(status));
                if (WEXITSTATUS(status) != 0)
                        fail_msg("process %d failed with %d", k, WEXITSTATUS(status));
        }
        open_ok(f);
        assert_int_equal(store_sandbox_list(f->s, NULL, 0, &list, &n), 0);
        assert_int_equal(n, N_WRITERS);
        store_sandbox_list_free(list, n);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_create_get_list_delete, setup, teardown),
                cmocka_unit_test_setup_teardown(test_invalid_arguments, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unique_names, setup, teardown),
                cmocka_unit_test_setup_teardown(test_label_filters, setup, teardown),
                cmocka_unit_test_setup_teardown(test_status_updates, setup, teardown),
                cmocka_unit_test_setup_teardown(test_runs, setup, teardown),
                cmocka_unit_test_setup_teardown(test_migration_from_empty_file, setup, teardown),
                cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_garbage_file, setup, teardown),
                cmocka_unit_test_setup_teardown(test_damaged_pages, setup, teardown),
                cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
                cmocka_unit_test_setup_teardown(test_concurrent_first_open, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
