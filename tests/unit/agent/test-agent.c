/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of msb-agentd without a VM: each test starts the static agent with
 * --serve-fd over a socketpair (MSB_AGENTD names the binary) and speaks the
 * protocol to it with the host's codec, running the host's own /bin/sh,
 * cat, seq, stty... as the guest commands. Root runs them (user switching).
 *
 * Waits are on events (frames, pidfds), never sleeps; every read is bounded
 * by a generous poll timeout only so that a broken agent fails the test
 * instead of hanging it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "lib/core/util.h"

struct run {
        uint32_t id;
        bool started, done, failed;
        uint32_t pid;
        struct proto_exec_failed fail;
        struct proto_exec_exited exit;
        struct outbuf out, err;
        uint64_t acked;
        size_t max_chunk;
};

/* ---- exec helpers ---- */

struct req_opts {
        const char *const *env;
        const char *cwd;
        const char *user;
        bool tty, has_stdin, detached;
        uint16_t rows, cols;
        const struct proto_rlimit *rlimits;
        size_t n_rlimits;
};

static size_t strv_len(const char *const *v)
{
        size_t n = 0;

        while (v && v[n])
                n++;
        return n;
}

static void send_exec(uint32_t id, const char *const *argv, const struct req_opts *o)
{
        static const struct req_opts none;
        struct proto_exec_request req = {0};

        o = o ? o : &none;
        req.argv = (char **)argv;
        req.argc = strv_len(argv);
        req.env = (char **)o->env;
        req.envc = strv_len(o->env);
        req.cwd = (char *)o->cwd;
        req.user = (char *)o->user;
        req.tty = o->tty;
        req.has_stdin = o->has_stdin;
        req.detached = o->detached;
        req.rows = o->rows ? o->rows : 24;
        req.cols = o->cols ? o->cols : 80;
        for (size_t i = 0; i < o->n_rlimits; i++)
                req.rlimits[i] = o->rlimits[i];
        req.n_rlimits = o->n_rlimits;
        assert_int_equal(proto_encode_exec_request(&A.out, id, &req), 0);
        send_out();
}

static void send_stdin(uint32_t id, const void *data, size_t len)
{
        assert_int_equal(proto_encode_data(&A.out, id, PROTO_EXEC_STDIN, data, len), 0);
        send_out();
}

static void run_free(struct run *r)
{
        free(r->out.data);
        free(r->err.data);
        *r = (struct run){0};
}

/* Reads one message and files it under its run. */
static void pump(struct run *runs, size_t n)
{
        struct proto_msg m;
        struct proto_data d;
        struct proto_stdin_ack ack;
        struct proto_exec_started st;
        struct run *r = NULL;

        expect_msg(&m);
        for (size_t i = 0; i < n; i++)
                if (runs[i].id == m.id)
                        r = &runs[i];
        assert_non_null(r);
        assert_false(r->done);
        switch (m.type) {
        case PROTO_EXEC_STARTED:
                assert_false(r->started);
                assert_int_equal(proto_decode_exec_started(&m, &st), 0);
                r->started = true;
                r->pid = st.pid;
                break;
        case PROTO_EXEC_STDOUT:
        case PROTO_EXEC_STDERR:
                assert_true(r->started);
                assert_int_equal(proto_decode_data(&m, &d), 0);
                assert_true(d.len > 0 && d.len <= PROTO_DATA_CHUNK);
                r->max_chunk = MAX(r->max_chunk, d.len);
                append(m.type == PROTO_EXEC_STDOUT ? &r->out : &r->err, d.data, d.len);
                break;
        case PROTO_EXEC_STDIN_ACK:
                assert_int_equal(proto_decode_stdin_ack(&m, &ack), 0);
                r->acked += ack.bytes;
                break;
        case PROTO_EXEC_EXITED:
                assert_true(r->started);
                assert_true(m.flags & FRAME_TERMINAL);
                assert_int_equal(proto_decode_exec_exited(&m, &r->exit), 0);
                r->done = true;
                break;
        case PROTO_EXEC_FAILED:
                assert_false(r->started);
                assert_true(m.flags & FRAME_TERMINAL);
                assert_int_equal(proto_decode_exec_failed(&m, &r->fail), 0);
                r->failed = r->done = true;
                break;
        default:
                fail_msg("unexpected %s on %u", m.type_name, m.id);
        }
}

static void wait_started(struct run *r)
{
        while (!r->started && !r->done)
                pump(r, 1);
        assert_true(r->started);
}

static void wait_done(struct run *r)
{
        while (!r->done)
                pump(r, 1);
}

