/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of the file calls of the public API (lib/fs.c) without a VM.
 *
 * The seam: lib/fs.c reaches the sandbox only through sandbox_chan(),
 * sandbox_fail_channel() and msb_sandbox_name(); this file defines those
 * over its own msb_sandbox, a channel to the real msb-agentd serving a
 * socketpair (--serve-fd, MSB_AGENTD), so each call runs end to end against
 * the host's own file system: the "guest" paths are scratch directories
 * here. A forked fake agent plays a hostile guest for the copy-out checks.
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chan.h"
#include "error.h"
#include "internal.h"
#include "lib/core/util.h"

struct msb_sandbox {
        struct chan *chan;
        pid_t agent;
};

struct chan *sandbox_chan(msb_sandbox *sb)
{
        return sb->chan;
}

int sandbox_fail_channel(msb_sandbox *sb, int r)
{
        return error_set(r == -EBADMSG ? MSB_ERR_PROTOCOL : MSB_ERR_VM_FAILED, r,
                         "agent channel: %s", strerror(-r));
}

const char *msb_sandbox_name(const msb_sandbox *sb)
{
        return "sb";
}

static msb_sandbox SB;
static char guest[64]; /* the scratch directory the "guest" paths are in */
static char host[64];  /* the host side of copies */

/* Starts argv[0] with the other end of a socketpair as fd 3. */
static void start(void (*child)(int fd))
{
        int sv[2];

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        SB.agent = fork();
        assert_true(SB.agent >= 0);
        if (SB.agent == 0) {
                close(sv[0]);
                child(sv[1]);
                _exit(0);
        }
        close(sv[1]);
        assert_int_equal(chan_new(sv[0], &SB.chan), 0);
}

static void real_agent(int fd)
{
        const char *bin = getenv("MSB_AGENTD");

        if (!bin || dup2(fd, 3) < 0)
                _exit(127);
        execl(bin, "msb-agentd", "--serve-fd", "3", (char *)NULL);
        _exit(127);
}

static int setup_dirs(void)
{
        strcpy(guest, "/tmp/msb-fs-guest-XXXXXX");
        strcpy(host, "/tmp/msb-fs-host-XXXXXX");
        assert_non_null(mkdtemp(guest));
        assert_non_null(mkdtemp(host));
        return 0;
}

static int setup(void **state)
{
        setup_dirs();
        start(real_agent);
        return 0;
}

static int teardown(void **state)
{
        int status;

        chan_free(SB.chan); /* EOF: the agent ends */
        assert_int_equal(waitpid(SB.agent, &status, 0), SB.agent);
        assert_int_equal(rm_rf(guest), 0);
        assert_int_equal(rm_rf(host), 0);
        return 0;
}

/* dir/name in a rotating static buffer. */
static const char *in(const char *dir, const char *name)
{
        static char bufs[8][4096];
        static int next;
        char *b = bufs[next++ % 8];

        snprintf(b, 4096, "%s/%s", dir, name);
        return b;
}

#define G(name) in(guest, name)
#define H(name) in(host, name)

static void make_file(const char *path, const char *text, mode_t mode)
{
        assert_int_equal(write_file(path, text, mode), 0);
        assert_int_equal(chmod(path, mode), 0);
}

static char *slurp(const char *path)
{
        size_t len;
        char *data;

        assert_int_equal(read_file(path, 1u << 20, &data, &len), 0);
        return data;
}

static void assert_content(const char *path, const char *text)
{
        char *data = slurp(path);

        assert_string_equal(data, text);
        free(data);
}

static mode_t mode_of(const char *path)
{
        struct stat st;

        assert_int_equal(lstat(path, &st), 0);
        return st.st_mode & 07777;
}

/* A failure: return value, kind and a piece of the message. */
static void assert_error(int r, int want, msb_error_kind kind, const char *text)
{
        if (r != want)
                fail_msg("got %d (%s), want %d", r, msb_errmsg(), want);
        assert_int_equal(msb_errkind(), kind);
        if (!strstr(msb_errmsg(), text))
                fail_msg("\"%s\" lacks \"%s\"", msb_errmsg(), text);
}

/* ---- single calls ---- */

