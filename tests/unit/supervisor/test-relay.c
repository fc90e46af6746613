/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of the agent relay without a VM: the relay's agent channel is one
 * end of a socketpair and the test plays the agent on the other; each
 * client is a socketpair too, whose far end the test reads and writes. The
 * test runs the relay's epoll set itself (pump()).
 *
 * Waits are on events: a wait for a frame pumps the relay until the frame
 * is there. The only clock is a generous overall bound, so that a broken
 * relay fails a test instead of hanging it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/core/json.h"
#include "lib/core/util.h"
#include "lib/proto/proto.h"
#include "lib/supervisor/logfile.h"
#include "lib/supervisor/relay.h"

#define WAIT_LIMIT_NS (60ull * 1000000000ull)

struct fx {
        char dir[64];
        char *log_path;
        int epfd;
        int agent; /* the test's end of the agent channel */
        struct frame_reader agent_fr;
        struct logfile *log;
        struct relay *r;
        struct cbor_buf ready; /* the core.ready frame as the agent sent it */
};

struct cl {
        int fd;
        int slot;
        uint32_t start, end;
        struct frame_reader fr;
};

/* One round of the relay's event loop; returns the events handled. */
static int pump(struct fx *f, int timeout_ms)
{
        struct epoll_event ev[64];
        int n = epoll_wait(f->epfd, ev, 64, timeout_ms);

        assert_true(n >= 0);
        for (int i = 0; i < n; i++)
                assert_int_equal(relay_dispatch(f->r, ev[i].data.u64, ev[i].events), 0);
        return n;
}

static uint64_t deadline(void)
{
        return now_ns(CLOCK_MONOTONIC) + WAIT_LIMIT_NS;
}

static void check_deadline(uint64_t until)
{
        if (now_ns(CLOCK_MONOTONIC) > until)
                fail_msg("the relay never delivered what the test waited for");
}

/* The next frame on fd (pumping the relay meanwhile): 1, or 0 at EOF. */
static int next_frame(struct fx *f, int fd, struct frame_reader *fr, struct frame *ret)
{
        uint64_t until = deadline();

        for (;;) {
                size_t avail;
                uint8_t *buf;
                ssize_t n;
                int k = frame_reader_next(fr, ret);

                assert_true(k >= 0);
                if (k > 0)
                        return 1;
                buf = frame_reader_space(fr, 65536, &avail);
                assert_non_null(buf);
                n = recv(fd, buf, avail, MSG_DONTWAIT);
                if (n > 0) {
                        frame_reader_commit(fr, (size_t)n);
                        continue;
                }
                if (n == 0 || (n < 0 && errno == ECONNRESET))
                        return 0;
                assert_int_equal(errno, EAGAIN);
                check_deadline(until);
                pump(f, 100);
        }
}

/* The next frame on fd, decoded; fails the test at EOF. */
static void expect_msg(struct fx *f, int fd, struct frame_reader *fr, struct proto_msg *m)
{
        struct frame fr_;

        assert_int_equal(next_frame(f, fd, fr, &fr_), 1);
        assert_int_equal(proto_decode(&fr_, m), 0);
}

static void expect_eof(struct fx *f, int fd, struct frame_reader *fr)
{
        struct frame fr_;

        while (next_frame(f, fd, fr, &fr_) == 1)
                ;
}

/* Nothing more arrives on fd once the relay has nothing left to do. */
static void expect_quiet(struct fx *f, int fd)
{
        char c;

        while (pump(f, 0) > 0)
                ;
        assert_int_equal(recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK), -1);
        assert_int_equal(errno, EAGAIN);
}

static void send_all(struct fx *f, int fd, const void *data, size_t len);

/* Answers the relay's barrier ping as the agent does. */
static void answer_barrier(struct fx *f)
{
        struct cbor_buf b;

        cbor_buf_init(&b, 0);
        assert_int_equal(proto_encode_empty(&b, RELAY_BARRIER_ID, 0, PROTO_PONG), 0);
        send_all(f, f->agent, b.data, b.len);
        cbor_buf_free(&b);
}

static bool is_barrier(const struct proto_msg *m)
{
        return m->id == RELAY_BARRIER_ID && m->type == PROTO_PING &&
               (m->flags & FRAME_SESSION_START);
}

