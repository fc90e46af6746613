/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the message schema: every message encoded, framed, read back
 * through a frame_reader and decoded; the flags each type carries; envelope
 * and payload rules (unknown keys skipped, missing or duplicate or mistyped
 * fields refused, limits, NULs); truncation at every offset.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/core/util.h"
#include "lib/proto/proto.h"

/* Reads the single frame in b back and decodes its envelope. The frame
 * (and so m->payload) points into *fr, which the caller frees. */
static void read_back(const struct cbor_buf *b, struct frame_reader *fr, struct proto_msg *m)
{
        struct frame f;

        assert_int_equal(b->err, 0);
        frame_reader_init(fr);
        assert_int_equal(frame_reader_feed(fr, b->data, b->len), 0);
        assert_int_equal(frame_reader_next(fr, &f), 1);
        assert_int_equal(proto_decode(&f, m), 0);
        assert_int_equal(m->version, PROTO_VERSION);
        assert_string_equal(m->type_name, proto_type_name(m->type));
        assert_int_equal(frame_reader_next(fr, &f), 0);
}

static void test_type_names(void **state)
{
        unsigned t;

        assert_null(proto_type_name(PROTO_UNKNOWN));
        assert_null(proto_type_name(PROTO_TYPE_COUNT));
        for (t = PROTO_UNKNOWN + 1; t < PROTO_TYPE_COUNT; t++) {
                const char *name = proto_type_name(t);

                assert_non_null(name);
                assert_int_equal(proto_type_from_name(name, strlen(name)), t);
                /* a prefix is not a name */
                assert_int_equal(proto_type_from_name(name, strlen(name) - 1), PROTO_UNKNOWN);
        }
        assert_int_equal(proto_type_from_name("core.exec.stdin.ack", 19), PROTO_EXEC_STDIN_ACK);
        assert_int_equal(proto_type_from_name("core.exec.stdin.ackx", 20), PROTO_UNKNOWN);
        assert_int_equal(proto_type_from_name("", 0), PROTO_UNKNOWN);

        assert_int_equal(proto_type_flags(PROTO_PING), FRAME_SESSION_START);
        assert_int_equal(proto_type_flags(PROTO_EXEC_REQUEST), FRAME_SESSION_START);
        assert_int_equal(proto_type_flags(PROTO_PONG), FRAME_TERMINAL);
        assert_int_equal(proto_type_flags(PROTO_ERROR), FRAME_TERMINAL);
        assert_int_equal(proto_type_flags(PROTO_EXEC_EXITED), FRAME_TERMINAL);
        assert_int_equal(proto_type_flags(PROTO_EXEC_FAILED), FRAME_TERMINAL);
        assert_int_equal(proto_type_flags(PROTO_SHUTDOWN), FRAME_SHUTDOWN);
        assert_int_equal(proto_type_flags(PROTO_EXEC_STDOUT), 0);
        assert_int_equal(proto_type_flags(PROTO_READY), 0);
        assert_int_equal(proto_type_flags(PROTO_RELAY_CLIENT_DISCONNECTED), 0);
        assert_int_equal(proto_type_flags(PROTO_FS_REQUEST), FRAME_SESSION_START);
        assert_int_equal(proto_type_flags(PROTO_FS_RESPONSE), FRAME_TERMINAL);
        assert_int_equal(proto_type_flags(PROTO_FS_DATA), 0);
        assert_int_equal(proto_type_flags(PROTO_FS_ACK), 0);
        assert_int_equal(proto_type_flags(PROTO_FS_ENTRIES), 0);
        assert_int_equal(proto_type_flags(PROTO_FS_CANCEL), 0);
        assert_string_equal(proto_type_name(PROTO_RELAY_CLIENT_DISCONNECTED),
                            "core.relay.client.disconnected");
        assert_string_equal(proto_type_name(PROTO_FS_REQUEST), "core.fs.request");
        assert_null(proto_fs_op_name(0));
        assert_string_equal(proto_fs_op_name(PROTO_FS_OP_SYMLINK), "symlink");
        assert_null(proto_fs_op_name(PROTO_FS_OP_SYMLINK + 1));
}

static void test_ready(void **state)
{
        const struct proto_ready in = {
                .version = 7,
                .agent_version = "0.1.0",
                .boot_time_ns = 123456789012345ull,
                .ready_time_ns = UINT64_MAX,
        };
        struct proto_ready out;
        struct frame_reader fr;
        struct proto_msg m;
        struct cbor_buf b;

        cbor_buf_init(&b, 0);
        assert_int_equal(proto_encode_ready(&b, &in), 0);
        read_back(&b, &fr, &m);
        assert_int_equal(m.type, PROTO_READY);
        assert_int_equal(m.id, 0);
        assert_int_equal(m.flags, 0);
        assert_int_equal(proto_decode_ready(&m, &out), 0);
        assert_int_equal(out.version, in.version);
        assert_string_equal(out.agent_version, in.agent_version);
        assert_true(out.boot_time_ns == in.boot_time_ns);
        assert_true(out.ready_time_ns == in.ready_time_ns);
        frame_reader_free(&fr);
        cbor_buf_free(&b);
}

static void test_empty_messages(void **state)
{
        static const struct {
                enum proto_type t;
                uint32_t id;
                uint8_t flags;
        } cases[] = {
                {PROTO_PING, 5, FRAME_SESSION_START},
                {PROTO_PONG, 5, FRAME_TERMINAL},
                {PROTO_SHUTDOWN, 0, FRAME_SHUTDOWN},
        };
        size_t i;

        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct frame_reader fr;
                struct proto_msg m;
                struct cbor_buf b;
                size_t pairs;
                struct cbor_reader r;

                cbor_buf_init(&b, 0);
                assert_int_equal(proto_encode_empty(&b, cases[i].id, 0, cases[i].t), 0);
                read_back(&b, &fr, &m);
                assert_int_equal(m.type, cases[i].t);
                assert_int_equal(m.id, cases[i].id);
                assert_int_equal(m.flags, cases[i].flags);
                cbor_reader_init(&r, m.payload, m.payload_len);
                assert_int_equal(cbor_get_map(&r, &pairs), 0);
                assert_int_equal(pairs, 0);
                frame_reader_free(&fr);
                cbor_buf_free(&b);
        }
        /* extra flags are kept */
        {
                struct frame_reader fr;
                struct proto_msg m;
                struct cbor_buf b;

                cbor_buf_init(&b, 0);
                assert_int_equal(proto_encode_empty(&b, 9, FRAME_TERMINAL, PROTO_PING), 0);
                read_back(&b, &fr, &m);
                assert_int_equal(m.flags, FRAME_TERMINAL | FRAME_SESSION_START);
                frame_reader_free(&fr);
                cbor_buf_free(&b);
        }
        {
                struct cbor_buf b;

                cbor_buf_init(&b, 0);
                assert_int_equal(proto_encode_empty(&b, 1, 0, PROTO_UNKNOWN), -EINVAL);
                assert_int_equal(proto_encode_empty(&b, 1, 0, PROTO_TYPE_COUNT), -EINVAL);
                assert_int_equal(b.len, 0);
                cbor_buf_free(&b);
        }
}

static void test_error(void **state)
{
        struct proto_error in = {.kind = PROTO_ERR_UNSUPPORTED_TYPE,
                                 .message = "no such type",
                                 .offending_type = "core.fs.request"};
        struct proto_error out;
        struct frame_reader fr;
        struct proto_msg m;
        struct cbor_buf b;

        cbor_buf_init(&b, 0);
        assert_int_equal(proto_encode_error(&b, 42, &in), 0);
        read_back(&b, &fr, &m);
        assert_int_equal(m.type, PROTO_ERROR);
        assert_int_equal(m.id, 42);
        assert_int_equal(m.flags, FRAME_TERMINAL);
        assert_int_equal(proto_decode_error(&m, &out), 0);
        assert_memory_equal(&in, &out, sizeof(in));
        frame_reader_free(&fr);
        cbor_buf_free(&b);

        /* a message filling the whole array (no NUL) is sent cut to fit */
        memset(in.message, 'm', sizeof(in.message));
        cbor_buf_init(&b, 0);
        assert_int_equal(proto_encode_error(&b, 42, &in), 0);
        read_back(&b, &fr, &m);
        assert_int_equal(proto_decode_error(&m, &out), 0);
        assert_int_equal(strlen(out.message), sizeof(out.message) - 1);
        frame_reader_free(&fr);
        cbor_buf_free(&b);
        /* a kind without a NUL is refused */
        memset(in.kind, 'k', sizeof(in.kind));
        cbor_buf_init(&b, 0);
        assert_int_equal(proto_encode_error(&b, 42, &in), -EINVAL);
        assert_int_equal(b.len, 0);
        cbor_buf_free(&b);
}