/* Runs argv to the end, feeding stdin_data within the window. */
static void run_cmd(struct run *r, uint32_t id, const char *const *argv, const struct req_opts *o,
                    const void *stdin_data, size_t stdin_len)
{
        size_t sent = 0;
        bool eof_sent = false;

        *r = (struct run){.id = id};
        send_exec(id, argv, o);
        while (!r->done) {
                if (o && o->has_stdin && !eof_sent) {
                        size_t room = PROTO_STDIN_WINDOW - (size_t)(sent - r->acked);
                        size_t n = MIN(MIN(room, stdin_len - sent), (size_t)PROTO_DATA_CHUNK);

                        assert_true(sent - r->acked <= PROTO_STDIN_WINDOW);
                        if (n > 0) {
                                send_stdin(id, (const uint8_t *)stdin_data + sent, n);
                                sent += n;
                                continue;
                        }
                        if (sent == stdin_len) {
                                send_stdin(id, "", 0);
                                eof_sent = true;
                                continue;
                        }
                }
                pump(r, 1);
        }
}

static void run_simple(struct run *r, const char *const *argv, const struct req_opts *o)
{
        run_cmd(r, 1, argv, o, NULL, 0);
}

static void assert_failed(const char *const *argv, const struct req_opts *o, const char *kind)
{
        struct run r;

        run_simple(&r, argv, o);
        assert_true(r.failed);
        assert_string_equal(r.fail.kind, kind);
        assert_true(strlen(r.fail.message) > 0);
        run_free(&r);
}

/* ---- tests ---- */

static void test_ready_and_ping(void **state)
{
        struct proto_msg m;

        expect_ready();
        assert_int_equal(proto_encode_empty(&A.out, 7, 0, PROTO_PING), 0);
        send_out();
        expect_msg(&m);
        assert_int_equal(m.type, PROTO_PONG);
        assert_int_equal(m.id, 7);
        assert_true(m.flags & FRAME_TERMINAL);
}

static void test_exit_codes(void **state)
{
        static const char *const ok[] = {"true", NULL};
        static const char *const three[] = {"/bin/sh", "-c", "exit 3", NULL};
        struct run r;

        expect_ready();
        run_simple(&r, ok, NULL);
        assert_false(r.failed);
        assert_true(r.pid > 0);
        assert_int_equal(r.exit.code, 0);
        assert_int_equal(r.exit.signal, 0);
        run_free(&r);
        run_simple(&r, three, NULL);
        assert_int_equal(r.exit.code, 3);
        assert_int_equal(r.exit.signal, 0);
        run_free(&r);
}

static void test_killed_by_signal(void **state)
{
        static const char *const argv[] = {"/bin/sh", "-c", "kill -9 $$", NULL};
        struct run r;

        expect_ready();
        run_simple(&r, argv, NULL);
        assert_int_equal(r.exit.code, -1);
        assert_int_equal(r.exit.signal, SIGKILL);
        run_free(&r);
}

/* core.exec.signal reaches the whole process group, a background child too. */
static void test_host_signal_group(void **state)
{
        static const char *const argv[] = {"/bin/sh", "-c", "sleep 1000 & echo $!; wait", NULL};
        struct proto_exec_signal sig = {.signal = SIGTERM};
        struct run r = {.id = 9};
        int pidfd;

        expect_ready();
        send_exec(9, argv, NULL);
        while (!strchr(r.out.data ? r.out.data : "", '\n'))
                pump(&r, 1);
        pidfd = pidfd_open((pid_t)atoi(r.out.data));
        assert_true(pidfd >= 0);
        assert_int_equal(proto_encode_exec_signal(&A.out, 9, &sig), 0);
        send_out();
        wait_done(&r);
        assert_int_equal(r.exit.code, -1);
        assert_int_equal(r.exit.signal, SIGTERM);
        wait_pidfd(pidfd);
        run_free(&r);
}

static void test_stdout_stderr(void **state)
{
        static const char *const argv[] = {"/bin/sh", "-c",
                                           "echo out; echo err >&2; echo more; exit 1", NULL};
        struct run r;

        expect_ready();
        run_simple(&r, argv, NULL);
        assert_string_equal(r.out.data, "out\nmore\n");
        assert_string_equal(r.err.data, "err\n");
        assert_int_equal(r.exit.code, 1);
        run_free(&r);
}