/* The next frame to the agent that is not a barrier (those are answered). */
static void agent_expect(struct fx *f, struct proto_msg *m)
{
        do {
                expect_msg(f, f->agent, &f->agent_fr, m);
                if (is_barrier(m))
                        answer_barrier(f);
        } while (is_barrier(m));
}

/* Nothing but barriers (answered) reaches the agent. */
static void agent_quiet(struct fx *f)
{
        struct proto_msg m;
        struct frame fr;
        char c;

        for (;;) {
                while (pump(f, 0) > 0)
                        ;
                if (frame_reader_next(&f->agent_fr, &fr) == 1) {
                        assert_int_equal(proto_decode(&fr, &m), 0);
                } else {
                        if (recv(f->agent, &c, 1, MSG_DONTWAIT | MSG_PEEK) < 0 && errno == EAGAIN)
                                return;
                        expect_msg(f, f->agent, &f->agent_fr, &m);
                }
                assert_true(is_barrier(&m));
                answer_barrier(f);
        }
}

static void send_all(struct fx *f, int fd, const void *data, size_t len)
{
        const uint8_t *p = data;
        uint64_t until = deadline();

        while (len > 0) {
                ssize_t n = send(fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n > 0) {
                        p += n;
                        len -= (size_t)n;
                        continue;
                }
                assert_int_equal(errno, EAGAIN);
                check_deadline(until);
                pump(f, 100);
        }
}

static void send_buf(struct fx *f, int fd, struct cbor_buf *b)
{
        assert_int_equal(b->err, 0);
        send_all(f, fd, b->data, b->len);
        cbor_buf_reset(b);
}

/* ---- messages ---- */

static void put_exec(struct cbor_buf *b, uint32_t id, const char *const *argv, size_t argc)
{
        struct proto_exec_request req = {
                .argv = (char **)argv, .argc = argc, .rows = 24, .cols = 80};

        assert_int_equal(proto_encode_exec_request(b, id, &req), 0);
}

static void put_ping(struct cbor_buf *b, uint32_t id)
{
        assert_int_equal(proto_encode_empty(b, id, FRAME_SESSION_START, PROTO_PING), 0);
}

static void put_stdout(struct cbor_buf *b, uint32_t id, enum proto_type t, const void *data,
                       size_t len)
{
        assert_int_equal(proto_encode_data(b, id, t, data, len), 0);
}

static void put_exited(struct cbor_buf *b, uint32_t id, int code)
{
        struct proto_exec_exited e = {.code = code};

        assert_int_equal(proto_encode_exec_exited(b, id, &e), 0);
}

static void expect_disconnected(struct fx *f, const struct cl *c)
{
        struct proto_relay_disconnected d;
        struct proto_msg m;

        agent_expect(f, &m);
        assert_int_equal(m.id, 0);
        assert_int_equal(m.type, PROTO_RELAY_CLIENT_DISCONNECTED);
        assert_int_equal(proto_decode_relay_disconnected(&m, &d), 0);
        assert_int_equal(d.id_start, c->start);
        assert_int_equal(d.id_end, c->end);
}

/* ---- fixture ---- */