static void request_sample(struct proto_exec_request *req)
{
        static char *argv[] = {"/bin/sh", "-c", "echo hi; exit 3", NULL};
        static char *env[] = {"PATH=/usr/bin:/bin", "EMPTY=", "X==y", NULL};

        *req = (struct proto_exec_request){
                .argv = argv,
                .argc = 3,
                .env = env,
                .envc = 3,
                .cwd = "/tmp",
                .user = "1000:1000",
                .tty = true,
                .has_stdin = true,
                .detached = true,
                .rows = 50,
                .cols = 132,
                .n_rlimits = 2,
        };
        strcpy(req->rlimits[0].resource, "nofile");
        req->rlimits[0].soft = 1024;
        req->rlimits[0].hard = UINT64_MAX;
        strcpy(req->rlimits[1].resource, "nproc");
        req->rlimits[1].soft = 0;
        req->rlimits[1].hard = UINT64_MAX - 1;
}

static void assert_request_equal(const struct proto_exec_request *a,
                                 const struct proto_exec_request *b)
{
        size_t i;

        assert_int_equal(a->argc, b->argc);
        for (i = 0; i < a->argc; i++)
                assert_string_equal(a->argv[i], b->argv[i]);
        assert_null(b->argv[b->argc]);
        assert_int_equal(a->envc, b->envc);
        for (i = 0; i < a->envc; i++)
                assert_string_equal(a->env[i], b->env[i]);
        assert_non_null(b->env);
        assert_null(b->env[b->envc]);
        assert_true(streq_ptr(a->cwd, b->cwd));
        assert_true(streq_ptr(a->user, b->user));
        assert_int_equal(a->tty, b->tty);
        assert_int_equal(a->has_stdin, b->has_stdin);
        assert_int_equal(a->detached, b->detached);
        assert_int_equal(a->rows, b->rows);
        assert_int_equal(a->cols, b->cols);
        assert_int_equal(a->n_rlimits, b->n_rlimits);
        for (i = 0; i < a->n_rlimits; i++) {
                assert_string_equal(a->rlimits[i].resource, b->rlimits[i].resource);
                assert_true(a->rlimits[i].soft == b->rlimits[i].soft);
                assert_true(a->rlimits[i].hard == b->rlimits[i].hard);
        }
}

static void test_exec_request(void **state)
{
        struct proto_exec_request in, out;
        struct frame_reader fr;
        struct proto_msg m;
        struct cbor_buf b;

        request_sample(&in);
        cbor_buf_init(&b, 0);
        assert_int_equal(proto_encode_exec_request(&b, 77, &in), 0);
        read_back(&b, &fr, &m);
        assert_int_equal(m.type, PROTO_EXEC_REQUEST);
        assert_int_equal(m.id, 77);
        assert_int_equal(m.flags, FRAME_SESSION_START);
        assert_int_equal(proto_decode_exec_request(&m, &out), 0);
        assert_request_equal(&in, &out);
        proto_exec_request_free(&out);
        assert_null(out.argv);
        proto_exec_request_free(&out); /* twice is harmless */
        frame_reader_free(&fr);

        /* the smallest request: argv only; defaults for the rest */
        static char *argv1[] = {"true", NULL};
        in = (struct proto_exec_request){.argv = argv1, .argc = 1, .rows = 24, .cols = 80};
        cbor_buf_reset(&b);
        assert_int_equal(proto_encode_exec_request(&b, 1, &in), 0);
        read_back(&b, &fr, &m);
        assert_int_equal(proto_decode_exec_request(&m, &out), 0);
        assert_request_equal(&in, &out);
        assert_null(out.cwd);
        assert_null(out.user);
        assert_false(out.detached);
        assert_int_equal(out.envc, 0);
        proto_exec_request_free(&out);
        frame_reader_free(&fr);

        /* the encoder refuses what the decoder would */
        static char *noeq[] = {"NOEQUALS", NULL};
        static char *eqfirst[] = {"=x", NULL};
        in.argc = 0;
        assert_int_equal(proto_encode_exec_request(&b, 1, &in), -EINVAL);
        in.argc = 1;
        in.env = noeq;
        in.envc = 1;
        assert_int_equal(proto_encode_exec_request(&b, 1, &in), -EINVAL);
        in.env = eqfirst;
        assert_int_equal(proto_encode_exec_request(&b, 1, &in), -EINVAL);
        in.envc = 0;
        in.n_rlimits = PROTO_MAX_RLIMITS + 1;
        assert_int_equal(proto_encode_exec_request(&b, 1, &in), -EINVAL);
        in.n_rlimits = 1; /* empty resource name */
        assert_int_equal(proto_encode_exec_request(&b, 1, &in), -EINVAL);
        cbor_buf_free(&b);
}

static void test_small_messages(void **state)
{
        struct frame_reader fr;
        struct proto_msg m;
        struct cbor_buf b;

        cbor_buf_init(&b, 0);
        {
                const struct proto_exec_started in = {.pid = UINT32_MAX};
                struct proto_exec_started out;

                assert_int_equal(proto_encode_exec_started(&b, 3, &in), 0);
                read_back(&b, &fr, &m);
                assert_int_equal(m.type, PROTO_EXEC_STARTED);
                assert_int_equal(m.flags, 0);
                assert_int_equal(proto_decode_exec_started(&m, &out), 0);
                assert_int_equal(out.pid, in.pid);
                frame_reader_free(&fr);
        }
        {
                const struct proto_exec_failed in = {.kind = PROTO_EXEC_NOT_FOUND,
                                                     .err = 2,
                                                     .message = "execve: No such file",
                                                     .stage = "exec"};
                struct proto_exec_failed out;

                cbor_buf_reset(&b);
                assert_int_equal(proto_encode_exec_failed(&b, 3, &in), 0);
                read_back(&b, &fr, &m);
                assert_int_equal(m.type, PROTO_EXEC_FAILED);
                assert_int_equal(m.flags, FRAME_TERMINAL);
                assert_int_equal(proto_decode_exec_failed(&m, &out), 0);
                assert_memory_equal(&in, &out, sizeof(in));
                frame_reader_free(&fr);
        }
        {
                static const struct proto_exec_exited cases[] = {
                        {0, 0}, {255, 0}, {-1, 9}, {INT32_MIN, 64}, {INT32_MAX, 1}};
                for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                        struct proto_exec_exited out;

                        cbor_buf_reset(&b);
                        assert_int_equal(proto_encode_exec_exited(&b, 3, &cases[i]), 0);
                        read_back(&b, &fr, &m);
                        assert_int_equal(m.type, PROTO_EXEC_EXITED);
                        assert_int_equal(m.flags, FRAME_TERMINAL);
                        assert_int_equal(proto_decode_exec_exited(&m, &out), 0);
                        assert_int_equal(out.code, cases[i].code);
                        assert_int_equal(out.signal, cases[i].signal);
                        frame_reader_free(&fr);
                }
                const struct proto_exec_exited bad = {-1, 65};
                assert_int_equal(proto_encode_exec_exited(&b, 3, &bad), -EINVAL);
        }
        {
                const struct proto_exec_resize in = {.rows = UINT16_MAX, .cols = 0};
                struct proto_exec_resize out;

                cbor_buf_reset(&b);
                assert_int_equal(proto_encode_exec_resize(&b, 3, &in), 0);
                read_back(&b, &fr, &m);
                assert_int_equal(m.type, PROTO_EXEC_RESIZE);
                assert_int_equal(proto_decode_exec_resize(&m, &out), 0);
                assert_int_equal(out.rows, in.rows);
                assert_int_equal(out.cols, in.cols);
                frame_reader_free(&fr);
        }
        {
                const struct proto_exec_signal in = {.signal = 15};
                struct proto_exec_signal out;

                cbor_buf_reset(&b);
                assert_int_equal(proto_encode_exec_signal(&b, 3, &in), 0);
                read_back(&b, &fr, &m);
                assert_int_equal(m.type, PROTO_EXEC_SIGNAL);
                assert_int_equal(proto_decode_exec_signal(&m, &out), 0);
                assert_int_equal(out.signal, 15);
                frame_reader_free(&fr);
                assert_int_equal(proto_encode_exec_signal(&b, 3, &(struct proto_exec_signal){0}),
                                 -EINVAL);
                assert_int_equal(proto_encode_exec_signal(&b, 3, &(struct proto_exec_signal){65}),
                                 -EINVAL);
        }
        {
                const struct proto_stdin_ack in = {.bytes = UINT64_MAX};
                struct proto_stdin_ack out;

                cbor_buf_reset(&b);
                assert_int_equal(proto_encode_stdin_ack(&b, 3, &in), 0);
                read_back(&b, &fr, &m);
                assert_int_equal(m.type, PROTO_EXEC_STDIN_ACK);
                assert_int_equal(proto_decode_stdin_ack(&m, &out), 0);
                assert_true(out.bytes == UINT64_MAX);
                frame_reader_free(&fr);
        }
        cbor_buf_free(&b);
}