static void test_large_output(void **state)
{
        static const char *const argv[] = {"seq", "1", "1500000", NULL};
        struct outbuf want = {0};
        char line[16];
        struct run r;

        expect_ready();
        for (int i = 1; i <= 1500000; i++) {
                int n = snprintf(line, sizeof(line), "%d\n", i);

                append(&want, (const uint8_t *)line, (size_t)n);
        }
        assert_true(want.len > 10 * 1000 * 1000);
        run_simple(&r, argv, NULL);
        assert_int_equal(r.exit.code, 0);
        assert_int_equal(r.out.len, want.len);
        assert_memory_equal(r.out.data, want.data, want.len);
        assert_int_equal(r.err.len, 0);
        free(want.data);
        run_free(&r);
}

static void test_stdin_eof(void **state)
{
        static const char *const argv[] = {"cat", NULL};
        const struct req_opts o = {.has_stdin = true};
        struct run r;

        expect_ready();
        run_cmd(&r, 3, argv, &o, "hello\nworld", 11);
        assert_string_equal(r.out.data, "hello\nworld");
        assert_int_equal(r.exit.code, 0);
        assert_int_equal(r.acked, 11);
        run_free(&r);
}

/* 4 MiB through cat within the window: intact, and every byte acknowledged. */
static void test_stdin_window(void **state)
{
        static const char *const argv[] = {"cat", NULL};
        const struct req_opts o = {.has_stdin = true};
        const size_t len = 4u << 20;
        uint8_t *data = malloc(len);
        struct run r;

        expect_ready();
        assert_non_null(data);
        for (size_t i = 0; i < len; i++)
                data[i] = (uint8_t)(i * 7 + i / 251);
        run_cmd(&r, 4, argv, &o, data, len);
        assert_int_equal(r.exit.code, 0);
        assert_int_equal(r.acked, len);
        assert_int_equal(r.out.len, len);
        assert_memory_equal(r.out.data, data, len);
        free(data);
        run_free(&r);
}

/* A host that ignores the window has the session killed, not memory grown. */
static void test_stdin_window_violation(void **state)
{
        static const char *const argv[] = {"sleep", "1000", NULL};
        const struct req_opts o = {.has_stdin = true};
        static uint8_t chunk[PROTO_DATA_CHUNK];
        struct proto_error e;
        struct run r = {.id = 5};
        int pidfd;

        expect_ready();
        send_exec(5, argv, &o);
        wait_started(&r);
        pidfd = pidfd_open((pid_t)r.pid);
        assert_true(pidfd >= 0);
        /* the pipe takes 64 KiB, the window 256 KiB more: 8 chunks overflow it */
        for (int i = 0; i < 8; i++)
                send_stdin(5, chunk, sizeof(chunk));
        expect_error(5, &e);
        assert_string_equal(e.kind, PROTO_ERR_BUSY);
        assert_string_equal(e.offending_type, "core.exec.stdin");
        wait_pidfd(pidfd);
        sync_ping(6);
        run_free(&r);
}

static bool has_line(const char *text, const char *line)
{
        size_t n = strlen(line);

        for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
                        return true;
        return false;
}