static uint32_t be32(const uint8_t *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void read_exact(struct fx *f, int fd, uint8_t *buf, size_t n)
{
        uint64_t until = deadline();
        size_t got = 0;

        while (got < n) {
                ssize_t k = recv(fd, buf + got, n - got, MSG_DONTWAIT);
                if (k > 0) {
                        got += (size_t)k;
                        continue;
                }
                assert_true(k < 0 && errno == EAGAIN);
                check_deadline(until);
                pump(f, 100);
        }
}

static void client_connect(struct fx *f, struct cl *c)
{
        uint8_t hello[RELAY_HELLO_LEN];
        _cleanup_free_ uint8_t *ready = malloc(f->ready.len);
        int sv[2];

        assert_non_null(ready);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        c->slot = relay_add_client(f->r, sv[0]);
        assert_true(c->slot >= 0);
        c->fd = sv[1];
        frame_reader_init(&c->fr);
        read_exact(f, c->fd, hello, sizeof(hello));
        c->start = be32(hello);
        c->end = be32(hello + 4);
        assert_int_equal(c->start, relay_range_start((uint32_t)c->slot));
        assert_int_equal(c->end, relay_range_end((uint32_t)c->slot));
        read_exact(f, c->fd, ready, f->ready.len);
        assert_memory_equal(ready, f->ready.data, f->ready.len);
}

static void client_close(struct cl *c)
{
        c->fd = safe_close(c->fd);
        frame_reader_free(&c->fr);
}

static int setup(void **state)
{
        struct proto_ready ready = {.version = PROTO_VERSION,
                                    .agent_version = "test",
                                    .boot_time_ns = 5,
                                    .ready_time_ns = 6};
        struct fx *f = calloc(1, sizeof(*f));
        int sv[2], early[2];
        uint64_t until = deadline();
        char byte;

        assert_non_null(f);
        snprintf(f->dir, sizeof(f->dir), "/tmp/msb-test-relay-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        f->log_path = strdup_printf("%s/exec.log", f->dir);
        assert_int_equal(logfile_open(f->log_path, LOGFILE_MAX_BYTES, &f->log), 0);
        f->epfd = epoll_create1(EPOLL_CLOEXEC);
        assert_true(f->epfd >= 0);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(relay_new(f->epfd, sv[0], f->log, &f->r), 0);
        f->agent = sv[1];
        assert_int_equal(fd_set_nonblock(f->agent, true), 0);
        frame_reader_init(&f->agent_fr);

        /* no client before core.ready */
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, early), 0);
        assert_int_equal(relay_add_client(f->r, early[0]), -EAGAIN);
        assert_int_equal(recv(early[1], &byte, 1, 0), 0); /* the relay closed it */
        close(early[1]);

        cbor_buf_init(&f->ready, 0);
        assert_int_equal(proto_encode_ready(&f->ready, &ready), 0);
        send_all(f, f->agent, f->ready.data, f->ready.len);
        while (!relay_is_ready(f->r, NULL)) {
                check_deadline(until);
                pump(f, 100);
        }
        assert_true(relay_is_ready(f->r, &ready));
        assert_string_equal(ready.agent_version, "test");
        assert_int_equal(ready.ready_time_ns, 6);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;

        relay_free(f->r);
        safe_close(f->agent);
        close(f->epfd);
        frame_reader_free(&f->agent_fr);
        cbor_buf_free(&f->ready);
        logfile_free(f->log);
        assert_int_equal(rm_rf(f->dir), 0);
        free(f->log_path);
        free(f);
        return 0;
}

/* ---- tests ---- */

static void test_hello(void **state)
{
        struct fx *f = *state;
        struct cl a, b;

        client_connect(f, &a);
        client_connect(f, &b);
        assert_int_equal(relay_n_clients(f->r), 2);
        assert_int_equal(a.start, 1);
        assert_int_equal(a.end, 1u << 26);
        assert_int_equal(b.start, (1u << 26) + 1);
        assert_int_equal(b.end, 2u << 26);
        assert_int_equal(relay_range_end(RELAY_MAX_CLIENTS - 1), UINT32_MAX);
        client_close(&a);
        client_close(&b);
}

static void test_routing(void **state)
{
        static const char *const argv[] = {"echo", "a"};
        struct fx *f = *state;
        struct cbor_buf b;
        struct proto_msg m;
        struct proto_data d;
        bool saw_exec = false, saw_ping = false;
        struct cl ca, cb;

        cbor_buf_init(&b, 0);
        client_connect(f, &ca);
        client_connect(f, &cb);
        put_exec(&b, ca.start, argv, 2);
        send_buf(f, ca.fd, &b);
        put_ping(&b, cb.start + 7);
        send_buf(f, cb.fd, &b);
        for (int i = 0; i < 2; i++) {
                agent_expect(f, &m);
                assert_true(m.flags & FRAME_SESSION_START);
                if (m.type == PROTO_EXEC_REQUEST && m.id == ca.start)
                        saw_exec = true;
                else if (m.type == PROTO_PING && m.id == cb.start + 7)
                        saw_ping = true;
        }
        assert_true(saw_exec && saw_ping);
        assert_int_equal(relay_n_sessions(f->r), 2);

        put_stdout(&b, ca.start, PROTO_EXEC_STDOUT, "for-a", 5);
        assert_int_equal(proto_encode_empty(&b, cb.start + 7, 0, PROTO_PONG), 0);
        put_stdout(&b, 5u * (1u << 26) + 1, PROTO_EXEC_STDOUT, "nobody", 6); /* no owner */
        put_exited(&b, ca.start, 0);
        send_buf(f, f->agent, &b);

        expect_msg(f, ca.fd, &ca.fr, &m);
        assert_int_equal(m.type, PROTO_EXEC_STDOUT);
        assert_int_equal(proto_decode_data(&m, &d), 0);
        assert_memory_equal(d.data, "for-a", 5);
        expect_msg(f, ca.fd, &ca.fr, &m);
        assert_int_equal(m.type, PROTO_EXEC_EXITED);
        expect_msg(f, cb.fd, &cb.fr, &m);
        assert_int_equal(m.type, PROTO_PONG);
        assert_int_equal(m.id, cb.start + 7);
        expect_quiet(f, ca.fd);
        expect_quiet(f, cb.fd);
        assert_int_equal(relay_n_sessions(f->r), 0);

        cbor_buf_free(&b);
        client_close(&ca);
        client_close(&cb);
}