static void test_data(void **state)
{
        static const enum proto_type types[] = {PROTO_EXEC_STDIN, PROTO_EXEC_STDOUT,
                                                PROTO_EXEC_STDERR};
        uint8_t *chunk = malloc(PROTO_DATA_CHUNK + 1);
        struct cbor_buf b;
        size_t i;

        assert_non_null(chunk);
        for (i = 0; i <= PROTO_DATA_CHUNK; i++)
                chunk[i] = (uint8_t)(i * 7);
        cbor_buf_init(&b, 0);
        for (i = 0; i < 3; i++) {
                static const size_t lens[] = {0, 1, 100, PROTO_DATA_CHUNK};

                for (size_t j = 0; j < 4; j++) {
                        struct frame_reader fr;
                        struct proto_msg m;
                        struct proto_data out;

                        cbor_buf_reset(&b);
                        assert_int_equal(proto_encode_data(&b, 8, types[i], chunk, lens[j]), 0);
                        read_back(&b, &fr, &m);
                        assert_int_equal(m.type, types[i]);
                        assert_int_equal(m.flags, 0);
                        assert_int_equal(proto_decode_data(&m, &out), 0);
                        assert_int_equal(out.len, lens[j]);
                        if (lens[j])
                                assert_memory_equal(out.data, chunk, lens[j]);
                        frame_reader_free(&fr);
                }
        }
        cbor_buf_reset(&b);
        assert_int_equal(proto_encode_data(&b, 8, PROTO_EXEC_STDOUT, chunk, PROTO_DATA_CHUNK + 1),
                         -EMSGSIZE);
        assert_int_equal(proto_encode_data(&b, 8, PROTO_EXEC_RESIZE, chunk, 1), -EINVAL);
        assert_int_equal(b.len, 0);
        cbor_buf_free(&b);
        free(chunk);
}

/* ---- hand-built bodies ---- */

/* A frame over a body built by the caller. */
static struct frame frame_of(const struct cbor_buf *b)
{
        assert_int_equal(b->err, 0);
        return (struct frame){.id = 1, .body = b->data, .body_len = b->len};
}

/* Envelope head with a payload map of n pairs to follow. */
static void put_envelope(struct cbor_buf *b, const char *type, size_t n)
{
        cbor_put_map(b, 3);
        cbor_put_str(b, "v");
        cbor_put_uint(b, 1);
        cbor_put_str(b, "t");
        cbor_put_str(b, type);
        cbor_put_str(b, "p");
        cbor_put_map(b, n);
}

static void test_envelope_rules(void **state)
{
        struct cbor_buf b;
        struct proto_msg m;
        struct frame f;

        cbor_buf_init(&b, 0);

        /* unknown keys (of any shape) before and after, keys in any order */
        cbor_put_map(&b, 5);
        cbor_put_str(&b, "x-future");
        cbor_put_map(&b, 1);
        cbor_put_str(&b, "nested");
        cbor_put_array(&b, 2);
        cbor_put_tag(&b, 2);
        cbor_put_bytes(&b, "\x01\x02", 2);
        cbor_put_double(&b, 3.5);
        cbor_put_str(&b, "p");
        cbor_put_map(&b, 0);
        cbor_put_str(&b, "t");
        cbor_put_str(&b, "core.something.new");
        cbor_put_str(&b, "v");
        cbor_put_uint(&b, 9);
        cbor_put_str(&b, "z");
        cbor_put_int(&b, -5);
        f = frame_of(&b);
        assert_int_equal(proto_decode(&f, &m), 0);
        assert_int_equal(m.type, PROTO_UNKNOWN);
        assert_string_equal(m.type_name, "core.something.new");
        assert_int_equal(m.version, 9);
        assert_int_equal(m.payload_len, 1);

        /* missing v, t, p */
        static const char *const keys[] = {"v", "t", "p"};
        for (size_t miss = 0; miss < 3; miss++) {
                cbor_buf_reset(&b);
                cbor_put_map(&b, 2);
                for (size_t k = 0; k < 3; k++) {
                        if (k == miss)
                                continue;
                        cbor_put_str(&b, keys[k]);
                        if (k == 0)
                                cbor_put_uint(&b, 1);
                        else if (k == 1)
                                cbor_put_str(&b, "core.ping");
                        else
                                cbor_put_map(&b, 0);
                }
                f = frame_of(&b);
                assert_int_equal(proto_decode(&f, &m), -EBADMSG);
        }
        cbor_buf_free(&b);
}

/* Each builder writes one whole body that proto_decode must refuse. */
static void bad_p_array(struct cbor_buf *b)
{
        cbor_put_map(b, 3);
        cbor_put_str(b, "v");
        cbor_put_uint(b, 1);
        cbor_put_str(b, "t");
        cbor_put_str(b, "core.ping");
        cbor_put_str(b, "p");
        cbor_put_array(b, 0);
}

static void bad_v_text(struct cbor_buf *b)
{
        cbor_put_map(b, 3);
        cbor_put_str(b, "v");
        cbor_put_str(b, "1");
        cbor_put_str(b, "t");
        cbor_put_str(b, "core.ping");
        cbor_put_str(b, "p");
        cbor_put_map(b, 0);
}

static void bad_v_huge(struct cbor_buf *b)
{
        cbor_put_map(b, 3);
        cbor_put_str(b, "v");
        cbor_put_uint(b, (uint64_t)UINT32_MAX + 1);
        cbor_put_str(b, "t");
        cbor_put_str(b, "core.ping");
        cbor_put_str(b, "p");
        cbor_put_map(b, 0);
}

static void bad_t_bytes(struct cbor_buf *b)
{
        cbor_put_map(b, 3);
        cbor_put_str(b, "v");
        cbor_put_uint(b, 1);
        cbor_put_str(b, "t");
        cbor_put_bytes(b, "core.ping", 9);
        cbor_put_str(b, "p");
        cbor_put_map(b, 0);
}

static void bad_t_nul(struct cbor_buf *b)
{
        cbor_put_map(b, 3);
        cbor_put_str(b, "v");
        cbor_put_uint(b, 1);
        cbor_put_str(b, "t");
        cbor_put_text(b, "core.ping\0x", 11);
        cbor_put_str(b, "p");
        cbor_put_map(b, 0);
}

static void bad_t_long(struct cbor_buf *b)
{
        char name[65];

        memset(name, 'a', 64);
        name[64] = '\0';
        cbor_put_map(b, 3);
        cbor_put_str(b, "v");
        cbor_put_uint(b, 1);
        cbor_put_str(b, "t");
        cbor_put_str(b, name);
        cbor_put_str(b, "p");
        cbor_put_map(b, 0);
}

static void bad_t_empty(struct cbor_buf *b)
{
        cbor_put_map(b, 3);
        cbor_put_str(b, "v");
        cbor_put_uint(b, 1);
        cbor_put_str(b, "t");
        cbor_put_str(b, "");
        cbor_put_str(b, "p");
        cbor_put_map(b, 0);
}

static void bad_duplicate_v(struct cbor_buf *b)
{
        cbor_put_map(b, 4);
        cbor_put_str(b, "v");
        cbor_put_uint(b, 1);
        cbor_put_str(b, "t");
        cbor_put_str(b, "core.ping");
        cbor_put_str(b, "v");
        cbor_put_uint(b, 2);
        cbor_put_str(b, "p");
        cbor_put_map(b, 0);
}

static void bad_trailing(struct cbor_buf *b)
{
        put_envelope(b, "core.ping", 0);
        cbor_put_null(b);
}

static void bad_not_map(struct cbor_buf *b)
{
        cbor_put_array(b, 3);
        cbor_put_uint(b, 1);
        cbor_put_str(b, "core.ping");
        cbor_put_map(b, 0);
}

static void bad_int_key(struct cbor_buf *b)
{
        cbor_put_map(b, 4);
        cbor_put_uint(b, 1);
        cbor_put_uint(b, 1);
        cbor_put_str(b, "v");
        cbor_put_uint(b, 1);
        cbor_put_str(b, "t");
        cbor_put_str(b, "core.ping");
        cbor_put_str(b, "p");
        cbor_put_map(b, 0);
}

static void bad_p_truncated(struct cbor_buf *b)
{
        put_envelope(b, "core.ping", 1);
        cbor_put_str(b, "x");
}

static void bad_empty(struct cbor_buf *b)
{
}

