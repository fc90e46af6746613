/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: one agent per test (cmocka setup and teardown), in a
 * global so that the helpers stay short. Writes poll for both directions and
 * feed whatever arrives into the frame reader; reads copy each body out of
 * the reader so a message stays valid while later frames are read.
 */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/core/util.h"

struct agent A;

void append(struct outbuf *b, const uint8_t *data, size_t len)
{
        if (b->len + len + 1 > b->cap) {
                b->cap = MAX(2 * b->cap, b->len + len + 1);
                b->data = realloc(b->data, b->cap);
                assert_non_null(b->data);
        }
        memcpy(b->data + b->len, data, len);
        b->len += len;
        b->data[b->len] = '\0';
}

static int start(uid_t uid)
{
        const char *bin = getenv("MSB_AGENTD");
        int sv[2];

        assert_non_null(bin);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        A = (struct agent){0};
        A.pid = fork();
        assert_true(A.pid >= 0);
        if (A.pid == 0) {
                if (dup2(sv[1], 3) < 0)
                        _exit(127);
                if (uid != 0 && (setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0))
                        _exit(127);
                execl(bin, "msb-agentd", "--serve-fd", "3", (char *)NULL);
                _exit(127);
        }
        close(sv[1]);
        A.fd = sv[0];
        frame_reader_init(&A.fr);
        cbor_buf_init(&A.out, 0);
        return 0;
}

int agent_setup(void **state)
{
        return start(0);
}

int agent_setup_nobody(void **state)
{
        return start(65534);
}

void agent_wait_exit(int *ret_status)
{
        int status;

        assert_int_equal(waitpid(A.pid, &status, 0), A.pid);
        A.pid = -1;
        if (ret_status)
                *ret_status = status;
}

int agent_teardown(void **state)
{
        if (A.fd >= 0)
                close(A.fd);
        A.fd = -1;
        if (A.pid > 0)
                agent_wait_exit(NULL); /* EOF on the stream ends the agent */
        frame_reader_free(&A.fr);
        cbor_buf_free(&A.out);
        free(A.body);
        A.body = NULL;
        return 0;
}

void send_out(void)
{
        size_t off = 0;

        assert_int_equal(A.out.err, 0);
        while (off < A.out.len) {
                struct pollfd pfd = {.fd = A.fd, .events = POLLIN | POLLOUT};
                uint8_t buf[65536];
                ssize_t n;

                assert_int_equal(poll(&pfd, 1, IO_TIMEOUT_MS), 1);
                if (pfd.revents & POLLIN) {
                        n = read(A.fd, buf, sizeof(buf));
                        assert_true(n > 0);
                        assert_int_equal(frame_reader_feed(&A.fr, buf, (size_t)n), 0);
                }
                if (pfd.revents & POLLOUT) {
                        n = send(A.fd, A.out.data + off, A.out.len - off, MSG_DONTWAIT);
                        assert_true(n > 0 || (n < 0 && errno == EAGAIN));
                        off += n > 0 ? (size_t)n : 0;
                }
        }
        cbor_buf_reset(&A.out);
}

bool recv_msg(struct proto_msg *m)
{
        struct frame f;

        for (;;) {
                struct pollfd pfd = {.fd = A.fd, .events = POLLIN};
                size_t avail;
                uint8_t *p;
                ssize_t n;
                int r = frame_reader_next(&A.fr, &f);

                assert_true(r >= 0);
                if (r == 1)
                        break;
                assert_int_equal(poll(&pfd, 1, IO_TIMEOUT_MS), 1);
                p = frame_reader_space(&A.fr, 65536, &avail);
                assert_non_null(p);
                n = read(A.fd, p, avail);
                assert_true(n >= 0);
                if (n == 0)
                        return false;
                frame_reader_commit(&A.fr, (size_t)n);
        }
        free(A.body);
        A.body = malloc(f.body_len ? f.body_len : 1);
        assert_non_null(A.body);
        memcpy(A.body, f.body, f.body_len);
        f.body = A.body;
        assert_int_equal(proto_decode(&f, m), 0);
        assert_true(m->version >= PROTO_MIN_VERSION);
        return true;
}

void expect_msg(struct proto_msg *m)
{
        assert_true(recv_msg(m));
}

void expect_error(uint32_t id, struct proto_error *ret)
{
        struct proto_msg m;

        do
                expect_msg(&m);
        while (m.type != PROTO_ERROR || m.id != id);
        assert_true(m.flags & FRAME_TERMINAL);
        assert_int_equal(proto_decode_error(&m, ret), 0);
}

static void ignore(const struct proto_msg *m, void *userdata)
{
}

void sync_ping_with(uint32_t id, void (*fn)(const struct proto_msg *m, void *userdata),
                    void *userdata)
{
        struct proto_msg m;

        assert_int_equal(proto_encode_empty(&A.out, id, 0, PROTO_PING), 0);
        send_out();
        for (;;) {
                expect_msg(&m);
                if (m.type == PROTO_PONG && m.id == id)
                        break;
                fn(&m, userdata);
        }
        assert_true(m.flags & FRAME_TERMINAL);
}

void sync_ping(uint32_t id)
{
        sync_ping_with(id, ignore, NULL);
}

void expect_ready(void)
{
        struct proto_msg m;
        struct proto_ready r;

        expect_msg(&m);
        assert_int_equal(m.type, PROTO_READY);
        assert_int_equal(m.id, 0);
        assert_int_equal(proto_decode_ready(&m, &r), 0);
        assert_int_equal(r.version, PROTO_VERSION);
        assert_true(strlen(r.agent_version) > 0);
        assert_true(r.ready_time_ns >= r.boot_time_ns);
}

int pidfd_open(pid_t pid)
{
        return (int)syscall(SYS_pidfd_open, pid, 0);
}

void wait_pidfd(int pidfd)
{
        struct pollfd pfd = {.fd = pidfd, .events = POLLIN};

        assert_int_equal(poll(&pfd, 1, IO_TIMEOUT_MS), 1);
        close(pidfd);
}
