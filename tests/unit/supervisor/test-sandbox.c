/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The real msb-sandbox binary, end to end, without a VM: MSB_QEMU names a
 * script that execs the static agent with --serve-fd 3 (the fd where QEMU
 * would find the agent socket), so the supervisor owns a "QEMU" process
 * that speaks the protocol at once. The guest commands run on the host, in
 * the test's temporary $MSB_HOME.
 *
 * MSB_SUPERVISOR and MSB_AGENTD name the binaries (set by meson). Waits are
 * on events (the ready pipe, waitpid, a pidfd), never sleeps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/core/json.h"
#include "lib/core/util.h"
#include "lib/proto/proto.h"
#include "lib/store/store.h"
#include "lib/readyline.h"

struct fx {
        char home[64];
        const char *supervisor;
        const char *agentd;
};

struct launched {
        pid_t pid;
        int parent; /* our end of --parent-fd */
        struct readyline ready;
};

static void make_sandbox(struct fx *f, const char *name, bool ephemeral)
{
        _cleanup_free_ char *dir = strdup_printf("%s/sandboxes/%s", f->home, name);
        _cleanup_free_ char *cfg_path = strdup_printf("%s/config.json", dir);
        _cleanup_free_ char *cfg = strdup_printf(
                "{\"version\": 1, \"name\": \"%s\", \"image\": \"base\", \"base_disk\": \"%s\", "
                "\"upper_disk\": null, \"memory_mib\": 128, \"cpus\": 1, \"accel\": \"tcg\", "
                "\"ephemeral\": %s, \"labels\": {}}",
                name, f->agentd, ephemeral ? "true" : "false");
        struct store_sandbox rec = {
                .name = (char *)name, .image = "base", .config = cfg, .ephemeral = ephemeral};
        struct store *st;
        char msg[256];
        int64_t id;

        assert_int_equal(mkdir_p(dir, 0700), 0);
        assert_int_equal(write_file(cfg_path, cfg, 0600), 0);
        assert_int_equal(store_open(f->home, &st, msg, sizeof(msg)), 0);
        assert_int_equal(store_sandbox_insert(st, &rec, &id), 0);
        store_close(st);
}

static void launch(struct fx *f, const char *name, struct launched *ret)
{
        char ready_arg[16], parent_arg[16], line[READYLINE_MAX + 1];
        int ready[2], parent[2];
        size_t len = 0;
        ssize_t n;

        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, parent), 0);
        ret->pid = fork();
        assert_true(ret->pid >= 0);
        if (ret->pid == 0) {
                if (dup2(ready[1], 3) < 0 || dup2(parent[0], 4) < 0)
                        _exit(127);
                snprintf(ready_arg, sizeof(ready_arg), "%d", 3);
                snprintf(parent_arg, sizeof(parent_arg), "%d", 4);
                execl(f->supervisor, "msb-sandbox", "--home", f->home, "--name", name, "--ready-fd",
                      ready_arg, "--parent-fd", parent_arg, (char *)NULL);
                _exit(127);
        }
        close(ready[1]);
        close(parent[0]);
        ret->parent = parent[1];
        while ((n = read(ready[0], line + len, READYLINE_MAX - len)) > 0)
                len += (size_t)n;
        close(ready[0]);
        assert_true(len > 0);
        assert_int_equal(readyline_parse(line, len, &ret->ready), 0);
}

static int wait_exit(pid_t pid)
{
        int status;

        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        return WEXITSTATUS(status);
}

static int connect_to(struct fx *f, const char *name, const char *sock)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/run/%s/%s", f->home, name, sock);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        return fd;
}