static void test_envelope_refused(void **state)
{
        static void (*const builders[])(struct cbor_buf * b) = {
                bad_p_array, bad_v_text,      bad_v_huge,      bad_t_bytes,  bad_t_nul,
                bad_t_long,  bad_t_empty,     bad_duplicate_v, bad_trailing, bad_not_map,
                bad_int_key, bad_p_truncated, bad_empty,
        };
        size_t i;

        for (i = 0; i < sizeof(builders) / sizeof(builders[0]); i++) {
                struct cbor_buf b;
                struct proto_msg m = {.id = 12345};
                struct frame f;

                cbor_buf_init(&b, 0);
                builders[i](&b);
                f = frame_of(&b);
                if (proto_decode(&f, &m) != -EBADMSG)
                        fail_msg("builder %zu accepted", i);
                assert_int_equal(m.id, 12345); /* untouched */
                cbor_buf_free(&b);
        }
}

/* Decodes a hand-built body whose payload is built by the caller after
 * put_envelope(); returns the envelope. */
static struct proto_msg decode_body(const struct cbor_buf *b)
{
        struct frame f = frame_of(b);
        struct proto_msg m;

        assert_int_equal(proto_decode(&f, &m), 0);
        return m;
}

static void test_unknown_fields_skipped(void **state)
{
        struct proto_exec_request req;
        struct proto_msg m;
        struct cbor_buf b;

        cbor_buf_init(&b, 0);
        put_envelope(&b, "core.exec.request", 5);
        cbor_put_str(&b, "future_list");
        cbor_put_array(&b, 3);
        cbor_put_map(&b, 1);
        cbor_put_str(&b, "deep");
        cbor_put_array(&b, 1);
        cbor_put_int(&b, INT64_MIN);
        cbor_put_undefined(&b);
        cbor_put_double(&b, -0.5);
        cbor_put_str(&b, "argv");
        cbor_put_array(&b, 2);
        cbor_put_str(&b, "ls");
        cbor_put_str(&b, "-l");
        cbor_put_str(&b, "future_tag");
        cbor_put_tag(&b, 1);
        cbor_put_uint(&b, 0);
        cbor_put_str(&b, "rows");
        cbor_put_uint(&b, 10);
        cbor_put_str(&b, "huge_negative"); /* below INT64_MIN: still skippable */
        cbor_buf_append(&b, "\x3b\xff\xff\xff\xff\xff\xff\xff\xff", 9);
        m = decode_body(&b);
        assert_int_equal(m.type, PROTO_EXEC_REQUEST);
        assert_int_equal(proto_decode_exec_request(&m, &req), 0);
        assert_int_equal(req.argc, 2);
        assert_string_equal(req.argv[0], "ls");
        assert_string_equal(req.argv[1], "-l");
        assert_null(req.argv[2]);
        assert_non_null(req.env);
        assert_null(req.env[0]);
        assert_int_equal(req.rows, 10);
        assert_int_equal(req.cols, 80);
        assert_false(req.tty);
        assert_false(req.has_stdin);
        assert_int_equal(req.n_rlimits, 0);
        proto_exec_request_free(&req);

        /* every other decoder skips unknown fields too */
        struct proto_exec_signal sig;
        cbor_buf_reset(&b);
        put_envelope(&b, "core.exec.signal", 2);
        cbor_put_str(&b, "reason");
        cbor_put_str(&b, "user pressed ^C");
        cbor_put_str(&b, "signal");
        cbor_put_uint(&b, 2);
        m = decode_body(&b);
        assert_int_equal(proto_decode_exec_signal(&m, &sig), 0);
        assert_int_equal(sig.signal, 2);
        cbor_buf_free(&b);
}

static void test_relay_disconnected(void **state)
{
        const struct proto_relay_disconnected in = {.id_start = 1u << 26, .id_end = UINT32_MAX};
        struct proto_relay_disconnected out;
        struct frame_reader fr;
        struct proto_msg m;
        struct cbor_buf b;

        cbor_buf_init(&b, 0);
        assert_int_equal(proto_encode_relay_disconnected(&b, &in), 0);
        read_back(&b, &fr, &m);
        assert_int_equal(m.type, PROTO_RELAY_CLIENT_DISCONNECTED);
        assert_int_equal(m.id, 0);
        assert_int_equal(m.flags, 0);
        assert_int_equal(proto_decode_relay_disconnected(&m, &out), 0);
        assert_int_equal(out.id_start, in.id_start);
        assert_int_equal(out.id_end, in.id_end);
        frame_reader_free(&fr);

        /* an empty range is fine, an inverted one is not */
        cbor_buf_reset(&b);
        assert_int_equal(
                proto_encode_relay_disconnected(
                        &b, &(struct proto_relay_disconnected){.id_start = 5, .id_end = 5}),
                0);
        cbor_buf_reset(&b);
        assert_int_equal(
                proto_encode_relay_disconnected(
                        &b, &(struct proto_relay_disconnected){.id_start = 6, .id_end = 5}),
                -EINVAL);
        assert_int_equal(b.len, 0);
        cbor_buf_free(&b);
}

/* Encodes *in, reads it back and decodes it into *out (both heap: they are big). */
static int fs_request_round_trip(const struct proto_fs_request *in, struct proto_fs_request *out)
{
        struct frame_reader fr;
        struct proto_msg m;
        struct cbor_buf b;
        int r;

        cbor_buf_init(&b, 0);
        r = proto_encode_fs_request(&b, 12, in);
        if (r == 0) {
                read_back(&b, &fr, &m);
                assert_int_equal(m.type, PROTO_FS_REQUEST);
                assert_int_equal(m.flags, FRAME_SESSION_START);
                assert_int_equal(proto_decode_fs_request(&m, out), 0);
                frame_reader_free(&fr);
        } else {
                assert_int_equal(b.len, 0);
        }
        cbor_buf_free(&b);
        return r;
}

static void test_fs_request(void **state)
{
        struct proto_fs_request *in = calloc(1, sizeof(*in)), *out = calloc(1, sizeof(*out));

        assert_non_null(in);
        assert_non_null(out);
        for (unsigned op = PROTO_FS_OP_STAT; op <= PROTO_FS_OP_SYMLINK; op++) {
                memset(in, 0, sizeof(*in));
                in->op = (enum proto_fs_op)op;
                strcpy(in->path, "/a/b c/\\xc3\\xa9");
                strcpy(in->target, op == PROTO_FS_OP_SYMLINK ? "../rel" : "/new");
                in->mode = 04755;
                in->follow = op & 1;
                in->parents = op & 2;
                in->recursive = !(op & 1);
                in->exclusive = op & 4;
                assert_int_equal(fs_request_round_trip(in, out), 0);
                assert_int_equal(out->op, in->op);
                assert_string_equal(out->path, in->path);
                /* target travels only for the ops that take one */
                if (op == PROTO_FS_OP_RENAME || op == PROTO_FS_OP_SYMLINK)
                        assert_string_equal(out->target, in->target);
                else
                        assert_string_equal(out->target, "");
                assert_int_equal(out->mode, in->mode);
                assert_int_equal(out->follow, in->follow);
                assert_int_equal(out->parents, in->parents);
                assert_int_equal(out->recursive, in->recursive);
                assert_int_equal(out->exclusive, in->exclusive);
        }

        /* the longest path */
        memset(in, 0, sizeof(*in));
        in->op = PROTO_FS_OP_STAT;
        memset(in->path, 'p', PROTO_FS_PATH_MAX - 1);
        in->path[0] = '/';
        assert_int_equal(fs_request_round_trip(in, out), 0);
        assert_int_equal(strlen(out->path), PROTO_FS_PATH_MAX - 1);

        /* the encoder refuses what the decoder would */
        memset(in->path, 'p', PROTO_FS_PATH_MAX); /* no room for the NUL */
        in->path[0] = '/';
        assert_int_equal(fs_request_round_trip(in, out), -EINVAL);
        strcpy(in->path, "relative");
        assert_int_equal(fs_request_round_trip(in, out), -EINVAL);
        strcpy(in->path, "");
        assert_int_equal(fs_request_round_trip(in, out), -EINVAL);
        strcpy(in->path, "/x");
        in->mode = 010000;
        assert_int_equal(fs_request_round_trip(in, out), -EINVAL);
        in->mode = 0;
        in->op = 0;
        assert_int_equal(fs_request_round_trip(in, out), -EINVAL);
        in->op = PROTO_FS_OP_SYMLINK + 1;
        assert_int_equal(fs_request_round_trip(in, out), -EINVAL);
        in->op = PROTO_FS_OP_RENAME;
        strcpy(in->target, "rel");
        assert_int_equal(fs_request_round_trip(in, out), -EINVAL);
        in->target[0] = '\0';
        assert_int_equal(fs_request_round_trip(in, out), -EINVAL);
        in->op = PROTO_FS_OP_SYMLINK;
        assert_int_equal(fs_request_round_trip(in, out), -EINVAL);
        free(in);
        free(out);
}

