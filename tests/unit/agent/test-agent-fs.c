/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of the agent's file operations (core.fs.*) without a VM: the static
 * agent serves a socketpair (harness.c) and works on a scratch directory of
 * the host, which the tests then inspect directly. Every op is run for its
 * result and for its failures; the streams are checked for their flow
 * control (read and write windows), a 100 MB round trip, and for what an
 * interrupted write leaves behind: nothing.
 *
 * Waits are on events (frames, pidfds), never sleeps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "lib/core/util.h"

#define BIG_FILE (100u * 1000u * 1000u)

/* What the agent answered on one file session. */
struct fsr {
        uint32_t id;
        bool done, failed; /* failed: a core.error instead of a response */
        struct proto_fs_response resp;
        struct proto_error error;
        struct proto_fs_stat *entries;
        size_t n_entries, entry_frames;
        struct outbuf data;
        uint64_t unacked; /* read: data received, not acknowledged */
        uint64_t acked;   /* write: acknowledged by the agent */
        bool auto_ack;    /* read: acknowledge each chunk at once */
};

static char dir[64]; /* the scratch directory of the current test */

static int fs_setup(void **state)
{
        strcpy(dir, "/tmp/msb-agent-fs-XXXXXX");
        assert_non_null(mkdtemp(dir));
        return agent_setup(state);
}

/* For the agent that runs as nobody: the scratch directory is root's 0755. */
static int fs_setup_nobody(void **state)
{
        strcpy(dir, "/tmp/msb-agent-fs-XXXXXX");
        assert_non_null(mkdtemp(dir));
        assert_int_equal(chmod(dir, 0755), 0);
        return agent_setup_nobody(state);
}

static int fs_teardown(void **state)
{
        agent_teardown(state);
        assert_int_equal(rm_rf(dir), 0);
        return 0;
}

/* dir + "/" + name, in a rotating static buffer. */
static const char *at(const char *name)
{
        static char bufs[4][PROTO_FS_PATH_MAX];
        static int next;
        char *b = bufs[next++ % 4];

        snprintf(b, PROTO_FS_PATH_MAX, "%s/%s", dir, name);
        return b;
}

static void fsr_free(struct fsr *r)
{
        free(r->entries);
        free(r->data.data);
        *r = (struct fsr){0};
}

/* A request with the decoder's defaults, for the caller to adjust. */
static struct proto_fs_request *req_new(enum proto_fs_op op, const char *path)
{
        static struct proto_fs_request req;

        req = (struct proto_fs_request){.op = op};
        req.mode = op == PROTO_FS_OP_WRITE ? 0644 : op == PROTO_FS_OP_MKDIR ? 0755 : 0;
        snprintf(req.path, sizeof(req.path), "%s", path);
        return &req;
}

static void send_req(uint32_t id, const struct proto_fs_request *req)
{
        assert_int_equal(proto_encode_fs_request(&A.out, id, req), 0);
        send_out();
}

static void send_data(uint32_t id, const void *data, size_t len)
{
        assert_int_equal(proto_encode_data(&A.out, id, PROTO_FS_DATA, data, len), 0);
        send_out();
}

static void send_ack(uint32_t id, uint64_t bytes)
{
        const struct proto_stdin_ack ack = {.bytes = bytes};

        assert_int_equal(proto_encode_fs_ack(&A.out, id, &ack), 0);
        send_out();
}

/* Files one message of r's session (any other session fails the test). */
static void fsr_take(struct fsr *r, const struct proto_msg *m)
{
        struct proto_fs_entries it;
        struct proto_stdin_ack ack;
        struct proto_data d;

        assert_int_equal(m->id, r->id);
        assert_false(r->done);
        switch (m->type) {
        case PROTO_FS_ENTRIES:
                assert_int_equal(proto_decode_fs_entries(m, &it), 0);
                r->entry_frames++;
                r->entries = realloc(r->entries, (r->n_entries + it.count) * sizeof(*r->entries));
                assert_non_null(r->entries);
                while (proto_fs_entries_next(&it, &r->entries[r->n_entries]) == 1)
                        r->n_entries++;
                break;
        case PROTO_FS_DATA:
                assert_int_equal(proto_decode_data(m, &d), 0);
                assert_true(d.len > 0);
                append(&r->data, d.data, d.len);
                r->unacked += d.len;
                assert_true(r->unacked <= PROTO_FS_WINDOW);
                if (r->auto_ack) {
                        send_ack(r->id, r->unacked);
                        r->unacked = 0;
                }
                break;
        case PROTO_FS_ACK:
                assert_int_equal(proto_decode_stdin_ack(m, &ack), 0);
                r->acked += ack.bytes;
                break;
        case PROTO_FS_RESPONSE:
                assert_true(m->flags & FRAME_TERMINAL);
                assert_int_equal(proto_decode_fs_response(m, &r->resp), 0);
                r->done = true;
                break;
        case PROTO_ERROR:
                assert_true(m->flags & FRAME_TERMINAL);
                assert_int_equal(proto_decode_error(m, &r->error), 0);
                r->done = r->failed = true;
                break;
        default:
                fail_msg("unexpected %s on %u", m->type_name, m->id);
        }
}