static void test_bad_ids_drop_the_client(void **state)
{
        struct fx *f = *state;
        struct cbor_buf b;
        struct proto_msg m;
        struct cl ca, cb, cc, cd;

        cbor_buf_init(&b, 0);
        client_connect(f, &ca);
        client_connect(f, &cb);
        client_connect(f, &cc);
        client_connect(f, &cd);

        put_ping(&b, cb.start); /* B's id, from A */
        send_buf(f, ca.fd, &b);
        expect_eof(f, ca.fd, &ca.fr);
        expect_disconnected(f, &ca);

        put_ping(&b, 0); /* the control id */
        send_buf(f, cc.fd, &b);
        expect_eof(f, cc.fd, &cc.fr);
        expect_disconnected(f, &cc);

        assert_int_equal(proto_encode_empty(&b, cd.start, FRAME_SHUTDOWN, PROTO_SHUTDOWN), 0);
        send_buf(f, cd.fd, &b);
        expect_eof(f, cd.fd, &cd.fr);
        expect_disconnected(f, &cd);

        /* B is unharmed, and nothing of theirs reached the agent */
        assert_int_equal(relay_n_clients(f->r), 1);
        put_ping(&b, cb.end - 1);
        send_buf(f, cb.fd, &b);
        agent_expect(f, &m);
        assert_int_equal(m.type, PROTO_PING);
        assert_int_equal(m.id, cb.end - 1);
        assert_int_equal(relay_n_sessions(f->r), 1);

        cbor_buf_free(&b);
        client_close(&ca);
        client_close(&cb);
        client_close(&cc);
        client_close(&cd);
}

static void test_disconnect_orphans_sessions(void **state)
{
        static const char *const argv[] = {"sleep", "1000"};
        struct proto_exec_request req = {.argv = (char **)argv, .argc = 2, .detached = true};
        struct fx *f = *state;
        struct cbor_buf b;
        struct proto_msg m;
        struct cl ca, ce;

        cbor_buf_init(&b, 0);
        client_connect(f, &ca);
        assert_int_equal(proto_encode_exec_request(&b, ca.start + 1, &req), 0);
        put_exec(&b, ca.start + 2, argv, 2);
        put_ping(&b, ca.start + 3);
        send_buf(f, ca.fd, &b);
        for (int i = 0; i < 3; i++)
                agent_expect(f, &m);
        assert_int_equal(relay_n_sessions(f->r), 3);
        client_close(&ca);
        expect_disconnected(f, &ca);
        assert_int_equal(relay_n_clients(f->r), 0);
        assert_int_equal(relay_n_sessions(f->r), 1); /* the detached command lives on */

        /* a new client does not get the slot with a live session, nor its frames */
        client_connect(f, &ce);
        assert_int_not_equal(ce.start, ca.start);
        put_stdout(&b, ca.start + 1, PROTO_EXEC_STDOUT, "late", 4);
        put_exited(&b, ca.start + 1, 0);
        send_buf(f, f->agent, &b);
        while (relay_n_sessions(f->r) > 0)
                pump(f, 100);
        expect_quiet(f, ce.fd);

        cbor_buf_free(&b);
        client_close(&ce);
}