static void test_fs_request_defaults(void **state)
{
        static const struct {
                const char *op;
                int mode; /* -1: the decode fails */
        } cases[] = {
                {"write", 0644}, {"mkdir", 0755}, {"stat", 0},   {"list", 0},
                {"read", 0},     {"remove", 0},   {"chmod", -1},
        };
        struct proto_fs_request *out = calloc(1, sizeof(*out));

        assert_non_null(out);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct proto_msg m;
                struct cbor_buf b;

                cbor_buf_init(&b, 0);
                put_envelope(&b, "core.fs.request", 2);
                cbor_put_str(&b, "path");
                cbor_put_str(&b, "/x");
                cbor_put_str(&b, "op");
                cbor_put_str(&b, cases[i].op);
                m = decode_body(&b);
                if (cases[i].mode < 0) {
                        assert_int_equal(proto_decode_fs_request(&m, out), -EBADMSG);
                } else {
                        assert_int_equal(proto_decode_fs_request(&m, out), 0);
                        assert_int_equal(out->mode, cases[i].mode);
                        assert_false(out->follow || out->parents || out->recursive ||
                                     out->exclusive);
                }
                cbor_buf_free(&b);
        }
        free(out);
}

static void stat_sample(struct proto_fs_stat *st, enum proto_fs_type type, const char *name,
                        const char *target)
{
        *st = (struct proto_fs_stat){.type = type,
                                     .mode = 01777,
                                     .size = UINT64_MAX,
                                     .uid = UINT32_MAX,
                                     .gid = 7,
                                     .mtime_ns = INT64_MIN};
        strcpy(st->name, name);
        strcpy(st->target, target);
}

static void assert_stat_equal(const struct proto_fs_stat *a, const struct proto_fs_stat *b)
{
        assert_string_equal(a->name, b->name);
        assert_int_equal(a->type, b->type);
        assert_int_equal(a->mode, b->mode);
        assert_true(a->size == b->size);
        assert_int_equal(a->uid, b->uid);
        assert_int_equal(a->gid, b->gid);
        assert_true(a->mtime_ns == b->mtime_ns);
        assert_string_equal(a->target, b->target);
}

static void test_fs_entries(void **state)
{
        static struct proto_fs_stat in[PROTO_FS_BATCH + 1], out;
        struct proto_fs_entries it;
        struct frame_reader fr;
        struct cbor_buf items, b;
        struct proto_msg m;
        size_t i;

        cbor_buf_init(&items, 0);
        cbor_buf_init(&b, 0);
        for (i = 0; i < PROTO_FS_BATCH; i++) {
                char name[32];

                snprintf(name, sizeof(name), "entry-%zu", i);
                stat_sample(&in[i], (enum proto_fs_type)(1 + i % 7), name,
                            i % 7 == 2 ? "/some/where" : "");
                assert_int_equal(proto_fs_stat_put(&items, &in[i]), 0);
        }
        assert_int_equal(proto_encode_fs_entries(&b, 4, items.data, items.len, PROTO_FS_BATCH), 0);
        read_back(&b, &fr, &m);
        assert_int_equal(m.type, PROTO_FS_ENTRIES);
        assert_int_equal(proto_decode_fs_entries(&m, &it), 0);
        assert_int_equal(it.count, PROTO_FS_BATCH);
        for (i = 0; i < PROTO_FS_BATCH; i++) {
                assert_int_equal(proto_fs_entries_next(&it, &out), 1);
                assert_stat_equal(&in[i], &out);
        }
        assert_int_equal(proto_fs_entries_next(&it, &out), 0);
        frame_reader_free(&fr);

        /* a record without a name (read's first message) */
        stat_sample(&in[0], PROTO_FS_TYPE_FILE, "", "");
        cbor_buf_reset(&items);
        cbor_buf_reset(&b);
        assert_int_equal(proto_fs_stat_put(&items, &in[0]), 0);
        assert_int_equal(proto_encode_fs_entries(&b, 4, items.data, items.len, 1), 0);
        read_back(&b, &fr, &m);
        assert_int_equal(proto_decode_fs_entries(&m, &it), 0);
        assert_int_equal(proto_fs_entries_next(&it, &out), 1);
        assert_stat_equal(&in[0], &out);
        frame_reader_free(&fr);

        /* counts and records the decoder would refuse */
        assert_int_equal(proto_encode_fs_entries(&b, 4, items.data, items.len, 0), -EINVAL);
        assert_int_equal(proto_encode_fs_entries(&b, 4, items.data, items.len, PROTO_FS_BATCH + 1),
                         -EINVAL);
        cbor_buf_reset(&items);
        for (i = 0; i < 4; i++) {
                static const char *const bad[] = {".", "..", "a/b", "x"};

                stat_sample(&in[0], PROTO_FS_TYPE_FILE, bad[i], "");
                if (i == 3)
                        in[0].mode = 010000;
                assert_int_equal(proto_fs_stat_put(&items, &in[0]), -EINVAL);
        }
        stat_sample(&in[0], PROTO_FS_TYPE_SOCKET + 1, "x", "");
        assert_int_equal(proto_fs_stat_put(&items, &in[0]), -EINVAL);
        memset(in[0].name, 'n', sizeof(in[0].name));
        in[0].type = PROTO_FS_TYPE_FILE;
        assert_int_equal(proto_fs_stat_put(&items, &in[0]), -EINVAL);
        assert_int_equal(items.len, 0);
        cbor_buf_free(&items);
        cbor_buf_free(&b);
}

static void test_fs_response(void **state)
{
        struct proto_fs_response *in = calloc(1, sizeof(*in)), *out = calloc(1, sizeof(*out));
        struct frame_reader fr;
        struct proto_msg m;
        struct cbor_buf b;

        assert_non_null(in);
        assert_non_null(out);
        cbor_buf_init(&b, 0);
        in->err = ENOSPC;
        strcpy(in->message, "write /data/x: No space left on device");
        strcpy(in->path, "/data/x");
        assert_int_equal(proto_encode_fs_response(&b, 9, in), 0);
        read_back(&b, &fr, &m);
        assert_int_equal(m.type, PROTO_FS_RESPONSE);
        assert_int_equal(m.flags, FRAME_TERMINAL);
        assert_int_equal(proto_decode_fs_response(&m, out), 0);
        assert_int_equal(out->err, ENOSPC);
        assert_string_equal(out->message, in->message);
        assert_string_equal(out->path, in->path);
        assert_false(out->has_stat);
        assert_false(out->truncated);
        frame_reader_free(&fr);

        memset(in, 0, sizeof(*in));
        in->has_stat = true;
        stat_sample(&in->stat, PROTO_FS_TYPE_SYMLINK, "", "target");
        in->truncated = true;
        cbor_buf_reset(&b);
        assert_int_equal(proto_encode_fs_response(&b, 9, in), 0);
        read_back(&b, &fr, &m);
        assert_int_equal(proto_decode_fs_response(&m, out), 0);
        assert_int_equal(out->err, 0);
        assert_string_equal(out->message, "");
        assert_string_equal(out->path, "");
        assert_true(out->has_stat);
        assert_stat_equal(&in->stat, &out->stat);
        assert_true(out->truncated);
        frame_reader_free(&fr);

        cbor_buf_reset(&b);
        in->stat.mode = 010000;
        assert_int_equal(proto_encode_fs_response(&b, 9, in), -EINVAL);
        in->stat.mode = 0;
        in->err = -1;
        assert_int_equal(proto_encode_fs_response(&b, 9, in), -EINVAL);
        assert_int_equal(b.len, 0);
        cbor_buf_free(&b);
        free(in);
        free(out);
}

static void test_fs_data_ack(void **state)
{
        const struct proto_stdin_ack ack = {.bytes = PROTO_FS_WINDOW};
        struct proto_stdin_ack ack_out;
        struct frame_reader fr;
        struct proto_data d;
        struct proto_msg m;
        struct cbor_buf b;

        cbor_buf_init(&b, 0);
        assert_int_equal(proto_encode_data(&b, 5, PROTO_FS_DATA, "abc", 3), 0);
        read_back(&b, &fr, &m);
        assert_int_equal(m.type, PROTO_FS_DATA);
        assert_int_equal(proto_decode_data(&m, &d), 0);
        assert_int_equal(d.len, 3);
        assert_memory_equal(d.data, "abc", 3);
        frame_reader_free(&fr);
        cbor_buf_reset(&b);
        assert_int_equal(proto_encode_fs_ack(&b, 5, &ack), 0);
        read_back(&b, &fr, &m);
        assert_int_equal(m.type, PROTO_FS_ACK);
        assert_int_equal(proto_decode_stdin_ack(&m, &ack_out), 0);
        assert_true(ack_out.bytes == ack.bytes);
        frame_reader_free(&fr);
        cbor_buf_reset(&b);
        assert_int_equal(proto_encode_empty(&b, 5, 0, PROTO_FS_CANCEL), 0);
        read_back(&b, &fr, &m);
        assert_int_equal(m.type, PROTO_FS_CANCEL);
        frame_reader_free(&fr);
        cbor_buf_free(&b);
}