static void fsr_pump(struct fsr *r)
{
        struct proto_msg m;

        expect_msg(&m);
        fsr_take(r, &m);
}

static void fsr_wait(struct fsr *r)
{
        while (!r->done)
                fsr_pump(r);
}

/* Runs req to its answer, feeding data (a write) within the window. */
static void fs_run(struct fsr *r, uint32_t id, const struct proto_fs_request *req, const void *data,
                   size_t len)
{
        size_t sent = 0;

        *r = (struct fsr){.id = id, .auto_ack = true};
        send_req(id, req);
        if (req->op == PROTO_FS_OP_WRITE) {
                while (!r->done && sent < len) {
                        size_t room = PROTO_FS_WINDOW - (size_t)(sent - r->acked);
                        size_t n = MIN(MIN(room, len - sent), (size_t)PROTO_DATA_CHUNK);

                        if (n == 0) {
                                fsr_pump(r);
                                continue;
                        }
                        send_data(id, (const uint8_t *)data + sent, n);
                        sent += n;
                }
                if (!r->done)
                        send_data(id, "", 0);
        }
        fsr_wait(r);
}

/* Runs req and expects success. */
static void fs_ok(struct fsr *r, const struct proto_fs_request *req, const void *data, size_t len)
{
        fs_run(r, 7, req, data, len);
        assert_false(r->failed);
        if (r->resp.err != 0)
                fail_msg("%s: %s", proto_fs_op_name(req->op), r->resp.message);
}

/* For sync_ping_with(): nothing may come. */
static void nothing(const struct proto_msg *m, void *userdata)
{
        fail_msg("unexpected %s on %u", m->type_name, m->id);
}

/* Runs req and expects errno err about path. */
static void fs_fails(const struct proto_fs_request *req, int err, const char *path)
{
        struct fsr r;

        fs_run(&r, 8, req, "x", 1);
        /* a write that failed early may have its data arrive after the
         * answer: it is dropped quietly */
        sync_ping_with(9, nothing, NULL);
        assert_false(r.failed);
        if (r.resp.err != err)
                fail_msg("%s %s: errno %d (%s), want %d", proto_fs_op_name(req->op), req->path,
                         r.resp.err, r.resp.message, err);
        assert_string_equal(r.resp.path, path);
        assert_non_null(strstr(r.resp.message, path));
        fsr_free(&r);
}

static void make_file(const char *path, const char *text, mode_t mode)
{
        assert_int_equal(write_file(path, text, mode), 0);
        assert_int_equal(chmod(path, mode), 0);
}

static char *slurp(const char *path, size_t *ret_len)
{
        char *data;

        assert_int_equal(read_file(path, 1u << 20, &data, ret_len), 0);
        return data;
}

/* Names in dir that start with prefix. */
static size_t count_prefixed(const char *path, const char *prefix)
{
        DIR *d = opendir(path);
        struct dirent *de;
        size_t n = 0;

        assert_non_null(d);
        while ((de = readdir(d)))
                n += startswith(de->d_name, prefix) != NULL;
        closedir(d);
        return n;
}

static size_t count_entries(const char *path)
{
        return count_prefixed(path, "") - 2;
}

/* The children of the agent (the file helpers here): their count, and the
 * first one's pid. */
static size_t helpers(pid_t *ret_first)
{
        char path[64], *list, *p, *end;
        size_t len, n = 0;

        snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)A.pid, (int)A.pid);
        assert_int_equal(read_file(path, 65536, &list, &len), 0);
        for (p = list;; p = end, n++) {
                long pid = strtol(p, &end, 10);

                if (end == p)
                        break;
                if (n == 0 && ret_first)
                        *ret_first = (pid_t)pid;
        }
        free(list);
        return n;
}

/* Waits until every child of the agent has ended. */
static void wait_helpers(void)
{
        pid_t pid;

        while (helpers(&pid) > 0) {
                int fd = pidfd_open(pid);

                if (fd >= 0)
                        wait_pidfd(fd);
                else
                        assert_int_equal(errno, ESRCH);
        }
}

/* ---- stat ---- */

static void assert_stat_matches(const struct proto_fs_stat *st, const char *path)
{
        struct stat want;

        assert_int_equal(lstat(path, &want), 0);
        assert_int_equal(st->mode, want.st_mode & 07777);
        assert_true(st->size == (uint64_t)want.st_size);
        assert_int_equal(st->uid, want.st_uid);
        assert_int_equal(st->gid, want.st_gid);
        assert_true(st->mtime_ns ==
                    (int64_t)want.st_mtim.tv_sec * 1000000000 + want.st_mtim.tv_nsec);
}