static void test_stat_and_list(void **state)
{
        msb_fs_entry e, *v;
        size_t n;

        make_file(G("b"), "12345", 0640);
        assert_int_equal(mkdir(G("a"), 0700), 0);
        assert_int_equal(symlink("b", G("c")), 0);

        assert_int_equal(msb_fs_stat(&SB, G("b"), 0, &e), 0);
        assert_string_equal(e.name, "b");
        assert_int_equal(e.type, MSB_FS_FILE);
        assert_int_equal(e.mode, 0640);
        assert_int_equal(e.size, 5);
        assert_null(e.target);
        msb_fs_entry_clear(&e);
        assert_int_equal(msb_fs_stat(&SB, G("c"), 0, &e), 0);
        assert_int_equal(e.type, MSB_FS_SYMLINK);
        assert_string_equal(e.target, "b");
        msb_fs_entry_clear(&e);
        assert_int_equal(msb_fs_stat(&SB, G("c"), 1, &e), 0);
        assert_int_equal(e.type, MSB_FS_FILE);
        msb_fs_entry_clear(&e);
        msb_fs_entry_clear(NULL);

        assert_int_equal(msb_fs_list(&SB, guest, &v, &n), 0);
        assert_int_equal(n, 3);
        assert_string_equal(v[0].name, "a"); /* sorted */
        assert_int_equal(v[0].type, MSB_FS_DIR);
        assert_string_equal(v[1].name, "b");
        assert_string_equal(v[2].name, "c");
        assert_string_equal(v[2].target, "b");
        msb_fs_list_free(v, n);

        assert_error(msb_fs_stat(&SB, G("nope"), 0, &e), -ENOENT, MSB_ERR_SYSTEM, "stat sb:");
        assert_error(msb_fs_list(&SB, G("b"), &v, &n), -ENOTDIR, MSB_ERR_SYSTEM, G("b"));
        assert_error(msb_fs_stat(&SB, "relative", 0, &e), -EINVAL, MSB_ERR_INVALID_ARGUMENT,
                     "not absolute");
        {
                char *longp = malloc(5000);

                memset(longp, 'a', 4999);
                longp[0] = '/';
                longp[4999] = '\0';
                assert_error(msb_fs_stat(&SB, longp, 0, &e), -ENAMETOOLONG,
                             MSB_ERR_INVALID_ARGUMENT, "longer");
                free(longp);
        }
}

static void test_files(void **state)
{
        uint8_t *data;
        size_t len;

        assert_int_equal(msb_fs_write_file(&SB, G("f"), "hello", 5, 0604), 0);
        assert_content(G("f"), "hello");
        assert_int_equal(mode_of(G("f")), 0604);
        assert_int_equal(msb_fs_read_file(&SB, G("f"), 0, &data, &len), 0);
        assert_int_equal(len, 5);
        assert_memory_equal(data, "hello", 5);
        free(data);
        assert_error(msb_fs_read_file(&SB, G("f"), 4, &data, &len), -EFBIG, MSB_ERR_SYSTEM,
                     "larger than 4");
        assert_int_equal(msb_fs_write_file(&SB, G("empty"), NULL, 0, 0600), 0);
        assert_int_equal(msb_fs_read_file(&SB, G("empty"), 0, &data, &len), 0);
        assert_non_null(data);
        assert_int_equal(len, 0);
        free(data);

        assert_error(msb_fs_write_file(&SB, G("no/f"), "x", 1, 0644), -ENOENT, MSB_ERR_SYSTEM,
                     G("no"));
        assert_error(msb_fs_write_file(&SB, G("f"), "x", 1, 010000), -EINVAL,
                     MSB_ERR_INVALID_ARGUMENT, "mode");
        assert_error(msb_fs_read_file(&SB, guest, 0, &data, &len), -EISDIR, MSB_ERR_SYSTEM, guest);

        assert_int_equal(msb_fs_mkdir(&SB, G("d/e/f"), 0750, 1), 0);
        assert_int_equal(mode_of(G("d/e/f")), 0750);
        assert_error(msb_fs_mkdir(&SB, G("d"), 0755, 0), -EEXIST, MSB_ERR_SYSTEM, G("d"));
        assert_int_equal(msb_fs_chmod(&SB, G("d"), 0711), 0);
        assert_int_equal(mode_of(G("d")), 0711);
        assert_int_equal(msb_fs_rename(&SB, G("f"), G("d/g")), 0);
        assert_int_equal(access(G("d/g"), F_OK), 0);
        assert_int_equal(msb_fs_symlink(&SB, "../x", G("l")), 0);
        assert_error(msb_fs_symlink(&SB, "../x", G("l")), -EEXIST, MSB_ERR_SYSTEM, G("l"));
        assert_error(msb_fs_remove(&SB, G("d"), 0), -ENOTEMPTY, MSB_ERR_SYSTEM, G("d"));
        assert_int_equal(msb_fs_remove(&SB, G("d"), 1), 0);
        assert_int_equal(msb_fs_remove(&SB, G("l"), 0), 0);
        assert_int_equal(access(G("d"), F_OK), -1);
        assert_error(msb_fs_remove(&SB, G("d"), 1), -ENOENT, MSB_ERR_SYSTEM, G("d"));
}