/* A payload built by fn must make decoder fail with -EBADMSG. */
struct bad_payload {
        const char *type;
        size_t pairs;
        void (*fn)(struct cbor_buf *b);
};

static void p_argv_missing(struct cbor_buf *b)
{
        cbor_put_str(b, "tty");
        cbor_put_bool(b, true);
}

static void p_argv_empty(struct cbor_buf *b)
{
        cbor_put_str(b, "argv");
        cbor_put_array(b, 0);
}

static void p_argv_not_text(struct cbor_buf *b)
{
        cbor_put_str(b, "argv");
        cbor_put_array(b, 1);
        cbor_put_bytes(b, "ls", 2);
}

static void p_argv_nul(struct cbor_buf *b)
{
        cbor_put_str(b, "argv");
        cbor_put_array(b, 1);
        cbor_put_text(b, "l\0s", 3);
}

static void p_argv_dup(struct cbor_buf *b)
{
        cbor_put_str(b, "argv");
        cbor_put_array(b, 1);
        cbor_put_str(b, "a");
        cbor_put_str(b, "argv");
        cbor_put_array(b, 1);
        cbor_put_str(b, "b");
}

static void p_argv_too_many(struct cbor_buf *b)
{
        cbor_put_str(b, "argv");
        cbor_put_array(b, PROTO_MAX_ARGS + 1);
        for (size_t i = 0; i <= PROTO_MAX_ARGS; i++)
                cbor_put_str(b, "x");
}

static void p_argv_too_long(struct cbor_buf *b)
{
        char *s = malloc(PROTO_MAX_STRING + 2);

        assert_non_null(s);
        memset(s, 'a', PROTO_MAX_STRING + 1);
        s[PROTO_MAX_STRING + 1] = '\0';
        cbor_put_str(b, "argv");
        cbor_put_array(b, 1);
        cbor_put_str(b, s);
        free(s);
}

static void p_argv_ok_env_bad(struct cbor_buf *b)
{
        cbor_put_str(b, "argv");
        cbor_put_array(b, 1);
        cbor_put_str(b, "ls");
        cbor_put_str(b, "env");
        cbor_put_array(b, 2);
        cbor_put_str(b, "A=1");
        cbor_put_str(b, "B");
}

static void p_tty_uint(struct cbor_buf *b)
{
        cbor_put_str(b, "argv");
        cbor_put_array(b, 1);
        cbor_put_str(b, "ls");
        cbor_put_str(b, "tty");
        cbor_put_uint(b, 1);
}

static void p_rows_big(struct cbor_buf *b)
{
        cbor_put_str(b, "argv");
        cbor_put_array(b, 1);
        cbor_put_str(b, "ls");
        cbor_put_str(b, "rows");
        cbor_put_uint(b, 65536);
}

static void p_cwd_null(struct cbor_buf *b)
{
        cbor_put_str(b, "argv");
        cbor_put_array(b, 1);
        cbor_put_str(b, "ls");
        cbor_put_str(b, "cwd");
        cbor_put_null(b);
}

static void p_rlimits_many(struct cbor_buf *b)
{
        cbor_put_str(b, "argv");
        cbor_put_array(b, 1);
        cbor_put_str(b, "ls");
        cbor_put_str(b, "rlimits");
        cbor_put_array(b, PROTO_MAX_RLIMITS + 1);
        for (size_t i = 0; i <= PROTO_MAX_RLIMITS; i++) {
                cbor_put_map(b, 3);
                cbor_put_str(b, "resource");
                cbor_put_str(b, "nofile");
                cbor_put_str(b, "soft");
                cbor_put_uint(b, 1);
                cbor_put_str(b, "hard");
                cbor_put_uint(b, 1);
        }
}

static void p_rlimit_no_hard(struct cbor_buf *b)
{
        cbor_put_str(b, "argv");
        cbor_put_array(b, 1);
        cbor_put_str(b, "ls");
        cbor_put_str(b, "rlimits");
        cbor_put_array(b, 1);
        cbor_put_map(b, 2);
        cbor_put_str(b, "resource");
        cbor_put_str(b, "nofile");
        cbor_put_str(b, "soft");
        cbor_put_uint(b, 1);
}

static void p_rlimit_bad_text(struct cbor_buf *b)
{
        cbor_put_str(b, "argv");
        cbor_put_array(b, 1);
        cbor_put_str(b, "ls");
        cbor_put_str(b, "rlimits");
        cbor_put_array(b, 1);
        cbor_put_map(b, 3);
        cbor_put_str(b, "resource");
        cbor_put_str(b, "nofile");
        cbor_put_str(b, "soft");
        cbor_put_str(b, "infinity");
        cbor_put_str(b, "hard");
        cbor_put_uint(b, 1);
}

static void p_rlimit_long_name(struct cbor_buf *b)
{
        cbor_put_str(b, "argv");
        cbor_put_array(b, 1);
        cbor_put_str(b, "ls");
        cbor_put_str(b, "rlimits");
        cbor_put_array(b, 1);
        cbor_put_map(b, 3);
        cbor_put_str(b, "resource");
        cbor_put_str(b, "a-very-long-resource");
        cbor_put_str(b, "soft");
        cbor_put_uint(b, 1);
        cbor_put_str(b, "hard");
        cbor_put_uint(b, 1);
}

static void p_rlimit_not_map(struct cbor_buf *b)
{
        cbor_put_str(b, "argv");
        cbor_put_array(b, 1);
        cbor_put_str(b, "ls");
        cbor_put_str(b, "rlimits");
        cbor_put_array(b, 1);
        cbor_put_uint(b, 7);
}

static void p_nothing(struct cbor_buf *b)
{
}

static void p_version_text(struct cbor_buf *b)
{
        cbor_put_str(b, "version");
        cbor_put_str(b, "1");
}

static void p_kind_long(struct cbor_buf *b)
{
        cbor_put_str(b, "kind");
        cbor_put_str(b, "0123456789012345678901234567890123456789"); /* 40 bytes */
}

static void p_pid_negative(struct cbor_buf *b)
{
        cbor_put_str(b, "pid");
        cbor_put_int(b, -1);
}

static void p_pid_huge(struct cbor_buf *b)
{
        cbor_put_str(b, "pid");
        cbor_put_uint(b, (uint64_t)UINT32_MAX + 1);
}

static void p_failed_errno_neg(struct cbor_buf *b)
{
        cbor_put_str(b, "kind");
        cbor_put_str(b, "other");
        cbor_put_str(b, "errno");
        cbor_put_int(b, -2);
}

static void p_exited_no_code(struct cbor_buf *b)
{
        cbor_put_str(b, "signal");
        cbor_put_uint(b, 9);
}

static void p_exited_code_big(struct cbor_buf *b)
{
        cbor_put_str(b, "code");
        cbor_put_uint(b, (uint64_t)INT32_MAX + 1);
}

static void p_resize_rows_only(struct cbor_buf *b)
{
        cbor_put_str(b, "rows");
        cbor_put_uint(b, 10);
}

static void p_signal_zero(struct cbor_buf *b)
{
        cbor_put_str(b, "signal");
        cbor_put_uint(b, 0);
}

static void p_signal_65(struct cbor_buf *b)
{
        cbor_put_str(b, "signal");
        cbor_put_uint(b, 65);
}

static void p_data_text(struct cbor_buf *b)
{
        cbor_put_str(b, "data");
        cbor_put_str(b, "hello");
}

static void p_data_big(struct cbor_buf *b)
{
        uint8_t *d = calloc(1, PROTO_DATA_CHUNK + 1);

        assert_non_null(d);
        cbor_put_str(b, "data");
        cbor_put_bytes(b, d, PROTO_DATA_CHUNK + 1);
        free(d);
}

static void p_ack_negative(struct cbor_buf *b)
{
        cbor_put_str(b, "bytes");
        cbor_put_int(b, -1);
}

static void p_disc_no_end(struct cbor_buf *b)
{
        cbor_put_str(b, "id_start");
        cbor_put_uint(b, 1);
}

static void p_disc_inverted(struct cbor_buf *b)
{
        cbor_put_str(b, "id_start");
        cbor_put_uint(b, 9);
        cbor_put_str(b, "id_end");
        cbor_put_uint(b, 8);
}