static void test_stat(void **state)
{
        struct proto_fs_request *req;
        struct fsr r;

        expect_ready();
        make_file(at("file"), "hello", 0640);
        assert_int_equal(chown(at("file"), 123, 456), 0);
        assert_int_equal(symlink("file", at("link")), 0);
        assert_int_equal(mkdir(at("sub"), 01750), 0);
        assert_int_equal(chmod(at("sub"), 01750), 0);

        fs_ok(&r, req_new(PROTO_FS_OP_STAT, at("file")), NULL, 0);
        assert_true(r.resp.has_stat);
        assert_int_equal(r.resp.stat.type, PROTO_FS_TYPE_FILE);
        assert_stat_matches(&r.resp.stat, at("file"));
        assert_int_equal(r.resp.stat.uid, 123);
        assert_int_equal(r.resp.stat.size, 5);
        assert_string_equal(r.resp.stat.target, "");
        fsr_free(&r);

        fs_ok(&r, req_new(PROTO_FS_OP_STAT, at("link")), NULL, 0);
        assert_int_equal(r.resp.stat.type, PROTO_FS_TYPE_SYMLINK);
        assert_string_equal(r.resp.stat.target, "file");
        assert_stat_matches(&r.resp.stat, at("link"));
        fsr_free(&r);
        req = req_new(PROTO_FS_OP_STAT, at("link"));
        req->follow = true;
        fs_ok(&r, req, NULL, 0);
        assert_int_equal(r.resp.stat.type, PROTO_FS_TYPE_FILE);
        assert_int_equal(r.resp.stat.mode, 0640);
        fsr_free(&r);

        fs_ok(&r, req_new(PROTO_FS_OP_STAT, at("sub")), NULL, 0);
        assert_int_equal(r.resp.stat.type, PROTO_FS_TYPE_DIR);
        assert_int_equal(r.resp.stat.mode, 01750);
        fsr_free(&r);
        fs_ok(&r, req_new(PROTO_FS_OP_STAT, "/dev/null"), NULL, 0);
        assert_int_equal(r.resp.stat.type, PROTO_FS_TYPE_CHAR);
        fsr_free(&r);

        fs_fails(req_new(PROTO_FS_OP_STAT, at("missing")), ENOENT, at("missing"));
        fs_fails(req_new(PROTO_FS_OP_STAT, at("file/x")), ENOTDIR, at("file/x"));
        assert_int_equal(symlink("missing", at("dangling")), 0);
        req = req_new(PROTO_FS_OP_STAT, at("dangling"));
        req->follow = true;
        fs_fails(req, ENOENT, at("dangling"));
}

/* A non-root agent meets permissions: EACCES. */
static void test_permission_denied(void **state)
{
        expect_ready();
        assert_int_equal(mkdir(at("closed"), 0700), 0);
        make_file(at("closed/secret"), "s", 0600);
        fs_fails(req_new(PROTO_FS_OP_STAT, at("closed/secret")), EACCES, at("closed/secret"));
        fs_fails(req_new(PROTO_FS_OP_READ, at("closed/secret")), EACCES, at("closed/secret"));
        fs_fails(req_new(PROTO_FS_OP_WRITE, at("closed/new")), EACCES, at("closed/new"));
        fs_fails(req_new(PROTO_FS_OP_MKDIR, at("new")), EACCES, at("new"));
        fs_fails(req_new(PROTO_FS_OP_LIST, at("closed")), EACCES, at("closed"));
}

/* ---- list ---- */

static const struct proto_fs_stat *find_entry(const struct fsr *r, const char *name)
{
        for (size_t i = 0; i < r->n_entries; i++)
                if (streq(r->entries[i].name, name))
                        return &r->entries[i];
        return NULL;
}

static void test_list(void **state)
{
        const struct proto_fs_stat *e;
        struct fsr r;

        expect_ready();
        make_file(at("a"), "123", 0600);
        assert_int_equal(mkdir(at("d"), 0711), 0);
        assert_int_equal(symlink("/etc/hostname", at("l")), 0);
        assert_int_equal(mkfifo(at("p"), 0644), 0);

        fs_ok(&r, req_new(PROTO_FS_OP_LIST, dir), NULL, 0);
        assert_int_equal(r.n_entries, 4);
        assert_int_equal(r.entry_frames, 1);
        assert_false(r.resp.truncated);
        e = find_entry(&r, "a");
        assert_non_null(e);
        assert_int_equal(e->type, PROTO_FS_TYPE_FILE);
        assert_stat_matches(e, at("a"));
        e = find_entry(&r, "d");
        assert_non_null(e);
        assert_int_equal(e->type, PROTO_FS_TYPE_DIR);
        assert_int_equal(e->mode, 0711);
        e = find_entry(&r, "l");
        assert_non_null(e);
        assert_int_equal(e->type, PROTO_FS_TYPE_SYMLINK);
        assert_string_equal(e->target, "/etc/hostname");
        e = find_entry(&r, "p");
        assert_non_null(e);
        assert_int_equal(e->type, PROTO_FS_TYPE_FIFO);
        fsr_free(&r);

        fs_ok(&r, req_new(PROTO_FS_OP_LIST, at("d")), NULL, 0); /* empty */
        assert_int_equal(r.n_entries, 0);
        assert_int_equal(r.entry_frames, 0);
        fsr_free(&r);

        fs_fails(req_new(PROTO_FS_OP_LIST, at("missing")), ENOENT, at("missing"));
        fs_fails(req_new(PROTO_FS_OP_LIST, at("a")), ENOTDIR, at("a"));
}