static void test_env(void **state)
{
        static const char *const argv[] = {"env", NULL};
        static const char *const env1[] = {"FOO=bar", "EMPTY=", NULL};
        static const char *const env2[] = {"PATH=/bin:/usr/bin", "HOME=/x", NULL};
        struct req_opts o = {.env = env1};
        struct run r;

        expect_ready();
        run_simple(&r, argv, &o);
        assert_true(has_line(r.out.data, "FOO=bar"));
        assert_true(has_line(r.out.data, "EMPTY="));
        assert_true(has_line(r.out.data,
                             "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
        assert_true(has_line(r.out.data, "HOME=/root"));
        assert_null(strstr(r.out.data, "TERM="));
        assert_null(strstr(r.out.data, "MSB_AGENTD=")); /* nothing of the agent's own */
        run_free(&r);

        o.env = env2;
        run_simple(&r, argv, &o);
        assert_string_equal(r.out.data, "PATH=/bin:/usr/bin\nHOME=/x\n");
        run_free(&r);
}

static void test_cwd(void **state)
{
        static const char *const argv[] = {"pwd", NULL};
        char dir[] = "/tmp/msb-agent-cwd-XXXXXX", want[PATH_MAX + 2];
        struct req_opts o = {0};
        struct run r;

        expect_ready();
        assert_non_null(mkdtemp(dir));
        o.cwd = dir;
        run_simple(&r, argv, &o);
        snprintf(want, sizeof(want), "%s\n", dir);
        assert_string_equal(r.out.data, want);
        run_free(&r);
        rmdir(dir);

        /* default: the user's home when it exists, else / */
        o.cwd = NULL;
        run_simple(&r, argv, &o);
        assert_string_equal(r.out.data, access("/root", F_OK) == 0 ? "/root\n" : "/\n");
        run_free(&r);
        o.user = "nobody"; /* home /nonexistent */
        run_simple(&r, argv, &o);
        assert_string_equal(r.out.data, "/\n");
        run_free(&r);
}

static void test_user(void **state)
{
        static const char *const argv[] = {"/bin/sh", "-c", "echo $(id -u) $(id -g) $(id -G) $HOME",
                                           NULL};
        struct req_opts o = {.user = "nobody"};
        struct run r;

        expect_ready();
        run_simple(&r, argv, &o);
        assert_string_equal(r.out.data, "65534 65534 65534 /nonexistent\n");
        run_free(&r);

        o.user = "65534";
        run_simple(&r, argv, &o);
        assert_string_equal(r.out.data, "65534 65534 65534 /nonexistent\n");
        run_free(&r);

        o.user = "4321"; /* no passwd entry: gid 0, home / */
        run_simple(&r, argv, &o);
        assert_string_equal(r.out.data, "4321 0 0 /\n");
        run_free(&r);

        o.user = "nobody:tty";
        run_simple(&r, argv, &o);
        assert_string_equal(r.out.data, "65534 5 5 /nonexistent\n");
        run_free(&r);

        o.user = "4321:777";
        run_simple(&r, argv, &o);
        assert_string_equal(r.out.data, "4321 777 777 /\n");
        run_free(&r);
}

static void test_rlimits(void **state)
{
        static const char *const argv[] = {"/bin/sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c",
                                           NULL};
        const struct proto_rlimit rl[] = {
                {.resource = "nofile", .soft = 123, .hard = 456},
                {.resource = "core", .soft = UINT64_MAX, .hard = UINT64_MAX},
        };
        const struct req_opts o = {.rlimits = rl, .n_rlimits = 2};
        struct run r;

        expect_ready();
        run_simple(&r, argv, &o);
        assert_string_equal(r.out.data, "123\n456\nunlimited\n");
        run_free(&r);
}

static void test_tty_resize(void **state)
{
        static const char *const argv[] = {
                "/bin/sh", "-c",
                "echo term=$TERM; test -t 0 && test -t 1 && echo isatty; stty size; read x; "
                "stty size; echo got=$x",
                NULL};
        const struct req_opts o = {.tty = true, .has_stdin = true, .rows = 30, .cols = 100};
        struct proto_exec_resize rs = {.rows = 40, .cols = 120};
        struct run r = {.id = 11};

        expect_ready();
        send_exec(11, argv, &o);
        while (!strstr(r.out.data ? r.out.data : "", "30 100"))
                pump(&r, 1);
        assert_non_null(strstr(r.out.data, "term=xterm"));
        assert_non_null(strstr(r.out.data, "isatty"));
        assert_int_equal(proto_encode_exec_resize(&A.out, 11, &rs), 0);
        send_out();
        send_stdin(11, "go\n", 3);
        wait_done(&r);
        assert_int_equal(r.exit.code, 0);
        assert_non_null(strstr(r.out.data, "40 120"));
        assert_non_null(strstr(r.out.data, "got=go"));
        assert_int_equal(r.err.len, 0); /* one stream on a PTY */
        run_free(&r);
}

static void test_tty_eof(void **state)
{
        static const char *const argv[] = {"cat", NULL};
        const struct req_opts o = {.tty = true, .has_stdin = true};
        struct run r;

        expect_ready();
        run_cmd(&r, 12, argv, &o, "line\n", 5);
        assert_int_equal(r.exit.code, 0);
        assert_non_null(strstr(r.out.data, "line"));
        run_free(&r);
}

static void write_text(const char *path, const char *text, mode_t mode)
{
        assert_int_equal(write_file(path, text, mode), 0);
        assert_int_equal(chmod(path, mode), 0);
}

static void test_failures(void **state)
{
        char dir[] = "/tmp/msb-agent-fail-XXXXXX", plain[64], junk[64];
        const char *missing[] = {"/nonexistent/cmd", NULL};
        const char *unknown[] = {"msb-no-such-command", NULL};
        const char *noexec[] = {plain, NULL};
        const char *isdir[] = {dir, NULL};
        const char *garbage[] = {junk, NULL};
        const char *sh[] = {"/bin/sh", "-c", "true", NULL};
        const struct proto_rlimit bogus = {.resource = "bogus", .soft = 1, .hard = 1};
        const struct proto_rlimit inverted = {.resource = "nofile", .soft = 9, .hard = 8};
        const struct proto_rlimit huge = {
                .resource = "nofile", .soft = 1ull << 40, .hard = 1ull << 40};
        struct req_opts o = {0};
        struct run r;

        expect_ready();
        assert_non_null(mkdtemp(dir));
        snprintf(plain, sizeof(plain), "%s/plain", dir);
        snprintf(junk, sizeof(junk), "%s/junk", dir);
        write_text(plain, "#!/bin/sh\necho hi\n", 0644);
        write_text(junk, "\x01\x02 not a program\n", 0755);

        run_simple(&r, missing, NULL);
        assert_string_equal(r.fail.kind, PROTO_EXEC_NOT_FOUND);
        assert_string_equal(r.fail.stage, "exec");
        assert_int_equal(r.fail.err, ENOENT);
        assert_string_equal(r.fail.message, "exec: /nonexistent/cmd: No such file or directory");
        run_free(&r);
        assert_failed(unknown, NULL, PROTO_EXEC_NOT_FOUND);
        assert_failed(noexec, NULL, PROTO_EXEC_PERMISSION_DENIED);
        assert_failed(isdir, NULL, PROTO_EXEC_NOT_EXECUTABLE);
        assert_failed(garbage, NULL, PROTO_EXEC_NOT_EXECUTABLE);

        o.cwd = "/nonexistent-dir";
        assert_failed(sh, &o, PROTO_EXEC_BAD_CWD);
        o.cwd = "relative";
        assert_failed(sh, &o, PROTO_EXEC_BAD_CWD);
        o.cwd = plain; /* not a directory */
        assert_failed(sh, &o, PROTO_EXEC_BAD_CWD);
        o.cwd = NULL;
        o.user = "msb-no-such-user";
        assert_failed(sh, &o, PROTO_EXEC_BAD_USER);
        o.user = "nobody:msb-no-such-group";
        assert_failed(sh, &o, PROTO_EXEC_BAD_USER);
        o.user = NULL;
        o.rlimits = &bogus;
        o.n_rlimits = 1;
        assert_failed(sh, &o, PROTO_EXEC_BAD_ARGS);
        o.rlimits = &inverted;
        assert_failed(sh, &o, PROTO_EXEC_BAD_ARGS);
        o.rlimits = &huge; /* above fs.nr_open: setrlimit fails in the child */
        assert_failed(sh, &o, PROTO_EXEC_RESOURCE_LIMIT);
        assert_int_equal(rm_rf(dir), 0);
}

/* A background grandchild holding stdout open does not hold the exit back. */
static void test_background_holder(void **state)
{
        static const char *const argv[] = {"/bin/sh", "-c", "sleep 1000 & echo $!", NULL};
        struct run r;
        pid_t pid;

        expect_ready();
        run_simple(&r, argv, NULL);
        assert_int_equal(r.exit.code, 0);
        pid = (pid_t)atoi(r.out.data);
        assert_true(pid > 0);
        assert_int_equal(kill(pid, SIGKILL), 0);
        run_free(&r);
}

static void test_concurrent(void **state)
{
        static const char *const argv[] = {"cat", NULL};
        const struct req_opts o = {.has_stdin = true};
        struct run runs[2] = {{.id = 21}, {.id = 22}};

        expect_ready();
        send_exec(21, argv, &o);
        send_exec(22, argv, &o);
        send_stdin(22, "beta", 4);
        send_stdin(21, "alpha", 5);
        send_stdin(21, "", 0);
        send_stdin(22, "", 0);
        while (!runs[0].done || !runs[1].done)
                pump(runs, 2);
        assert_string_equal(runs[0].out.data, "alpha");
        assert_string_equal(runs[1].out.data, "beta");
        run_free(&runs[0]);
        run_free(&runs[1]);
}

static void test_session_ids(void **state)
{
        static const char *const argv[] = {"cat", NULL};
        const struct req_opts o = {.has_stdin = true};
        struct proto_exec_signal sig = {.signal = SIGKILL};
        struct proto_error e;
        struct run r = {.id = 31};

        expect_ready();
        send_exec(31, argv, &o);
        wait_started(&r);
        send_exec(31, argv, &o); /* in use */
        expect_error(31, &e);
        assert_string_equal(e.kind, PROTO_ERR_INVALID_SESSION);
        send_exec(0, argv, &o); /* reserved */
        expect_error(0, &e);
        assert_string_equal(e.kind, PROTO_ERR_INVALID_SESSION);
        send_stdin(99, "x", 1); /* no such session */
        expect_error(99, &e);
        assert_string_equal(e.kind, PROTO_ERR_INVALID_SESSION);
        assert_int_equal(proto_encode_exec_signal(&A.out, 31, &sig), 0);
        send_out();
        wait_done(&r);
        assert_int_equal(r.exit.signal, SIGKILL);
        run_free(&r);
}

/* At most AGENT_MAX_SESSIONS (256) commands at once; the next one is refused. */
static void test_session_cap(void **state)
{
        static const char *const argv[] = {"sleep", "1000", NULL};
        static struct run runs[257];

        expect_ready();
        for (uint32_t i = 0; i < 257; i++) {
                runs[i] = (struct run){.id = 1000 + i};
                send_exec(runs[i].id, argv, NULL);
        }
        while (!runs[256].done)
                pump(runs, 257);
        assert_true(runs[256].failed);
        assert_string_equal(runs[256].fail.kind, PROTO_EXEC_RESOURCE_LIMIT);
        for (uint32_t i = 0; i < 256; i++)
                assert_false(runs[i].failed);
        /* the teardown closes the stream: the agent terminates all 256 */
}

static void send_disconnected(uint32_t id_start, uint32_t id_end)
{
        const struct proto_relay_disconnected d = {.id_start = id_start, .id_end = id_end};

        assert_int_equal(proto_encode_relay_disconnected(&A.out, &d), 0);
        send_out();
}

/* True while the process behind pidfd runs (a zombie counts as ended). */
static bool pidfd_running(int pidfd)
{
        struct pollfd pfd = {.fd = pidfd, .events = POLLIN};

        return poll(&pfd, 1, 0) == 0;
}

/* For sync_ping_with(): nothing may arrive for the session *userdata. */
static void nothing_for(const struct proto_msg *m, void *userdata)
{
        if (m->id == *(const uint32_t *)userdata)
                fail_msg("%s for forgotten session %u", m->type_name, m->id);
}

/*
 * The relay says the client of [100, 200) is gone: its command dies with its
 * whole process group and is forgotten (no frame, the id free at once); a
 * detached command in the range and a command outside it live on, still
 * reachable by their ids.
 */
static void test_disconnect(void **state)
{
        static const char *const group[] = {"/bin/sh", "-c", "sleep 1000 & echo $!; wait", NULL};
        static const char *const sleeper[] = {"sleep", "1000", NULL};
        static const char *const ok[] = {"true", NULL};
        const struct req_opts detached = {.detached = true};
        struct proto_exec_signal kill9 = {.signal = SIGKILL};
        struct run in_range = {.id = 100}, alive[2] = {{.id = 199}, {.id = 200}}, again;
        struct run *kept = &alive[0], *outside = &alive[1];
        uint32_t forgotten = 100;
        int shell, background, kept_fd, outside_fd;

        expect_ready();
        send_exec(100, group, NULL);
        while (!strchr(in_range.out.data ? in_range.out.data : "", '\n'))
                pump(&in_range, 1);
        shell = pidfd_open((pid_t)in_range.pid);
        background = pidfd_open((pid_t)atoi(in_range.out.data));
        assert_true(shell >= 0 && background >= 0);
        send_exec(199, sleeper, &detached);
        wait_started(kept);
        send_exec(200, sleeper, NULL);
        wait_started(outside);
        kept_fd = pidfd_open((pid_t)kept->pid);
        outside_fd = pidfd_open((pid_t)outside->pid);

        send_disconnected(100, 200);
        wait_pidfd(shell);
        wait_pidfd(background);
        sync_ping_with(1, nothing_for, &forgotten);
        run_cmd(&again, 100, ok, NULL, NULL, 0);
        assert_int_equal(again.exit.code, 0);
        run_free(&again);

        assert_true(pidfd_running(kept_fd));
        assert_true(pidfd_running(outside_fd));
        assert_int_equal(proto_encode_exec_signal(&A.out, 199, &kill9), 0);
        assert_int_equal(proto_encode_exec_signal(&A.out, 200, &kill9), 0);
        send_out();
        while (!kept->done || !outside->done)
                pump(alive, 2);
        assert_int_equal(kept->exit.signal, SIGKILL);
        assert_int_equal(outside->exit.signal, SIGKILL);
        wait_pidfd(kept_fd);
        wait_pidfd(outside_fd);
        run_free(&in_range);
        run_free(kept);
        run_free(outside);
}

/* A detached command's stdin ends with its client: cat sees EOF and exits,
 * and its frames still flow (the relay logs them). */
static void test_disconnect_detached_stdin(void **state)
{
        static const char *const argv[] = {"cat", NULL};
        const struct req_opts o = {.has_stdin = true, .detached = true};
        struct run r = {.id = 300};

        expect_ready();
        send_exec(300, argv, &o);
        send_stdin(300, "abc", 3);
        wait_started(&r);
        send_disconnected(300, 301);
        wait_done(&r);
        assert_int_equal(r.exit.code, 0);
        assert_string_equal(r.out.data, "abc");
        run_free(&r);
}

/* Reads /proc/PID/FILE into buf; false when the process is gone. */
static bool read_proc(pid_t pid, const char *file, char *buf, size_t size)
{
        char path[64];
        ssize_t n;
        int fd;

        snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        n = read(fd, buf, size - 1);
        close(fd);
        buf[n > 0 ? n : 0] = '\0';
        return n > 0;
}

/* Bytes the process has written so far (/proc/PID/io), or -1 when it is gone. */
static long long proc_wchar(pid_t pid)
{
        char buf[1024];
        const char *w;

        if (!read_proc(pid, "io", buf, sizeof(buf)))
                return -1;
        w = strstr(buf, "wchar:");
        return w ? strtoll(w + 6, NULL, 10) : -1;
}

/*
 * A host that stops reading: the agent stops reading the command's pipe once
 * its queue is full, so the command stalls in write() having written about
 * the queue's cap, not its 30 MB. A stall is not an event one can wait for,
 * hence a bounded poll of /proc: blocked in pipe_write with nothing more
 * written since the previous look. Without backpressure the command would
 * run to its end and the poll would fail.
 */
static void test_backpressure(void **state)
{
        static const char *const argv[] = {"seq", "1", "4000000", NULL};
        struct run r = {.id = 61};
        char buf[4096], line[16];
        long long wchar = -1, prev = -2;
        size_t off = 0;
        const char *rss;
        int i;

        expect_ready();
        send_exec(61, argv, NULL);
        wait_started(&r);
        for (i = 0; i < 6000; i++) { /* 60 s at most */
                assert_true(read_proc((pid_t)r.pid, "wchan", buf, sizeof(buf)));
                wchar = proc_wchar((pid_t)r.pid);
                assert_true(wchar >= 0);
                if (strstr(buf, "pipe_write") && wchar == prev)
                        break;
                prev = strstr(buf, "pipe_write") ? wchar : -2;
                usleep(10000);
        }
        assert_true(i < 6000);
        assert_true(wchar < 8 * 1024 * 1024);
        assert_true(read_proc(A.pid, "status", buf, sizeof(buf)));
        rss = strstr(buf, "VmRSS:");
        assert_non_null(rss);
        assert_true(strtoul(rss + 6, NULL, 10) < 16 * 1024); /* kB */

        wait_done(&r);
        assert_int_equal(r.exit.code, 0);
        for (int k = 1; k <= 4000000; k++) {
                int n = snprintf(line, sizeof(line), "%d\n", k);

                assert_true(off + (size_t)n <= r.out.len);
                assert_memory_equal(r.out.data + off, line, (size_t)n);
                off += (size_t)n;
        }
        assert_int_equal(r.out.len, off);
        run_free(&r);
}

static void put_envelope(struct cbor_buf *b, uint64_t v, const char *type)
{
        cbor_put_map(b, 3);
        cbor_put_str(b, "v");
        cbor_put_uint(b, v);
        cbor_put_str(b, "t");
        cbor_put_str(b, type);
        cbor_put_str(b, "p");
}

static void test_protocol_errors(void **state)
{
        struct proto_error e;
        size_t start;

        expect_ready();
        /* an unknown type */
        start = frame_begin(&A.out, 41, FRAME_SESSION_START);
        put_envelope(&A.out, PROTO_VERSION, "core.bogus");
        cbor_put_map(&A.out, 0);
        assert_int_equal(frame_end(&A.out, start), 0);
        send_out();
        expect_error(41, &e);
        assert_string_equal(e.kind, PROTO_ERR_UNSUPPORTED_TYPE);
        assert_string_equal(e.offending_type, "core.bogus");

        /* a body that is not a message */
        start = frame_begin(&A.out, 42, 0);
        cbor_put_uint(&A.out, 7);
        assert_int_equal(frame_end(&A.out, start), 0);
        send_out();
        expect_error(42, &e);
        assert_string_equal(e.kind, PROTO_ERR_MALFORMED);

        /* a known type with a bad payload (no argv) */
        start = frame_begin(&A.out, 43, FRAME_SESSION_START);
        put_envelope(&A.out, PROTO_VERSION, "core.exec.request");
        cbor_put_map(&A.out, 1);
        cbor_put_str(&A.out, "tty");
        cbor_put_str(&A.out, "yes");
        assert_int_equal(frame_end(&A.out, start), 0);
        send_out();
        expect_error(43, &e);
        assert_string_equal(e.kind, PROTO_ERR_MALFORMED);
        assert_string_equal(e.offending_type, "core.exec.request");

        /* a version below the minimum */
        start = frame_begin(&A.out, 44, FRAME_SESSION_START);
        put_envelope(&A.out, PROTO_MIN_VERSION - 1, "core.ping");
        cbor_put_map(&A.out, 0);
        assert_int_equal(frame_end(&A.out, start), 0);
        send_out();
        expect_error(44, &e);
        assert_string_equal(e.kind, PROTO_ERR_UNSUPPORTED_VER);

        /* a message meant for the host */
        assert_int_equal(proto_encode_empty(&A.out, 45, 0, PROTO_PONG), 0);
        send_out();
        expect_error(45, &e);
        assert_string_equal(e.kind, PROTO_ERR_UNSUPPORTED_TYPE);

        /* core.relay.client.disconnected belongs on id 0 */
        start = frame_begin(&A.out, 47, 0);
        put_envelope(&A.out, PROTO_VERSION, "core.relay.client.disconnected");
        cbor_put_map(&A.out, 2);
        cbor_put_str(&A.out, "id_start");
        cbor_put_uint(&A.out, 1);
        cbor_put_str(&A.out, "id_end");
        cbor_put_uint(&A.out, 2);
        assert_int_equal(frame_end(&A.out, start), 0);
        send_out();
        expect_error(47, &e);
        assert_string_equal(e.kind, PROTO_ERR_MALFORMED);

        /* file messages for no session are dropped quietly (they may cross
         * the session's last frame) */
        assert_int_equal(proto_encode_empty(&A.out, 48, 0, PROTO_FS_CANCEL), 0);
        send_out();
        sync_ping_with(46, nothing_for, &(uint32_t){48}); /* the stream is still good */
}

/* A bad frame length cannot be resynchronised: an error, then the end. */
static void test_poisoned_stream(void **state)
{
        static const uint8_t bad[] = {0, 0, 0, 2, 0, 0, 0, 1, 0};
        struct proto_error e;
        struct proto_msg m;
        int status;

        expect_ready();
        assert_int_equal(write_all(A.fd, bad, sizeof(bad)), 0);
        expect_error(0, &e);
        assert_string_equal(e.kind, PROTO_ERR_MALFORMED);
        assert_false(recv_msg(&m));
        agent_wait_exit(&status);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

/* core.shutdown ends the agent and the commands it runs. */
static void test_shutdown(void **state)
{
        static const char *const argv[] = {"sleep", "1000", NULL};
        struct run r = {.id = 51};
        struct proto_msg m;
        int pidfd, status;

        expect_ready();
        send_exec(51, argv, NULL);
        wait_started(&r);
        pidfd = pidfd_open((pid_t)r.pid);
        assert_true(pidfd >= 0);
        assert_int_equal(proto_encode_empty(&A.out, 0, 0, PROTO_SHUTDOWN), 0);
        send_out();
        while (recv_msg(&m))
                ;
        agent_wait_exit(&status);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        wait_pidfd(pidfd);
        run_free(&r);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, agent_setup, agent_teardown)
        const struct CMUnitTest tests[] = {
                T(test_ready_and_ping),
                T(test_exit_codes),
                T(test_killed_by_signal),
                T(test_host_signal_group),
                T(test_stdout_stderr),
                T(test_large_output),
                T(test_stdin_eof),
                T(test_stdin_window),
                T(test_stdin_window_violation),
                T(test_env),
                T(test_cwd),
                T(test_user),
                T(test_rlimits),
                T(test_tty_resize),
                T(test_tty_eof),
                T(test_failures),
                T(test_background_holder),
                T(test_concurrent),
                T(test_session_ids),
                T(test_session_cap),
                T(test_disconnect),
                T(test_disconnect_detached_stdin),
                T(test_backpressure),
                T(test_protocol_errors),
                T(test_poisoned_stream),
                T(test_shutdown),
        };
#undef T

        signal(SIGPIPE, SIG_IGN);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