static void test_duplicate_session_start(void **state)
{
        struct fx *f = *state;
        struct proto_error e;
        struct cbor_buf b;
        struct proto_msg m;
        struct cl ca;

        cbor_buf_init(&b, 0);
        client_connect(f, &ca);
        put_ping(&b, ca.start + 3);
        send_buf(f, ca.fd, &b);
        agent_expect(f, &m);
        put_ping(&b, ca.start + 3); /* the same id while the first is open */
        send_buf(f, ca.fd, &b);
        expect_msg(f, ca.fd, &ca.fr, &m);
        assert_int_equal(m.type, PROTO_ERROR);
        assert_int_equal(m.id, ca.start + 3);
        assert_true(m.flags & FRAME_TERMINAL);
        assert_int_equal(proto_decode_error(&m, &e), 0);
        assert_string_equal(e.kind, PROTO_ERR_INVALID_SESSION);
        agent_quiet(f); /* the agent never saw the second */
        assert_int_equal(relay_n_sessions(f->r), 1);

        assert_int_equal(proto_encode_empty(&b, ca.start + 3, 0, PROTO_PONG), 0);
        send_buf(f, f->agent, &b);
        expect_msg(f, ca.fd, &ca.fr, &m);
        assert_int_equal(m.type, PROTO_PONG);
        assert_int_equal(relay_n_sessions(f->r), 0);
        cbor_buf_free(&b);
        client_close(&ca);
}

/* The agent writes stdout frames for one session of a client that never
 * reads, until nothing moves any more. */
struct flood {
        struct cbor_buf frame; /* one 64 KiB stdout frame */
        size_t off;            /* bytes of the current frame already sent */
        size_t frames_done;    /* whole frames sent */
};

static void flood_until_stalled(struct fx *f, struct flood *fl, const struct cl *c)
{
        static uint8_t chunk[PROTO_DATA_CHUNK];
        uint64_t until = deadline();
        int quiet_rounds = 0;

        memset(chunk, 'x', sizeof(chunk));
        cbor_buf_init(&fl->frame, 0);
        put_stdout(&fl->frame, c->start, PROTO_EXEC_STDOUT, chunk, sizeof(chunk));
        while (quiet_rounds < 3) {
                bool moved = false;
                for (;;) {
                        ssize_t n = send(f->agent, fl->frame.data + fl->off,
                                         fl->frame.len - fl->off, MSG_DONTWAIT | MSG_NOSIGNAL);
                        if (n < 0) {
                                assert_int_equal(errno, EAGAIN);
                                break;
                        }
                        moved = true;
                        fl->off += (size_t)n;
                        if (fl->off == fl->frame.len) {
                                fl->off = 0;
                                fl->frames_done++;
                        }
                }
                if (pump(f, 0) > 0)
                        moved = true;
                assert_true(relay_client_queued(f->r, (uint32_t)c->slot) <= RELAY_QUEUE_MAX);
                quiet_rounds = moved ? 0 : quiet_rounds + 1;
                check_deadline(until);
        }
        /* the relay pushed back: the client's queue is full, the agent stalled */
        assert_true(relay_client_queued(f->r, (uint32_t)c->slot) >= RELAY_QUEUE_CAP);
        assert_true(relay_client_queued(f->r, (uint32_t)c->slot) <= RELAY_QUEUE_MAX);
}

static void start_session(struct fx *f, const struct cl *c, uint32_t id)
{
        static const char *const argv[] = {"yes"};
        struct cbor_buf b;
        struct proto_msg m;

        cbor_buf_init(&b, 0);
        put_exec(&b, id, argv, 1);
        send_buf(f, c->fd, &b);
        agent_expect(f, &m);
        assert_int_equal(m.id, id);
        cbor_buf_free(&b);
}