/* A large directory comes in several frames, each entry once. */
static void test_list_large(void **state)
{
        const size_t n = 3000;
        char name[32];
        struct fsr r;
        bool *seen = calloc(n, sizeof(bool));

        expect_ready();
        assert_non_null(seen);
        for (size_t i = 0; i < n; i++) {
                snprintf(name, sizeof(name), "f%05zu", i);
                make_file(at(name), "", 0644);
        }
        fs_ok(&r, req_new(PROTO_FS_OP_LIST, dir), NULL, 0);
        assert_int_equal(r.n_entries, n);
        assert_true(r.entry_frames >= n / PROTO_FS_BATCH);
        for (size_t i = 0; i < n; i++) {
                size_t k = (size_t)atoi(r.entries[i].name + 1);

                assert_true(k < n);
                assert_false(seen[k]);
                seen[k] = true;
        }
        fsr_free(&r);
        free(seen);
}

/* ---- read ---- */

static void test_read(void **state)
{
        struct fsr r;

        expect_ready();
        make_file(at("f"), "some content\n", 0751);
        fs_ok(&r, req_new(PROTO_FS_OP_READ, at("f")), NULL, 0);
        assert_int_equal(r.n_entries, 1); /* the stat comes first */
        assert_string_equal(r.entries[0].name, "f");
        assert_int_equal(r.entries[0].type, PROTO_FS_TYPE_FILE);
        assert_int_equal(r.entries[0].mode, 0751);
        assert_int_equal(r.entries[0].size, 13);
        assert_string_equal(r.data.data, "some content\n");
        fsr_free(&r);

        make_file(at("empty"), "", 0600);
        fs_ok(&r, req_new(PROTO_FS_OP_READ, at("empty")), NULL, 0);
        assert_int_equal(r.n_entries, 1);
        assert_int_equal(r.data.len, 0);
        fsr_free(&r);

        /* through a symlink */
        assert_int_equal(symlink("f", at("l")), 0);
        fs_ok(&r, req_new(PROTO_FS_OP_READ, at("l")), NULL, 0);
        assert_string_equal(r.data.data, "some content\n");
        fsr_free(&r);

        fs_fails(req_new(PROTO_FS_OP_READ, at("missing")), ENOENT, at("missing"));
        fs_fails(req_new(PROTO_FS_OP_READ, dir), EISDIR, dir);
        /* a FIFO without a writer must not block the helper */
        assert_int_equal(mkfifo(at("fifo"), 0644), 0);
        fs_fails(req_new(PROTO_FS_OP_READ, at("fifo")), EINVAL, at("fifo"));
}

/*
 * A reader that does not acknowledge gets exactly one window, then nothing
 * until it acknowledges; meanwhile the agent serves everything else.
 */