/* One control request, one answer line. */
static char *control(struct fx *f, const char *name, const char *request)
{
        _cleanup_close_ int fd = connect_to(f, name, "control.sock");
        char buf[4096];
        size_t len = 0;
        ssize_t n;

        assert_int_equal(write_all(fd, request, strlen(request)), 0);
        while (!memchr(buf, '\n', len) && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
                len += (size_t)n;
        buf[len] = '\0';
        assert_non_null(strchr(buf, '\n'));
        return strdup(buf);
}

static void last_run(struct fx *f, const char *name, struct store_run *run, char **status)
{
        struct store_sandbox rec;
        struct store *st;
        char msg[256];

        assert_int_equal(store_open(f->home, &st, msg, sizeof(msg)), 0);
        assert_int_equal(store_sandbox_get(st, name, &rec), 0);
        assert_int_equal(store_run_last(st, rec.id, run), 0);
        *status = strdup(rec.status);
        store_sandbox_clear(&rec);
        store_close(st);
}

static void expect_end(struct fx *f, const char *name, const char *reason, const char *status)
{
        _cleanup_free_ char *run_dir = strdup_printf("%s/run/%s", f->home, name);
        _cleanup_free_ char *lock = strdup_printf("%s/sandboxes/%s/lock", f->home, name);
        _cleanup_free_ char *st = NULL;
        _cleanup_close_ int fd = -1;
        struct store_run run;

        last_run(f, name, &run, &st);
        assert_true(run.ended_at >= run.started_at);
        assert_string_equal(run.reason, reason);
        assert_string_equal(st, status);
        store_run_clear(&run);
        assert_int_equal(access(run_dir, F_OK), -1);
        fd = open(lock, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
}

/* Runs argv through agent.sock: the exit code, stdout in out. */
static int run_command(struct fx *f, const char *name, const char *const *argv, size_t argc,
                       char *out, size_t out_size)
{
        _cleanup_close_ int fd = connect_to(f, name, "agent.sock");
        struct proto_exec_request req = {.argv = (char **)argv, .argc = argc};
        struct frame_reader fr;
        struct cbor_buf b;
        uint8_t hello[8]; /* RELAY_HELLO_LEN */
        uint32_t id;
        size_t out_len = 0;
        int code = -1000;

        assert_int_equal(read_full(fd, hello, sizeof(hello)), (ssize_t)sizeof(hello));
        id = (uint32_t)hello[0] << 24 | (uint32_t)hello[1] << 16 | (uint32_t)hello[2] << 8 |
             hello[3];
        cbor_buf_init(&b, 0);
        assert_int_equal(proto_encode_exec_request(&b, id, &req), 0);
        assert_int_equal(write_all(fd, b.data, b.len), 0);
        cbor_buf_free(&b);
        frame_reader_init(&fr);
        for (;;) {
                struct proto_exec_exited ex;
                struct proto_data d;
                struct proto_msg m;
                struct frame fm;
                size_t avail;
                uint8_t *buf;
                ssize_t n;
                int k = frame_reader_next(&fr, &fm);

                assert_true(k >= 0);
                if (k == 0) {
                        buf = frame_reader_space(&fr, 4096, &avail);
                        n = read(fd, buf, avail);
                        assert_true(n > 0);
                        frame_reader_commit(&fr, (size_t)n);
                        continue;
                }
                assert_int_equal(proto_decode(&fm, &m), 0);
                if (m.type == PROTO_READY)
                        continue; /* the hello's copy of core.ready */
                assert_int_equal(m.id, id);
                if (m.type == PROTO_EXEC_STDOUT && proto_decode_data(&m, &d) == 0 &&
                    out_len + d.len < out_size) {
                        memcpy(out + out_len, d.data, d.len);
                        out_len += d.len;
                } else if (m.type == PROTO_EXEC_EXITED) {
                        assert_int_equal(proto_decode_exec_exited(&m, &ex), 0);
                        code = ex.code;
                }
                if (m.flags & FRAME_TERMINAL)
                        break;
        }
        out[out_len] = '\0';
        frame_reader_free(&fr);
        return code;
}

static int setup(void **state)
{
        struct fx *f = calloc(1, sizeof(*f));
        _cleanup_free_ char *script = NULL, *qemu = NULL;

        assert_non_null(f);
        f->supervisor = getenv("MSB_SUPERVISOR");
        f->agentd = getenv("MSB_AGENTD");
        assert_non_null(f->supervisor);
        assert_non_null(f->agentd);
        snprintf(f->home, sizeof(f->home), "/tmp/msb-test-sandbox-XXXXXX");
        assert_non_null(mkdtemp(f->home));
        qemu = strdup_printf("%s/fake-qemu", f->home);
        script = strdup_printf("#!/bin/sh\nexec %s --serve-fd 3\n", f->agentd);
        assert_int_equal(write_file(qemu, script, 0700), 0);
        setenv("MSB_QEMU", qemu, 1);
        setenv("MSB_KERNEL", f->agentd, 1); /* only checked for existence */
        setenv("MSB_INITRAMFS", f->agentd, 1);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;

        assert_int_equal(rm_rf(f->home), 0);
        free(f);
        return 0;
}

static void test_run_and_stop(void **state)
{
        static const char *const argv[] = {"sh", "-c", "echo hello; exit 7"};
        struct fx *f = *state;
        _cleanup_free_ char *status = NULL, *stop = NULL, *bad = NULL;
        struct launched l;
        char out[256];

        make_sandbox(f, "one", false);
        launch(f, "one", &l);
        assert_true(l.ready.ok);
        assert_string_equal(l.ready.accel, "tcg");
        assert_int_equal(l.ready.pid, l.pid);
        assert_true(l.ready.qemu_pid > 0);
        assert_int_equal(write_all(l.parent, "D", 1), 0); /* detach */
        l.parent = safe_close(l.parent);                  /* and this must not stop it */

        assert_int_equal(run_command(f, "one", argv, 3, out, sizeof(out)), 7);
        assert_string_equal(out, "hello\n");
        status = control(f, "one", "{\"op\":\"status\"}\n");
        assert_non_null(strstr(status, "\"status\":\"running\""));
        bad = control(f, "one", "{\"op\":\"fly\"}\n");
        assert_string_equal(bad, "{\"ok\":false,\"error\":\"unknown op\"}\n");
        stop = control(f, "one", "{\"op\":\"stop\",\"timeout_ms\":30000}\n");
        assert_string_equal(stop, "{\"ok\":true,\"reason\":\"stopped\"}\n");
        assert_int_equal(wait_exit(l.pid), 0);
        expect_end(f, "one", "stopped", "stopped");
}

static void test_qemu_dies(void **state)
{
        struct fx *f = *state;
        struct launched l;

        make_sandbox(f, "two", false);
        launch(f, "two", &l);
        assert_true(l.ready.ok);
        assert_int_equal(kill((pid_t)l.ready.qemu_pid, SIGKILL), 0);
        assert_int_equal(wait_exit(l.pid), 0);
        expect_end(f, "two", "crashed", "crashed");
        close(l.parent);
}

static void test_supervisor_dies(void **state)
{
        struct fx *f = *state;
        struct pollfd pfd = {.events = POLLIN};
        struct launched l;
        int status;

        make_sandbox(f, "three", false);
        launch(f, "three", &l);
        assert_true(l.ready.ok);
        pfd.fd = (int)syscall(SYS_pidfd_open, (pid_t)l.ready.qemu_pid, 0);
        assert_true(pfd.fd >= 0);
        assert_int_equal(kill(l.pid, SIGKILL), 0);
        assert_int_equal(waitpid(l.pid, &status, 0), l.pid);
        assert_int_equal(poll(&pfd, 1, 60000), 1); /* "QEMU" died with it */
        close(pfd.fd);
        close(l.parent);
}

static void test_ephemeral_launcher_gone(void **state)
{
        struct fx *f = *state;
        _cleanup_free_ char *dir = strdup_printf("%s/sandboxes/four", f->home);
        struct store_sandbox rec;
        struct store *st;
        struct launched l;
        char msg[256];

        make_sandbox(f, "four", true);
        launch(f, "four", &l);
        assert_true(l.ready.ok);
        close(l.parent);
        assert_int_equal(wait_exit(l.pid), 0);
        assert_int_equal(access(dir, F_OK), -1);
        assert_int_equal(store_open(f->home, &st, msg, sizeof(msg)), 0);
        assert_int_equal(store_sandbox_get(st, "four", &rec), -ENOENT);
        store_close(st);
}

static void test_conflict_and_bad_config(void **state)
{
        struct fx *f = *state;
        _cleanup_free_ char *stop = NULL;
        struct launched first, second;

        make_sandbox(f, "five", false);
        launch(f, "five", &first);
        assert_true(first.ready.ok);
        launch(f, "five", &second);
        assert_false(second.ready.ok);
        assert_string_equal(second.ready.kind, "conflict");
        assert_int_equal(wait_exit(second.pid), 1);
        close(second.parent);
        stop = control(f, "five", "{\"op\":\"stop\",\"timeout_ms\":0}\n");
        assert_string_equal(stop, "{\"ok\":true,\"reason\":\"killed\"}\n");
        assert_int_equal(wait_exit(first.pid), 0);
        expect_end(f, "five", "killed", "stopped");
        close(first.parent);

        launch(f, "nosuch", &second);
        assert_false(second.ready.ok);
        assert_string_equal(second.ready.kind, READY_INVALID_ARGUMENT);
        assert_int_equal(wait_exit(second.pid), 1);
        close(second.parent);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_run_and_stop),
                cmocka_unit_test(test_qemu_dies),
                cmocka_unit_test(test_supervisor_dies),
                cmocka_unit_test(test_ephemeral_launcher_gone),
                cmocka_unit_test(test_conflict_and_bad_config),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