static void test_slow_client_backpressure(void **state)
{
        struct fx *f = *state;
        struct flood fl = {0};
        struct cbor_buf b;
        struct proto_msg m;
        struct proto_data d;
        uint64_t until = deadline();
        size_t frames = 0;
        struct cl ca, cb;

        cbor_buf_init(&b, 0);
        client_connect(f, &ca);
        client_connect(f, &cb);
        start_session(f, &ca, ca.start);
        flood_until_stalled(f, &fl, &ca);

        /* the other client still reaches the agent */
        put_ping(&b, cb.start);
        send_buf(f, cb.fd, &b);
        agent_expect(f, &m);
        assert_int_equal(m.type, PROTO_PING);
        assert_int_equal(m.id, cb.start);

        /* the slow client reads at last: every frame arrives, in order */
        while (fl.off > 0 || frames < fl.frames_done) {
                struct frame fr;
                if (fl.off > 0) {
                        ssize_t n = send(f->agent, fl.frame.data + fl.off, fl.frame.len - fl.off,
                                         MSG_DONTWAIT | MSG_NOSIGNAL);
                        if (n > 0 && (fl.off += (size_t)n) == fl.frame.len) {
                                fl.off = 0;
                                fl.frames_done++;
                        }
                }
                assert_int_equal(next_frame(f, ca.fd, &ca.fr, &fr), 1);
                assert_int_equal(proto_decode(&fr, &m), 0);
                assert_int_equal(m.type, PROTO_EXEC_STDOUT);
                assert_int_equal(proto_decode_data(&m, &d), 0);
                assert_int_equal(d.len, PROTO_DATA_CHUNK);
                frames++;
                check_deadline(until);
        }
        expect_quiet(f, ca.fd);
        assert_int_equal(relay_client_queued(f->r, (uint32_t)ca.slot), 0);
        assert_int_equal(relay_next_deadline(f->r), 0);

        cbor_buf_free(&fl.frame);
        cbor_buf_free(&b);
        client_close(&ca);
        client_close(&cb);
}

static void test_stalled_client_is_dropped(void **state)
{
        struct fx *f = *state;
        struct flood fl = {0};
        uint64_t when;
        struct cl ca;

        client_connect(f, &ca);
        start_session(f, &ca, ca.start);
        flood_until_stalled(f, &fl, &ca);
        when = relay_next_deadline(f->r);
        assert_true(when > 0);
        relay_expire(f->r, when - 1);
        assert_int_equal(relay_n_clients(f->r), 1);
        relay_expire(f->r, when);
        assert_int_equal(relay_n_clients(f->r), 0);
        expect_disconnected(f, &ca);
        /* the relay reads the agent again (and drops the orphan's output) */
        while (fl.off > 0) {
                ssize_t n = send(f->agent, fl.frame.data + fl.off, fl.frame.len - fl.off,
                                 MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n > 0)
                        fl.off = (fl.off + (size_t)n) % fl.frame.len;
                pump(f, 100);
        }
        agent_quiet(f);
        cbor_buf_free(&fl.frame);
        client_close(&ca);
}

/* The lines of exec.log, parsed. */
static size_t read_log(struct fx *f, struct json_doc **docs, const struct json_value **roots,
                       size_t max, char **ret_text)
{
        size_t len, n = 0;
        char *text;

        assert_int_equal(read_file(f->log_path, 1 << 20, &text, &len), 0);
        for (char *line = text; *line && n < max;) {
                char *nl = strchr(line, '\n');
                assert_non_null(nl);
                assert_int_equal(json_parse(line, (size_t)(nl - line), &docs[n], &roots[n]), 0);
                n++;
                line = nl + 1;
        }
        *ret_text = text;
        return n;
}

static const char *str(const struct json_value *root, const char *key)
{
        return json_string(json_get(root, key), "(none)");
}

static int64_t num(const struct json_value *root, const char *key)
{
        return json_int(json_get(root, key), INT64_MIN, INT64_MAX, -999);
}