static void test_read_window(void **state)
{
        static const uint8_t zero[PROTO_DATA_CHUNK];
        const size_t size = 4 * PROTO_FS_WINDOW;
        struct fsr r = {.id = 20}, other;
        struct proto_exec_request ex = {0};
        char *argv[] = {"echo", "hi", NULL};
        bool echoed = false, exited = false;
        int fd;

        expect_ready();
        fd = open(at("big"), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        for (size_t off = 0; off < size; off += sizeof(zero))
                assert_int_equal(write_all(fd, zero, sizeof(zero)), 0);
        close(fd);

        send_req(20, req_new(PROTO_FS_OP_READ, at("big")));
        while (r.unacked < PROTO_FS_WINDOW)
                fsr_pump(&r);
        assert_int_equal(r.unacked, PROTO_FS_WINDOW);

        /* the stalled read blocks nobody: a stat and a command run through */
        fs_ok(&other, req_new(PROTO_FS_OP_STAT, dir), NULL, 0);
        fsr_free(&other);
        ex.argv = argv;
        ex.argc = 2;
        assert_int_equal(proto_encode_exec_request(&A.out, 21, &ex), 0);
        send_out();
        while (!exited) {
                struct proto_msg m;
                struct proto_data d;

                expect_msg(&m);
                if (m.id == 20)
                        fail_msg("%s beyond the window", m.type_name);
                assert_int_equal(m.id, 21);
                if (m.type == PROTO_EXEC_STDOUT) {
                        assert_int_equal(proto_decode_data(&m, &d), 0);
                        echoed = d.len == 3 && memcmp(d.data, "hi\n", 3) == 0;
                }
                exited = m.type == PROTO_EXEC_EXITED;
        }
        assert_true(echoed);
        sync_ping(22);
        assert_int_equal(r.unacked, PROTO_FS_WINDOW);

        /* acknowledging half lets exactly half in */
        send_ack(20, PROTO_FS_WINDOW / 2);
        r.unacked -= PROTO_FS_WINDOW / 2;
        while (r.unacked < PROTO_FS_WINDOW)
                fsr_pump(&r);
        r.auto_ack = true;
        send_ack(20, r.unacked);
        r.unacked = 0;
        fsr_wait(&r);
        assert_int_equal(r.resp.err, 0);
        assert_int_equal(r.data.len, size);
        fsr_free(&r);
}

/* ---- write ---- */

static void test_write(void **state)
{
        struct proto_fs_request *req;
        struct stat st;
        size_t len;
        char *text;
        struct fsr r;

        expect_ready();
        req = req_new(PROTO_FS_OP_WRITE, at("new"));
        req->mode = 0640;
        fs_ok(&r, req, "hello", 5);
        assert_int_equal(r.acked, 5);
        fsr_free(&r);
        text = slurp(at("new"), &len);
        assert_string_equal(text, "hello");
        free(text);
        assert_int_equal(stat(at("new"), &st), 0);
        assert_int_equal(st.st_mode & 07777, 0640);

        /* replaced, with the new mode (set-id bits too) */
        req = req_new(PROTO_FS_OP_WRITE, at("new"));
        req->mode = 04755;
        fs_ok(&r, req, "bye", 3);
        fsr_free(&r);
        text = slurp(at("new"), &len);
        assert_string_equal(text, "bye");
        free(text);
        assert_int_equal(stat(at("new"), &st), 0);
        assert_int_equal(st.st_mode & 07777, 04755);

        /* empty */
        fs_ok(&r, req_new(PROTO_FS_OP_WRITE, at("empty")), NULL, 0);
        fsr_free(&r);
        assert_int_equal(stat(at("empty"), &st), 0);
        assert_int_equal(st.st_size, 0);

        /* a symlink at the path is replaced, not followed */
        make_file(at("target"), "keep", 0644);
        assert_int_equal(symlink("target", at("link")), 0);
        fs_ok(&r, req_new(PROTO_FS_OP_WRITE, at("link")), "data", 4);
        fsr_free(&r);
        assert_int_equal(lstat(at("link"), &st), 0);
        assert_true(S_ISREG(st.st_mode));
        text = slurp(at("target"), &len);
        assert_string_equal(text, "keep");
        free(text);

        /* exclusive */
        req = req_new(PROTO_FS_OP_WRITE, at("new"));
        req->exclusive = true;
        fs_fails(req, EEXIST, at("new"));
        text = slurp(at("new"), &len);
        assert_string_equal(text, "bye");
        free(text);
        req = req_new(PROTO_FS_OP_WRITE, at("fresh"));
        req->exclusive = true;
        fs_ok(&r, req, "1", 1);
        fsr_free(&r);
        assert_int_equal(access(at("fresh"), F_OK), 0);

        fs_fails(req_new(PROTO_FS_OP_WRITE, at("nodir/x")), ENOENT, at("nodir"));
        fs_fails(req_new(PROTO_FS_OP_WRITE, at("new/x")), ENOTDIR, at("new"));
        assert_int_equal(mkdir(at("d"), 0755), 0);
        fs_fails(req_new(PROTO_FS_OP_WRITE, at("d")), EISDIR, at("d"));
        fs_fails(req_new(PROTO_FS_OP_WRITE, at("d/")), EISDIR, at("d/"));
        assert_int_equal(count_prefixed(dir, ".msb-write-"), 0);
}

/* Generates the bytes of the big file: a xorshift stream. */
static void fill(uint8_t *buf, size_t len, uint64_t *seed)
{
        for (size_t i = 0; i < len; i += 8) {
                uint64_t x = *seed;

                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *seed = x;
                memcpy(buf + i, &x, MIN((size_t)8, len - i));
        }
}

/* 100 MB written and read back through the windows, compared byte by byte
 * with the generator (stronger than comparing digests). */
static void test_big_round_trip(void **state)
{
        static uint8_t chunk[PROTO_DATA_CHUNK], want[PROTO_DATA_CHUNK];
        uint64_t seed = 0x9e3779b97f4a7c15ull, check = seed;
        size_t sent = 0, got = 0;
        struct fsr r = {.id = 30};
        struct stat st;

        expect_ready();
        send_req(30, req_new(PROTO_FS_OP_WRITE, at("big")));
        while (sent < BIG_FILE) {
                size_t n = MIN((size_t)PROTO_DATA_CHUNK, BIG_FILE - sent);

                if (sent + n - r.acked > PROTO_FS_WINDOW) {
                        fsr_pump(&r);
                        continue;
                }
                fill(chunk, n, &seed);
                send_data(30, chunk, n);
                sent += n;
        }
        send_data(30, "", 0);
        fsr_wait(&r);
        assert_int_equal(r.resp.err, 0);
        assert_int_equal(r.acked, BIG_FILE);
        assert_int_equal(stat(at("big"), &st), 0);
        assert_int_equal(st.st_size, BIG_FILE);
        fsr_free(&r);

        r = (struct fsr){.id = 31};
        send_req(31, req_new(PROTO_FS_OP_READ, at("big")));
        while (!r.done) {
                struct proto_msg m;
                struct proto_data d;

                expect_msg(&m);
                if (m.type != PROTO_FS_DATA) {
                        fsr_take(&r, &m);
                        continue;
                }
                assert_int_equal(proto_decode_data(&m, &d), 0);
                fill(want, d.len, &check);
                assert_memory_equal(d.data, want, d.len);
                got += d.len;
                send_ack(31, d.len);
        }
        assert_int_equal(r.resp.err, 0);
        assert_int_equal(r.n_entries, 1);
        assert_int_equal(r.entries[0].size, BIG_FILE);
        assert_int_equal(got, BIG_FILE);
        fsr_free(&r);
}

/* Sends a write of path and a window of data, and waits until the agent
 * took enough of it that the helper must have its temporary file. */
static void start_write(struct fsr *r, uint32_t id, const char *path)
{
        static const uint8_t zero[PROTO_DATA_CHUNK];

        *r = (struct fsr){.id = id};
        send_req(id, req_new(PROTO_FS_OP_WRITE, path));
        for (size_t i = 0; i < PROTO_FS_WINDOW / sizeof(zero); i++)
                send_data(id, zero, sizeof(zero));
        /* more than the data socket holds (10 messages) acknowledged: the
         * helper has been reading */
        while (r->acked < 11 * sizeof(zero))
                fsr_pump(r);
        assert_int_equal(count_prefixed(dir, ".msb-write-"), 1);
}

/* The relay reports the client gone mid-write: nothing is left, and the
 * session id is free at once. */
static void test_write_disconnected(void **state)
{
        struct proto_relay_disconnected d = {.id_start = 40, .id_end = 41};
        struct fsr r;

        expect_ready();
        start_write(&r, 40, at("x"));
        assert_int_equal(proto_encode_relay_disconnected(&A.out, &d), 0);
        send_out();
        sync_ping(1);
        wait_helpers();
        assert_int_equal(count_entries(dir), 0);
        fsr_free(&r);
        fs_run(&r, 40, req_new(PROTO_FS_OP_WRITE, at("x")), "ok", 2);
        assert_int_equal(r.resp.err, 0);
        fsr_free(&r);
        assert_int_equal(count_entries(dir), 1);
}

/* core.fs.cancel mid-write: ECANCELED, and nothing is left. */
static void test_write_cancelled(void **state)
{
        struct fsr r;

        expect_ready();
        start_write(&r, 41, at("x"));
        assert_int_equal(proto_encode_empty(&A.out, 41, 0, PROTO_FS_CANCEL), 0);
        send_out();
        fsr_wait(&r);
        assert_int_equal(r.resp.err, ECANCELED);
        wait_helpers();
        assert_int_equal(count_entries(dir), 0);
        fsr_free(&r);
}

/* The host closes the stream mid-write: the agent ends, nothing is left. */
static void test_write_host_gone(void **state)
{
        struct fsr r;

        expect_ready();
        start_write(&r, 42, at("x"));
        close(A.fd);
        A.fd = -1;
        agent_wait_exit(NULL);
        assert_int_equal(count_entries(dir), 0);
        fsr_free(&r);
}

/* Data beyond the window ends the session; nothing is left. */
static void test_write_window_violation(void **state)
{
        static const uint8_t zero[PROTO_DATA_CHUNK];
        struct fsr r = {.id = 43};
        char stat[256], path[64];
        pid_t helper = 0;

        expect_ready();
        send_req(43, req_new(PROTO_FS_OP_WRITE, at("x")));
        sync_ping(1);
        /* a stopped helper takes nothing: the data must pile up in the agent */
        assert_int_equal(helpers(&helper), 1);
        assert_int_equal(kill(helper, SIGSTOP), 0);
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)helper);
        do {
                int fd = open(path, O_RDONLY | O_CLOEXEC);
                ssize_t n = read(fd, stat, sizeof(stat) - 1);

                close(fd);
                assert_true(n > 0);
                stat[n] = '\0';
        } while (!strstr(stat, ") T "));
        for (size_t i = 0; i < 4 * PROTO_FS_WINDOW / sizeof(zero); i++)
                assert_int_equal(proto_encode_data(&A.out, 43, PROTO_FS_DATA, zero, sizeof(zero)),
                                 0);
        send_out();
        while (!r.done)
                fsr_pump(&r);
        assert_true(r.failed);
        assert_string_equal(r.error.kind, PROTO_ERR_BUSY);
        sync_ping_with(44, nothing, NULL);
        assert_int_equal(kill(helper, SIGCONT), 0);
        wait_helpers();
        assert_int_equal(count_entries(dir), 0);
        fsr_free(&r);
}