/* A file larger than the window and the chunk, both ways, via the copies. */
static void test_big_file(void **state)
{
        const size_t size = 20u << 20;
        uint8_t *data = malloc(size), *back;
        size_t len;
        int fd;

        assert_non_null(data);
        for (size_t i = 0; i < size; i++)
                data[i] = (uint8_t)(i * 131 + (i >> 11));
        fd = open(H("big"), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write_all(fd, data, size), 0);
        close(fd);
        assert_int_equal(msb_fs_copy_in(&SB, H("big"), G("big")), 0);
        assert_int_equal(msb_fs_read_file(&SB, G("big"), 0, &back, &len), 0);
        assert_int_equal(len, size);
        assert_memory_equal(back, data, size);
        free(back);
        assert_int_equal(msb_fs_copy_out(&SB, G("big"), H("again")), 0);
        fd = open(H("again"), O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        back = malloc(size + 1);
        assert_int_equal(read_full(fd, back, size + 1), (ssize_t)size);
        assert_memory_equal(back, data, size);
        close(fd);
        free(back);
        free(data);
}

/* ---- tree copies ---- */

static int no_dots(const struct dirent *de)
{
        return strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
}

/* b is a copy of a: names, types, contents, link targets; modes too, less
 * what strip removes. */
static void assert_same_tree(const char *a, const char *b, mode_t strip)
{
        struct dirent **na, **nb;
        int n = scandir(a, &na, no_dots, alphasort);

        assert_int_equal(scandir(b, &nb, no_dots, alphasort), n);
        for (int i = 0; i < n; i++) {
                char pa[4096], pb[4096], la[256], lb[256];
                struct stat sa, sb;

                assert_string_equal(na[i]->d_name, nb[i]->d_name);
                snprintf(pa, sizeof(pa), "%s/%s", a, na[i]->d_name);
                snprintf(pb, sizeof(pb), "%s/%s", b, nb[i]->d_name);
                assert_int_equal(lstat(pa, &sa), 0);
                assert_int_equal(lstat(pb, &sb), 0);
                assert_int_equal(sa.st_mode & S_IFMT, sb.st_mode & S_IFMT);
                if (S_ISLNK(sa.st_mode)) {
                        ssize_t ka = readlink(pa, la, sizeof(la)),
                                kb = readlink(pb, lb, sizeof(lb));

                        assert_int_equal(ka, kb);
                        assert_memory_equal(la, lb, (size_t)ka);
                } else {
                        assert_int_equal(sa.st_mode & 07777 & ~strip, sb.st_mode & 07777);
                }
                if (S_ISREG(sa.st_mode)) {
                        char *ca = slurp(pa), *cb = slurp(pb);

                        assert_string_equal(ca, cb);
                        free(ca);
                        free(cb);
                }
                if (S_ISDIR(sa.st_mode))
                        assert_same_tree(pa, pb, strip);
                free(na[i]);
                free(nb[i]);
        }
        free(na);
        free(nb);
}

/* base/t: files of several modes, a subdirectory, symlinks, an empty
 * directory, a FIFO (which copies skip). */
static void make_tree(const char *base, mode_t file_mode)
{
        assert_int_equal(mkdir(in(base, "t"), 0750), 0);
        make_file(in(base, "t/a"), "alpha", 0600);
        assert_int_equal(mkdir(in(base, "t/sub"), 0755), 0);
        make_file(in(base, "t/sub/b"), "#!/bin/sh\n", file_mode);
        assert_int_equal(symlink("a", in(base, "t/link")), 0);
        assert_int_equal(symlink("/nonexistent/far", in(base, "t/sub/dangling")), 0);
        assert_int_equal(mkdir(in(base, "t/empty"), 0700), 0);
        assert_int_equal(chmod(in(base, "t/empty"), 0700), 0);
}

static void test_copy_in(void **state)
{
        make_file(H("f"), "file", 0751);
        make_tree(host, 0755);
        assert_int_equal(mkfifo(H("t/fifo"), 0644), 0);

        /* a file: to a new name, into a directory, over a file */
        assert_int_equal(msb_fs_copy_in(&SB, H("f"), G("new")), 0);
        assert_int_equal(mode_of(G("new")), 0751);
        assert_int_equal(msb_fs_copy_in(&SB, H("f"), guest), 0);
        assert_int_equal(mode_of(G("f")), 0751);
        make_file(G("over"), "old", 0600);
        assert_int_equal(msb_fs_copy_in(&SB, H("f"), G("over")), 0);
        assert_content(G("over"), "file");

        /* a tree: to a new name, into a directory, its contents into one */
        assert_int_equal(msb_fs_copy_in(&SB, H("t"), G("copy")), 0);
        assert_int_equal(unlink(H("t/fifo")), 0);
        assert_same_tree(H("t"), G("copy"), 0);
        assert_int_equal(mode_of(G("copy")), 0750);
        assert_int_equal(mkdir(G("into"), 0755), 0);
        assert_int_equal(msb_fs_copy_in(&SB, H("t"), G("into")), 0);
        assert_same_tree(H("t"), G("into/t"), 0);
        assert_int_equal(mkdir(G("merge"), 0755), 0);
        make_file(G("merge/keep"), "k", 0644);
        assert_int_equal(msb_fs_copy_in(&SB, H("t/."), G("merge")), 0);
        assert_int_equal(unlink(G("merge/keep")), 0);
        assert_same_tree(H("t"), G("merge"), 0);
        assert_int_equal(mode_of(G("merge")), 0755); /* an existing target keeps its mode */
        /* a symlink as such */
        assert_int_equal(msb_fs_copy_in(&SB, H("t/link"), G("l")), 0);
        {
                struct stat st;

                assert_int_equal(lstat(G("l"), &st), 0);
                assert_true(S_ISLNK(st.st_mode));
        }

        /* refusals */
        assert_error(msb_fs_copy_in(&SB, H("f"), G("missing/x")), -ENOENT, MSB_ERR_SYSTEM,
                     "does not exist");
        assert_error(msb_fs_copy_in(&SB, H("f"), G("missing/")), -ENOENT, MSB_ERR_SYSTEM,
                     "does not exist");
        assert_error(msb_fs_copy_in(&SB, H("t"), G("new")), -ENOTDIR, MSB_ERR_SYSTEM,
                     "not a directory");
        assert_error(msb_fs_copy_in(&SB, H("nope"), G("x")), -ENOENT, MSB_ERR_SYSTEM, H("nope"));
        assert_error(msb_fs_copy_in(&SB, H("f"), "rel"), -EINVAL, MSB_ERR_INVALID_ARGUMENT,
                     "absolute");
}

static void test_copy_out(void **state)
{
        make_file(G("f"), "file", 04751);
        make_tree(guest, 06755);

        /* a file: set-id bits dropped */
        assert_int_equal(msb_fs_copy_out(&SB, G("f"), H("new")), 0);
        assert_int_equal(mode_of(H("new")), 0751);
        assert_int_equal(msb_fs_copy_out(&SB, G("f"), host), 0);
        assert_content(H("f"), "file");
        make_file(H("over"), "old", 0600);
        assert_int_equal(msb_fs_copy_out(&SB, G("f"), H("over")), 0);
        assert_content(H("over"), "file");

        /* a tree */
        assert_int_equal(msb_fs_copy_out(&SB, G("t"), H("copy")), 0);
        assert_same_tree(G("t"), H("copy"), 06000);
        assert_int_equal(mode_of(H("copy")), 0750);
        assert_int_equal(mkdir(H("into"), 0755), 0);
        assert_int_equal(msb_fs_copy_out(&SB, G("t"), H("into")), 0);
        assert_same_tree(G("t"), H("into/t"), 06000);
        assert_int_equal(mkdir(H("merge"), 0755), 0);
        assert_int_equal(msb_fs_copy_out(&SB, G("t/."), H("merge")), 0);
        assert_same_tree(G("t"), H("merge"), 06000);
        assert_int_equal(mode_of(H("merge")), 0755);

        /* refusals; no temporary file is left anywhere */
        assert_error(msb_fs_copy_out(&SB, G("f"), H("missing/x")), -ENOENT, MSB_ERR_SYSTEM,
                     "does not exist");
        assert_error(msb_fs_copy_out(&SB, G("t"), H("new")), -ENOTDIR, MSB_ERR_SYSTEM,
                     "not a directory");
        assert_error(msb_fs_copy_out(&SB, G("nope"), H("x")), -ENOENT, MSB_ERR_SYSTEM,
                     "sb:" /* the guest side */);
        {
                DIR *d = opendir(host);
                struct dirent *de;

                assert_non_null(d);
                while ((de = readdir(d)))
                        assert_null(strstr(de->d_name, ".msb-cp-"));
                closedir(d);
        }
}

/* ---- a hostile guest ---- */

static int scenario; /* what the fake agent lists in /x */

/* Answers core.fs.request as a guest whose /x is a directory holding what
 * scenario says; everything else is refused with EIO. */
static void fake_answer(struct cbor_buf *out, uint32_t id, const struct proto_fs_request *req)
{
        static struct proto_fs_response resp;
        size_t start;

        resp = (struct proto_fs_response){0};
        if (req->op == PROTO_FS_OP_STAT) {
                resp.has_stat = true;
                resp.stat.type = PROTO_FS_TYPE_DIR;
                resp.stat.mode = 0755;
        } else if (req->op == PROTO_FS_OP_LIST && streq(req->path, "/x")) {
                start = frame_begin(out, id, 0);
                cbor_put_map(out, 3);
                cbor_put_str(out, "v");
                cbor_put_uint(out, PROTO_VERSION);
                cbor_put_str(out, "t");
                cbor_put_str(out, "core.fs.entries");
                cbor_put_str(out, "p");
                cbor_put_map(out, 1);
                cbor_put_str(out, "entries");
                cbor_put_array(out, 2);
                cbor_put_map(out, 4); /* a: a symlink to the "guest" directory */
                cbor_put_str(out, "name");
                cbor_put_str(out, "a");
                cbor_put_str(out, "type");
                cbor_put_str(out, "symlink");
                cbor_put_str(out, "mode");
                cbor_put_uint(out, 0777);
                cbor_put_str(out, "target");
                cbor_put_str(out, guest);
                cbor_put_map(out, 3); /* then a directory of the same name, or ".." */
                cbor_put_str(out, "name");
                cbor_put_str(out, scenario == 0 ? "a" : "..");
                cbor_put_str(out, "type");
                cbor_put_str(out, "dir");
                cbor_put_str(out, "mode");
                cbor_put_uint(out, 0755);
                assert_int_equal(frame_end(out, start), 0);
        } else {
                resp.err = EIO;
        }
        assert_int_equal(proto_encode_fs_response(out, id, &resp), 0);
}

static void fake_agent(int fd)
{
        static struct proto_fs_request req;
        struct frame_reader fr;
        struct cbor_buf out;
        uint8_t buf[65536];
        struct proto_msg m;
        struct frame f;
        ssize_t n;

        frame_reader_init(&fr);
        cbor_buf_init(&out, 0);
        while ((n = read(fd, buf, sizeof(buf))) > 0) {
                if (frame_reader_feed(&fr, buf, (size_t)n) < 0)
                        _exit(1);
                while (frame_reader_next(&fr, &f) == 1) {
                        if (proto_decode(&f, &m) < 0 || m.type != PROTO_FS_REQUEST ||
                            proto_decode_fs_request(&m, &req) < 0)
                                continue;
                        fake_answer(&out, m.id, &req);
                        if (write_all(fd, out.data, out.len) < 0)
                                _exit(1);
                        cbor_buf_reset(&out);
                }
        }
        _exit(0);
}

static int setup_fake(void **state)
{
        setup_dirs();
        start(fake_agent);
        return 0;
}

/* A guest that lists a name twice (a symlink out, then a directory through
 * which files would follow) or lists ".." gets a protocol error before
 * anything is written, and nothing lands outside the destination. */
static void test_copy_out_hostile(void **state)
{
        for (scenario = 0; scenario < 2; scenario++) {
                const char *dst = scenario == 0 ? H("d0") : H("d1");
                DIR *d;
                struct dirent *de;

                assert_error(msb_fs_copy_out(&SB, "/x", dst), -EBADMSG, MSB_ERR_PROTOCOL, "sb:/x");
                d = opendir(guest);
                assert_non_null(d);
                while ((de = readdir(d)))
                        assert_true(streq(de->d_name, ".") || streq(de->d_name, ".."));
                closedir(d);
        }
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        const struct CMUnitTest tests[] = {
                T(test_stat_and_list),
                T(test_files),
                T(test_big_file),
                T(test_copy_in),
                T(test_copy_out),
                cmocka_unit_test_setup_teardown(test_copy_out_hostile, setup_fake, teardown),
        };
#undef T

        signal(SIGPIPE, SIG_IGN);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