static void test_exec_log(void **state)
{
        static const char *const argv[] = {"sh", "-c", "echo hi"};
        static const char *const argv2[] = {"nope"};
        struct fx *f = *state;
        struct proto_exec_started started = {.pid = 42};
        struct proto_exec_failed failed = {.kind = "not_found", .err = 2, .stage = "exec"};
        struct json_doc *docs[16];
        const struct json_value *roots[16], *args;
        _cleanup_free_ char *text = NULL;
        struct cbor_buf b;
        struct proto_msg m;
        struct cl ca;
        size_t n;

        cbor_buf_init(&b, 0);
        client_connect(f, &ca);
        put_exec(&b, ca.start, argv, 3);
        put_exec(&b, ca.start + 1, argv2, 1);
        send_buf(f, ca.fd, &b);
        agent_expect(f, &m);
        agent_expect(f, &m);

        assert_int_equal(proto_encode_exec_started(&b, ca.start, &started), 0);
        put_stdout(&b, ca.start, PROTO_EXEC_STDOUT, "hi\n", 3);
        put_stdout(&b, ca.start, PROTO_EXEC_STDOUT, "\xff\xfeok", 4);
        put_stdout(&b, ca.start, PROTO_EXEC_STDERR, "warn", 4);
        put_exited(&b, ca.start, 3);
        assert_int_equal(proto_encode_exec_failed(&b, ca.start + 1, &failed), 0);
        send_buf(f, f->agent, &b);
        for (int i = 0; i < 6; i++)
                expect_msg(f, ca.fd, &ca.fr, &m);

        n = read_log(f, docs, roots, ARRAY_SIZE(docs), &text);
        assert_int_equal(n, 8);
        assert_string_equal(str(roots[0], "event"), "exec");
        assert_string_equal(str(roots[0], "source"), "system");
        assert_int_equal(num(roots[0], "session"), ca.start);
        args = json_get(roots[0], "argv");
        assert_int_equal(json_count(args), 3);
        assert_string_equal(json_string(json_at(args, 2), ""), "echo hi");
        assert_string_equal(str(roots[1], "event"), "exec");
        assert_int_equal(num(roots[1], "session"), ca.start + 1);

        assert_string_equal(str(roots[2], "event"), "started");
        assert_int_equal(num(roots[2], "pid"), 42);
        assert_string_equal(str(roots[3], "source"), "stdout");
        assert_string_equal(str(roots[3], "data"), "hi\n");
        assert_null(json_get(roots[3], "data_b64"));
        assert_string_equal(str(roots[4], "source"), "stdout");
        assert_null(json_get(roots[4], "data"));
        assert_string_equal(str(roots[4], "data_b64"), "//5vaw=="); /* ff fe 'o' 'k' */
        assert_string_equal(str(roots[5], "source"), "stderr");
        assert_string_equal(str(roots[5], "data"), "warn");
        assert_string_equal(str(roots[6], "event"), "exited");
        assert_int_equal(num(roots[6], "code"), 3);
        assert_int_equal(num(roots[6], "signal"), 0);
        assert_string_equal(str(roots[7], "event"), "failed");
        assert_string_equal(str(roots[7], "kind"), "not_found");
        assert_int_equal(num(roots[7], "session"), ca.start + 1);
        for (size_t i = 0; i < n; i++) {
                assert_int_equal(strlen(str(roots[i], "ts")), 24);
                json_doc_free(docs[i]);
        }
        cbor_buf_free(&b);
        client_close(&ca);
}

static void test_max_clients(void **state)
{
        struct fx *f = *state;
        static const char *const argv[] = {"sleep", "1000"};
        struct proto_exec_request req = {.argv = (char **)argv, .argc = 2, .detached = true};
        struct cl c[RELAY_MAX_CLIENTS], late;
        struct proto_msg m;
        struct cbor_buf b;
        int sv[2];
        char byte;

        cbor_buf_init(&b, 0);

        for (size_t i = 0; i < RELAY_MAX_CLIENTS; i++)
                client_connect(f, &c[i]);
        assert_int_equal(relay_n_clients(f->r), RELAY_MAX_CLIENTS);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(relay_add_client(f->r, sv[0]), -EBUSY);
        assert_int_equal(recv(sv[1], &byte, 1, 0), 0);
        close(sv[1]);

        /* the slot is free again once the agent answered the barrier; its
         * former owner's detached command stays out of the new owner's way */
        assert_int_equal(proto_encode_exec_request(&b, c[10].start, &req), 0);
        send_buf(f, c[10].fd, &b);
        agent_expect(f, &m);
        client_close(&c[10]);
        expect_disconnected(f, &c[10]);
        expect_msg(f, f->agent, &f->agent_fr, &m);
        assert_true(is_barrier(&m));
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(relay_add_client(f->r, sv[0]), -EBUSY);
        close(sv[1]);
        answer_barrier(f);
        while (pump(f, 0) > 0)
                ;
        client_connect(f, &late);
        assert_int_equal(late.slot, c[10].slot);
        put_stdout(&b, c[10].start, PROTO_EXEC_STDOUT, "old", 3);
        send_buf(f, f->agent, &b);
        put_ping(&b, c[10].start);
        send_buf(f, late.fd, &b);
        expect_msg(f, late.fd, &late.fr, &m);
        assert_int_equal(m.type, PROTO_ERROR); /* not "old": the id is the orphan's */
        assert_int_equal(relay_n_sessions(f->r), 1);
        cbor_buf_free(&b);
        for (size_t i = 0; i < RELAY_MAX_CLIENTS; i++)
                if (i != 10)
                        client_close(&c[i]);
        client_close(&late);
}