static void p_detached_text(struct cbor_buf *b)
{
        cbor_put_str(b, "argv");
        cbor_put_array(b, 1);
        cbor_put_str(b, "ls");
        cbor_put_str(b, "detached");
        cbor_put_str(b, "yes");
}

/* The op and path pairs of a core.fs.request. */
static void put_fs_request(struct cbor_buf *b, const char *op, const char *path)
{
        cbor_put_str(b, "op");
        cbor_put_str(b, op);
        cbor_put_str(b, "path");
        cbor_put_str(b, path);
}

static void p_fs_no_path(struct cbor_buf *b)
{
        cbor_put_str(b, "op");
        cbor_put_str(b, "stat");
}

static void p_fs_bad_op(struct cbor_buf *b)
{
        put_fs_request(b, "chown", "/x");
}

static void p_fs_relative(struct cbor_buf *b)
{
        put_fs_request(b, "stat", "etc/passwd");
}

static void p_fs_empty_path(struct cbor_buf *b)
{
        put_fs_request(b, "stat", "");
}

static void p_fs_nul(struct cbor_buf *b)
{
        cbor_put_str(b, "op");
        cbor_put_str(b, "stat");
        cbor_put_str(b, "path");
        cbor_put_text(b, "/a\0b", 4);
}

static void p_fs_long_path(struct cbor_buf *b)
{
        static char path[PROTO_FS_PATH_MAX + 1];

        memset(path, 'a', PROTO_FS_PATH_MAX);
        path[0] = '/';
        put_fs_request(b, "stat", path);
}

static void p_fs_rename_no_target(struct cbor_buf *b)
{
        put_fs_request(b, "rename", "/x");
}

static void p_fs_rename_relative(struct cbor_buf *b)
{
        put_fs_request(b, "rename", "/x");
        cbor_put_str(b, "target");
        cbor_put_str(b, "y");
}

static void p_fs_symlink_empty(struct cbor_buf *b)
{
        put_fs_request(b, "symlink", "/x");
        cbor_put_str(b, "target");
        cbor_put_str(b, "");
}

static void p_fs_mode_big(struct cbor_buf *b)
{
        put_fs_request(b, "mkdir", "/x");
        cbor_put_str(b, "mode");
        cbor_put_uint(b, 010000);
}

static void p_fs_chmod_no_mode(struct cbor_buf *b)
{
        put_fs_request(b, "chmod", "/x");
}

/* "entries": [ {n pairs, starting with type "file"} ]; the caller adds the rest. */
static void put_one_entry(struct cbor_buf *b, size_t n)
{
        cbor_put_str(b, "entries");
        cbor_put_array(b, 1);
        cbor_put_map(b, n);
        cbor_put_str(b, "type");
        cbor_put_str(b, "file");
}

static void p_entries_empty(struct cbor_buf *b)
{
        cbor_put_str(b, "entries");
        cbor_put_array(b, 0);
}

static void p_entries_many(struct cbor_buf *b)
{
        cbor_put_str(b, "entries");
        cbor_put_array(b, PROTO_FS_BATCH + 1);
        for (size_t i = 0; i < PROTO_FS_BATCH + 1; i++) {
                cbor_put_map(b, 2);
                cbor_put_str(b, "type");
                cbor_put_str(b, "dir");
                cbor_put_str(b, "mode");
                cbor_put_uint(b, 0755);
        }
}

static void p_entry_no_mode(struct cbor_buf *b)
{
        put_one_entry(b, 1);
}

static void p_entry_bad_type(struct cbor_buf *b)
{
        cbor_put_str(b, "entries");
        cbor_put_array(b, 1);
        cbor_put_map(b, 2);
        cbor_put_str(b, "type");
        cbor_put_str(b, "door");
        cbor_put_str(b, "mode");
        cbor_put_uint(b, 0);
}

static void p_entry_dotdot(struct cbor_buf *b)
{
        put_one_entry(b, 3);
        cbor_put_str(b, "mode");
        cbor_put_uint(b, 0644);
        cbor_put_str(b, "name");
        cbor_put_str(b, "..");
}

static void p_entry_slash(struct cbor_buf *b)
{
        put_one_entry(b, 3);
        cbor_put_str(b, "mode");
        cbor_put_uint(b, 0644);
        cbor_put_str(b, "name");
        cbor_put_str(b, "../../etc/passwd");
}

static void p_entry_empty_target(struct cbor_buf *b)
{
        put_one_entry(b, 3);
        cbor_put_str(b, "mode");
        cbor_put_uint(b, 0644);
        cbor_put_str(b, "target");
        cbor_put_str(b, "");
}

static void p_entry_mtime_huge(struct cbor_buf *b)
{
        put_one_entry(b, 3);
        cbor_put_str(b, "mode");
        cbor_put_uint(b, 0644);
        cbor_put_str(b, "mtime_ns");
        cbor_put_uint(b, (uint64_t)INT64_MAX + 1);
}

static void p_response_no_errno(struct cbor_buf *b)
{
        cbor_put_str(b, "message");
        cbor_put_str(b, "ok");
}

static void p_response_errno_neg(struct cbor_buf *b)
{
        cbor_put_str(b, "errno");
        cbor_put_int(b, -2);
}

static void p_response_bad_stat(struct cbor_buf *b)
{
        cbor_put_str(b, "errno");
        cbor_put_uint(b, 0);
        cbor_put_str(b, "stat");
        cbor_put_map(b, 1);
        cbor_put_str(b, "type");
        cbor_put_str(b, "file");
}

static int decode_any(const struct proto_msg *m)
{
        union {
                struct proto_ready ready;
                struct proto_error error;
                struct proto_exec_request req;
                struct proto_exec_failed failed;
                struct proto_exec_exited exited;
                struct proto_exec_started started;
                struct proto_exec_resize resize;
                struct proto_exec_signal sig;
                struct proto_stdin_ack ack;
                struct proto_data data;
                struct proto_relay_disconnected disc;
                struct proto_fs_request fsreq;
                struct proto_fs_entries entries;
                struct proto_fs_response fsresp;
        } u;
        int r;

        switch (m->type) {
        case PROTO_READY:
                return proto_decode_ready(m, &u.ready);
        case PROTO_ERROR:
                return proto_decode_error(m, &u.error);
        case PROTO_EXEC_REQUEST:
                r = proto_decode_exec_request(m, &u.req);
                if (r == 0)
                        proto_exec_request_free(&u.req);
                return r;
        case PROTO_EXEC_FAILED:
                return proto_decode_exec_failed(m, &u.failed);
        case PROTO_EXEC_EXITED:
                return proto_decode_exec_exited(m, &u.exited);
        case PROTO_EXEC_STARTED:
                return proto_decode_exec_started(m, &u.started);
        case PROTO_EXEC_RESIZE:
                return proto_decode_exec_resize(m, &u.resize);
        case PROTO_EXEC_SIGNAL:
                return proto_decode_exec_signal(m, &u.sig);
        case PROTO_EXEC_STDIN_ACK:
                return proto_decode_stdin_ack(m, &u.ack);
        case PROTO_FS_ACK:
                return proto_decode_stdin_ack(m, &u.ack);
        case PROTO_EXEC_STDIN:
        case PROTO_EXEC_STDOUT:
        case PROTO_EXEC_STDERR:
        case PROTO_FS_DATA:
                return proto_decode_data(m, &u.data);
        case PROTO_RELAY_CLIENT_DISCONNECTED:
                return proto_decode_relay_disconnected(m, &u.disc);
        case PROTO_FS_REQUEST:
                return proto_decode_fs_request(m, &u.fsreq);
        case PROTO_FS_ENTRIES:
                return proto_decode_fs_entries(m, &u.entries);
        case PROTO_FS_RESPONSE:
                return proto_decode_fs_response(m, &u.fsresp);
        default:
                fail_msg("no decoder for %s", m->type_name);
                return 0;
        }
}