/* ENOSPC on a small tmpfs; the helper removes its file before it answers. */
static void test_write_full_disk(void **state)
{
        static uint8_t data[2u << 20];
        struct fsr r;

        expect_ready();
        if (mount("tmpfs", dir, "tmpfs", 0, "size=1m,mode=0755") < 0) {
                print_message("cannot mount a tmpfs (%s): skipping\n", strerror(errno));
                skip();
        }
        fs_run(&r, 45, req_new(PROTO_FS_OP_WRITE, at("huge")), data, sizeof(data));
        assert_int_equal(r.resp.err, ENOSPC);
        assert_string_equal(r.resp.path, at("huge"));
        assert_int_equal(count_entries(dir), 0);
        fsr_free(&r);
        sync_ping_with(46, nothing, NULL);
        wait_helpers();
        assert_int_equal(umount(dir), 0);
}

/* ---- the rest ---- */

static void test_mkdir(void **state)
{
        struct proto_fs_request *req;
        struct stat st;
        struct fsr r;

        expect_ready();
        req = req_new(PROTO_FS_OP_MKDIR, at("d"));
        req->mode = 02750;
        fs_ok(&r, req, NULL, 0);
        fsr_free(&r);
        assert_int_equal(stat(at("d"), &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 02750);

        fs_fails(req_new(PROTO_FS_OP_MKDIR, at("d")), EEXIST, at("d"));
        fs_fails(req_new(PROTO_FS_OP_MKDIR, at("a/b/c")), ENOENT, at("a/b/c"));
        req = req_new(PROTO_FS_OP_MKDIR, at("a/b/c"));
        req->parents = true;
        req->mode = 0700;
        fs_ok(&r, req, NULL, 0);
        fsr_free(&r);
        assert_int_equal(stat(at("a/b"), &st), 0);
        assert_int_equal(st.st_mode & 07777, 0755);
        assert_int_equal(stat(at("a/b/c"), &st), 0);
        assert_int_equal(st.st_mode & 07777, 0700);
        /* with parents, an existing directory is fine and keeps its mode */
        req = req_new(PROTO_FS_OP_MKDIR, at("a/b/c"));
        req->parents = true;
        fs_ok(&r, req, NULL, 0);
        fsr_free(&r);
        assert_int_equal(stat(at("a/b/c"), &st), 0);
        assert_int_equal(st.st_mode & 07777, 0700);
        make_file(at("f"), "", 0644);
        req = req_new(PROTO_FS_OP_MKDIR, at("f/sub"));
        req->parents = true;
        fs_fails(req, ENOTDIR, at("f"));
}

static void test_remove(void **state)
{
        char outside[] = "/tmp/msb-agent-fs-out-XXXXXX";
        struct proto_fs_request *req;
        struct fsr r;

        expect_ready();
        assert_non_null(mkdtemp(outside));
        make_file(at("f"), "", 0644);
        fs_ok(&r, req_new(PROTO_FS_OP_REMOVE, at("f")), NULL, 0);
        fsr_free(&r);
        assert_int_equal(access(at("f"), F_OK), -1);

        assert_int_equal(mkdir(at("empty"), 0755), 0);
        fs_ok(&r, req_new(PROTO_FS_OP_REMOVE, at("empty")), NULL, 0);
        fsr_free(&r);
        assert_int_equal(access(at("empty"), F_OK), -1);

        /* a tree with symlinks leading out of it */
        assert_int_equal(mkdir(at("t"), 0755), 0);
        assert_int_equal(mkdir(at("t/sub"), 0755), 0);
        make_file(at("t/sub/file"), "x", 0644);
        make_file(at("t/ro"), "x", 0444);
        assert_int_equal(symlink(outside, at("t/out")), 0);
        assert_int_equal(symlink(outside, at("t/sub/out")), 0);
        {
                char keep[PROTO_FS_PATH_MAX];

                snprintf(keep, sizeof(keep), "%s/keep", outside);
                make_file(keep, "k", 0644);
        }
        fs_fails(req_new(PROTO_FS_OP_REMOVE, at("t")), ENOTEMPTY, at("t"));
        req = req_new(PROTO_FS_OP_REMOVE, at("t"));
        req->recursive = true;
        fs_ok(&r, req, NULL, 0);
        fsr_free(&r);
        assert_int_equal(access(at("t"), F_OK), -1);
        assert_int_equal(count_entries(outside), 1);

        /* a link to a directory, named with a trailing slash: the link goes */
        assert_int_equal(symlink(outside, at("dirlink")), 0);
        req = req_new(PROTO_FS_OP_REMOVE, at("dirlink/"));
        req->recursive = true;
        fs_ok(&r, req, NULL, 0);
        fsr_free(&r);
        assert_int_equal(access(at("dirlink"), F_OK), -1);
        assert_int_equal(count_entries(outside), 1);

        fs_fails(req_new(PROTO_FS_OP_REMOVE, at("missing")), ENOENT, at("missing"));
        req = req_new(PROTO_FS_OP_REMOVE, "/");
        req->recursive = true;
        fs_fails(req, EBUSY, "/");
        assert_int_equal(rm_rf(outside), 0);
}

static void test_rename_chmod_symlink(void **state)
{
        struct proto_fs_request *req;
        struct stat st;
        char target[64];
        struct fsr r;
        ssize_t n;

        expect_ready();
        make_file(at("a"), "A", 0644);
        make_file(at("b"), "B", 0644);
        req = req_new(PROTO_FS_OP_RENAME, at("a"));
        strcpy(req->target, at("b"));
        fs_ok(&r, req, NULL, 0);
        fsr_free(&r);
        assert_int_equal(access(at("a"), F_OK), -1);
        assert_int_equal(count_entries(dir), 1);
        req = req_new(PROTO_FS_OP_RENAME, at("missing"));
        strcpy(req->target, at("c"));
        fs_fails(req, ENOENT, at("missing"));
        req = req_new(PROTO_FS_OP_RENAME, at("b"));
        strcpy(req->target, at("nodir/c"));
        fs_fails(req, ENOENT, at("b"));

        req = req_new(PROTO_FS_OP_CHMOD, at("b"));
        req->mode = 06711;
        fs_ok(&r, req, NULL, 0);
        fsr_free(&r);
        assert_int_equal(stat(at("b"), &st), 0);
        assert_int_equal(st.st_mode & 07777, 06711);
        req = req_new(PROTO_FS_OP_CHMOD, at("missing"));
        req->mode = 0600;
        fs_fails(req, ENOENT, at("missing"));

        req = req_new(PROTO_FS_OP_SYMLINK, at("l"));
        strcpy(req->target, "../some/where");
        fs_ok(&r, req, NULL, 0);
        fsr_free(&r);
        n = readlink(at("l"), target, sizeof(target) - 1);
        assert_true(n > 0);
        target[n] = '\0';
        assert_string_equal(target, "../some/where");
        fs_fails(req, EEXIST, at("l"));
}

/* Messages that do not fit the session they name. */
static void test_protocol_misuse(void **state)
{
        static const uint8_t zero[16];
        struct proto_error e;
        struct fsr r = {.id = 50};
        int fd;

        expect_ready();
        /* a file bigger than the window: its reads stall, unacknowledged */
        fd = open(at("f"), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, 2 * PROTO_FS_WINDOW), 0);
        close(fd);

        /* data for a read: the session ends */
        send_req(50, req_new(PROTO_FS_OP_READ, at("f")));
        while (r.unacked < PROTO_FS_WINDOW)
                fsr_pump(&r);
        send_data(50, zero, sizeof(zero));
        fsr_wait(&r);
        assert_true(r.failed);
        assert_string_equal(r.error.kind, PROTO_ERR_MALFORMED);
        fsr_free(&r);

        /* an acknowledgement of more than was sent: the session ends */
        r = (struct fsr){.id = 51};
        send_req(51, req_new(PROTO_FS_OP_READ, at("f")));
        while (r.unacked < PROTO_FS_WINDOW)
                fsr_pump(&r);
        send_ack(51, PROTO_FS_WINDOW + 1);
        fsr_wait(&r);
        assert_true(r.failed);
        assert_string_equal(r.error.kind, PROTO_ERR_MALFORMED);
        fsr_free(&r);
        sync_ping_with(49, nothing, NULL); /* nothing more for either */

        /* a command's message to a file session */
        r = (struct fsr){.id = 52};
        send_req(52, req_new(PROTO_FS_OP_WRITE, at("g")));
        assert_int_equal(proto_encode_data(&A.out, 52, PROTO_EXEC_STDIN, "x", 1), 0);
        send_out();
        expect_error(52, &e);
        assert_string_equal(e.kind, PROTO_ERR_INVALID_SESSION);
        send_data(52, "", 0);
        fsr_wait(&r);
        assert_int_equal(r.resp.err, 0);
        fsr_free(&r);

        /* a relative path is malformed */
        {
                size_t start = frame_begin(&A.out, 53, FRAME_SESSION_START);

                cbor_put_map(&A.out, 3);
                cbor_put_str(&A.out, "v");
                cbor_put_uint(&A.out, PROTO_VERSION);
                cbor_put_str(&A.out, "t");
                cbor_put_str(&A.out, "core.fs.request");
                cbor_put_str(&A.out, "p");
                cbor_put_map(&A.out, 2);
                cbor_put_str(&A.out, "op");
                cbor_put_str(&A.out, "stat");
                cbor_put_str(&A.out, "path");
                cbor_put_str(&A.out, "etc/passwd");
                assert_int_equal(frame_end(&A.out, start), 0);
                send_out();
        }
        expect_error(53, &e);
        assert_string_equal(e.kind, PROTO_ERR_MALFORMED);
        sync_ping(54);
}

int main(void)
{
#define T(f)  cmocka_unit_test_setup_teardown(f, fs_setup, fs_teardown)
#define TN(f) cmocka_unit_test_setup_teardown(f, fs_setup_nobody, fs_teardown)
        const struct CMUnitTest tests[] = {
                T(test_stat),
                T(test_list),
                T(test_list_large),
                T(test_read),
                T(test_read_window),
                T(test_write),
                T(test_big_round_trip),
                T(test_write_disconnected),
                T(test_write_cancelled),
                T(test_write_host_gone),
                T(test_write_window_violation),
                T(test_write_full_disk),
                T(test_mkdir),
                T(test_remove),
                T(test_rename_chmod_symlink),
                T(test_protocol_misuse),
                TN(test_permission_denied),
        };
#undef T
#undef TN

        signal(SIGPIPE, SIG_IGN);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