static void test_shutdown_and_agent_eof(void **state)
{
        struct fx *f = *state;
        struct cbor_buf b;
        struct proto_msg m;
        struct cl ca;
        int sv[2];

        cbor_buf_init(&b, 0);
        client_connect(f, &ca);
        assert_int_equal(relay_send_shutdown(f->r), 0);
        agent_expect(f, &m);
        assert_int_equal(m.type, PROTO_SHUTDOWN);
        assert_int_equal(m.id, 0);
        assert_true(m.flags & FRAME_SHUTDOWN);

        f->agent = safe_close(f->agent);
        while (!relay_agent_closed(f->r))
                pump(f, 100);
        put_ping(&b, ca.start);
        send_buf(f, ca.fd, &b); /* dropped, not an error */
        pump(f, 0);
        assert_int_equal(relay_send_shutdown(f->r), -EPIPE);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(relay_add_client(f->r, sv[0]), -EPIPE);
        close(sv[1]);
        cbor_buf_free(&b);
        client_close(&ca);
}

/* A relay of its own, whose agent breaks the protocol. */
static void bad_agent(const void *bytes, size_t len)
{
        struct relay *r;
        struct epoll_event ev;
        int epfd = epoll_create1(EPOLL_CLOEXEC), sv[2], k = 0;

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(relay_new(epfd, sv[0], NULL, &r), 0);
        assert_int_equal(send(sv[1], bytes, len, 0), (ssize_t)len);
        while (k == 0 && epoll_wait(epfd, &ev, 1, 10000) == 1)
                k = relay_dispatch(r, ev.data.u64, ev.events);
        assert_int_equal(k, -EBADMSG);
        assert_false(relay_is_ready(r, NULL));
        relay_free(r);
        close(sv[1]);
        close(epfd);
}

static void test_bad_agent(void **state)
{
        static const uint8_t bad_len[] = {0, 0, 0, 2, 0, 0, 0, 0, 0};
        struct proto_ready ready = {.version = 1};
        struct cbor_buf b;

        (void)state;
        bad_agent(bad_len, sizeof(bad_len));
        cbor_buf_init(&b, 0);
        assert_int_equal(proto_encode_empty(&b, 0, 0, PROTO_PONG), 0); /* not core.ready */
        bad_agent(b.data, b.len);
        cbor_buf_reset(&b);
        assert_int_equal(proto_encode_ready(&b, &ready), 0);
        b.data[7] = 9; /* core.ready on id 9 */
        bad_agent(b.data, b.len);
        cbor_buf_free(&b);
}

static void test_bad_length_after_ready(void **state)
{
        static const uint8_t bad_len[] = {0xff, 0, 0, 0, 0, 0, 0, 1, 0};
        struct fx *f = *state;
        struct epoll_event ev;
        int k = 0;

        assert_int_equal(send(f->agent, bad_len, sizeof(bad_len), 0), (ssize_t)sizeof(bad_len));
        while (k == 0 && epoll_wait(f->epfd, &ev, 1, 10000) == 1)
                k = relay_dispatch(f->r, ev.data.u64, ev.events);
        assert_int_equal(k, -EBADMSG);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_hello, setup, teardown),
                cmocka_unit_test_setup_teardown(test_routing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_ids_drop_the_client, setup, teardown),
                cmocka_unit_test_setup_teardown(test_disconnect_orphans_sessions, setup, teardown),
                cmocka_unit_test_setup_teardown(test_duplicate_session_start, setup, teardown),
                cmocka_unit_test_setup_teardown(test_slow_client_backpressure, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stalled_client_is_dropped, setup, teardown),
                cmocka_unit_test_setup_teardown(test_exec_log, setup, teardown),
                cmocka_unit_test_setup_teardown(test_max_clients, setup, teardown),
                cmocka_unit_test_setup_teardown(test_shutdown_and_agent_eof, setup, teardown),
                cmocka_unit_test(test_bad_agent),
                cmocka_unit_test_setup_teardown(test_bad_length_after_ready, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