static void test_payloads_refused(void **state)
{
        static const struct bad_payload cases[] = {
                {"core.exec.request", 1, p_argv_missing},
                {"core.exec.request", 1, p_argv_empty},
                {"core.exec.request", 1, p_argv_not_text},
                {"core.exec.request", 1, p_argv_nul},
                {"core.exec.request", 2, p_argv_dup},
                {"core.exec.request", 1, p_argv_too_many},
                {"core.exec.request", 1, p_argv_too_long},
                {"core.exec.request", 2, p_argv_ok_env_bad},
                {"core.exec.request", 2, p_tty_uint},
                {"core.exec.request", 2, p_rows_big},
                {"core.exec.request", 2, p_cwd_null},
                {"core.exec.request", 2, p_rlimits_many},
                {"core.exec.request", 2, p_rlimit_no_hard},
                {"core.exec.request", 2, p_rlimit_bad_text},
                {"core.exec.request", 2, p_rlimit_long_name},
                {"core.exec.request", 2, p_rlimit_not_map},
                {"core.ready", 0, p_nothing},
                {"core.ready", 1, p_version_text},
                {"core.error", 0, p_nothing},
                {"core.error", 1, p_kind_long},
                {"core.exec.failed", 0, p_nothing},
                {"core.exec.failed", 2, p_failed_errno_neg},
                {"core.exec.started", 0, p_nothing},
                {"core.exec.started", 1, p_pid_negative},
                {"core.exec.started", 1, p_pid_huge},
                {"core.exec.exited", 1, p_exited_no_code},
                {"core.exec.exited", 1, p_exited_code_big},
                {"core.exec.resize", 1, p_resize_rows_only},
                {"core.exec.signal", 0, p_nothing},
                {"core.exec.signal", 1, p_signal_zero},
                {"core.exec.signal", 1, p_signal_65},
                {"core.exec.stdout", 0, p_nothing},
                {"core.exec.stdin", 1, p_data_text},
                {"core.exec.stderr", 1, p_data_big},
                {"core.exec.stdin.ack", 0, p_nothing},
                {"core.exec.stdin.ack", 1, p_ack_negative},
                {"core.exec.stdin.ack", 2, p_ack_negative}, /* a pair short */
                {"core.exec.request", 2, p_detached_text},
                {"core.relay.client.disconnected", 1, p_disc_no_end},
                {"core.relay.client.disconnected", 2, p_disc_inverted},
                {"core.fs.request", 1, p_fs_no_path},
                {"core.fs.request", 2, p_fs_bad_op},
                {"core.fs.request", 2, p_fs_relative},
                {"core.fs.request", 2, p_fs_empty_path},
                {"core.fs.request", 2, p_fs_nul},
                {"core.fs.request", 2, p_fs_long_path},
                {"core.fs.request", 2, p_fs_rename_no_target},
                {"core.fs.request", 3, p_fs_rename_relative},
                {"core.fs.request", 3, p_fs_symlink_empty},
                {"core.fs.request", 3, p_fs_mode_big},
                {"core.fs.request", 2, p_fs_chmod_no_mode},
                {"core.fs.data", 1, p_data_big},
                {"core.fs.ack", 1, p_ack_negative},
                {"core.fs.entries", 0, p_nothing},
                {"core.fs.entries", 1, p_entries_empty},
                {"core.fs.entries", 1, p_entries_many},
                {"core.fs.entries", 1, p_entry_no_mode},
                {"core.fs.entries", 1, p_entry_bad_type},
                {"core.fs.entries", 1, p_entry_dotdot},
                {"core.fs.entries", 1, p_entry_slash},
                {"core.fs.entries", 1, p_entry_empty_target},
                {"core.fs.entries", 1, p_entry_mtime_huge},
                {"core.fs.response", 1, p_response_no_errno},
                {"core.fs.response", 1, p_response_errno_neg},
                {"core.fs.response", 2, p_response_bad_stat},
        };
        size_t i;

        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct cbor_buf b;
                struct proto_msg m;
                struct frame f;
                int r;

                cbor_buf_init(&b, 0);
                put_envelope(&b, cases[i].type, cases[i].pairs);
                cases[i].fn(&b);
                f = frame_of(&b);
                r = proto_decode(&f, &m);
                if (r == 0)
                        r = decode_any(&m);
                if (r != -EBADMSG)
                        fail_msg("case %zu (%s): %d", i, cases[i].type, r);
                cbor_buf_free(&b);
        }
}

static void test_message_truncated_utf8(void **state)
{
        /* 254 ASCII bytes and a 2-byte character: the cut must not split it */
        char text[300];
        struct proto_error out;
        struct proto_msg m;
        struct cbor_buf b;

        memset(text, 'a', 254);
        memcpy(text + 254, "\xc3\xa9tail", 7);
        cbor_buf_init(&b, 0);
        put_envelope(&b, "core.error", 2);
        cbor_put_str(&b, "kind");
        cbor_put_str(&b, PROTO_ERR_MALFORMED);
        cbor_put_str(&b, "message");
        cbor_put_str(&b, text);
        m = decode_body(&b);
        assert_int_equal(proto_decode_error(&m, &out), 0);
        assert_int_equal(strlen(out.message), 254);
        assert_string_equal(out.kind, PROTO_ERR_MALFORMED);
        assert_string_equal(out.offending_type, "");
        cbor_buf_free(&b);
}

static void test_rlimit_forms(void **state)
{
        struct proto_exec_request req;
        struct proto_msg m;
        struct cbor_buf b;

        cbor_buf_init(&b, 0);
        put_envelope(&b, "core.exec.request", 2);
        cbor_put_str(&b, "rlimits");
        cbor_put_array(&b, 2);
        cbor_put_map(&b, 4);
        cbor_put_str(&b, "hard");
        cbor_put_str(&b, "unlimited");
        cbor_put_str(&b, "comment");
        cbor_put_str(&b, "ignored");
        cbor_put_str(&b, "soft");
        cbor_put_uint(&b, UINT64_MAX);
        cbor_put_str(&b, "resource");
        cbor_put_str(&b, "core");
        cbor_put_map(&b, 3);
        cbor_put_str(&b, "resource");
        cbor_put_str(&b, "stack");
        cbor_put_str(&b, "soft");
        cbor_put_uint(&b, 8388608);
        cbor_put_str(&b, "hard");
        cbor_put_uint(&b, 0);
        cbor_put_str(&b, "argv");
        cbor_put_array(&b, 1);
        cbor_put_str(&b, "sh");
        m = decode_body(&b);
        assert_int_equal(proto_decode_exec_request(&m, &req), 0);
        assert_int_equal(req.n_rlimits, 2);
        assert_string_equal(req.rlimits[0].resource, "core");
        assert_true(req.rlimits[0].soft == UINT64_MAX);
        assert_true(req.rlimits[0].hard == UINT64_MAX);
        assert_string_equal(req.rlimits[1].resource, "stack");
        assert_true(req.rlimits[1].soft == 8388608);
        assert_true(req.rlimits[1].hard == 0);
        proto_exec_request_free(&req);
        cbor_buf_free(&b);
}

/* Every prefix of every valid frame body must be refused without a crash
 * or a leak (ASan/valgrind watch the exec.request path). */
static void test_truncated_every_offset(void **state)
{
        struct proto_exec_request req;
        struct cbor_buf b;
        size_t cut;

        request_sample(&req);
        cbor_buf_init(&b, 0);
        assert_int_equal(proto_encode_exec_request(&b, 1, &req), 0);
        for (cut = 0; cut < b.len - FRAME_HEADER_LEN; cut++) {
                uint8_t *copy = malloc(cut ? cut : 1);
                struct frame f = {.id = 1};
                struct proto_msg m;
                int r;

                assert_non_null(copy);
                memcpy(copy, b.data + FRAME_HEADER_LEN, cut);
                f.body = copy;
                f.body_len = cut;
                r = proto_decode(&f, &m);
                if (r == 0)
                        r = decode_any(&m);
                assert_int_equal(r, -EBADMSG);
                free(copy);
        }
        cbor_buf_free(&b);
}

static void test_encoder_buffer_limit(void **state)
{
        struct proto_exec_request req;
        struct cbor_buf b;

        request_sample(&req);
        cbor_buf_init(&b, 64);
        assert_int_equal(proto_encode_exec_request(&b, 1, &req), -EMSGSIZE);
        assert_int_equal(b.len, 0);
        cbor_buf_free(&b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_type_names),
                cmocka_unit_test(test_ready),
                cmocka_unit_test(test_empty_messages),
                cmocka_unit_test(test_error),
                cmocka_unit_test(test_exec_request),
                cmocka_unit_test(test_small_messages),
                cmocka_unit_test(test_data),
                cmocka_unit_test(test_relay_disconnected),
                cmocka_unit_test(test_fs_request),
                cmocka_unit_test(test_fs_request_defaults),
                cmocka_unit_test(test_fs_entries),
                cmocka_unit_test(test_fs_response),
                cmocka_unit_test(test_fs_data_ack),
                cmocka_unit_test(test_envelope_rules),
                cmocka_unit_test(test_envelope_refused),
                cmocka_unit_test(test_unknown_fields_skipped),
                cmocka_unit_test(test_payloads_refused),
                cmocka_unit_test(test_message_truncated_utf8),
                cmocka_unit_test(test_rlimit_forms),
                cmocka_unit_test(test_truncated_every_offset),
                cmocka_unit_test(test_encoder_buffer_limit),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
