/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the message layer. The first 5 input bytes are a
 * frame's id and flags, the rest its body. proto_decode() checks the
 * envelope; then every payload decoder runs on the payload (whatever the
 * type says), and whatever one of them accepts is encoded again with the
 * matching encoder (which must accept it: encoders and decoders apply the
 * same rules), read back through a frame_reader, decoded again and compared
 * field by field with the first decoding. core.fs.entries records are
 * re-encoded one by one into a new frame and compared record by record.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/proto/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct ctx {
        uint32_t id;
        struct cbor_buf out;
        struct frame_reader fr;
        struct proto_msg again;
};

/* Reads back the single frame just encoded into c->out: c->again. */
static void reread(struct ctx *c, enum proto_type t)
{
        struct frame f;

        assert(c->out.err == 0);
        frame_reader_free(&c->fr);
        frame_reader_init(&c->fr);
        assert(frame_reader_feed(&c->fr, c->out.data, c->out.len) == 0);
        assert(frame_reader_next(&c->fr, &f) == 1);
        assert(frame_reader_next(&c->fr, &f) == 0);
        assert(proto_decode(&f, &c->again) == 0);
        assert(c->again.type == t);
        assert(c->again.id == c->id);
        assert(c->again.version == PROTO_VERSION);
        assert((c->again.flags & proto_type_flags(t)) == proto_type_flags(t));
        cbor_buf_reset(&c->out);
}

static void fuzz_ready(struct ctx *c, const struct proto_msg *m)
{
        struct proto_ready a, b;

        if (proto_decode_ready(m, &a) < 0)
                return;
        c->id = 0;
        assert(proto_encode_ready(&c->out, &a) == 0);
        reread(c, PROTO_READY);
        assert(proto_decode_ready(&c->again, &b) == 0);
        assert(a.version == b.version && a.boot_time_ns == b.boot_time_ns &&
               a.ready_time_ns == b.ready_time_ns && strcmp(a.agent_version, b.agent_version) == 0);
}

static void fuzz_error(struct ctx *c, const struct proto_msg *m)
{
        struct proto_error a, b;

        if (proto_decode_error(m, &a) < 0)
                return;
        assert(proto_encode_error(&c->out, c->id, &a) == 0);
        reread(c, PROTO_ERROR);
        assert(proto_decode_error(&c->again, &b) == 0);
        assert(strcmp(a.kind, b.kind) == 0 && strcmp(a.message, b.message) == 0 &&
               strcmp(a.offending_type, b.offending_type) == 0);
}

static void same_strv(char **a, size_t na, char **b, size_t nb)
{
        size_t i;

        assert(na == nb && a && b && !a[na] && !b[nb]);
        for (i = 0; i < na; i++)
                assert(strcmp(a[i], b[i]) == 0);
}

static bool same_opt(const char *a, const char *b)
{
        return a == b || (a && b && strcmp(a, b) == 0);
}

static void fuzz_request(struct ctx *c, const struct proto_msg *m)
{
        struct proto_exec_request a, b;
        size_t i;

        if (proto_decode_exec_request(m, &a) < 0)
                return;
        assert(a.argc >= 1);
        assert(proto_encode_exec_request(&c->out, c->id, &a) == 0);
        reread(c, PROTO_EXEC_REQUEST);
        assert(proto_decode_exec_request(&c->again, &b) == 0);
        same_strv(a.argv, a.argc, b.argv, b.argc);
        same_strv(a.env, a.envc, b.env, b.envc);
        assert(same_opt(a.cwd, b.cwd) && same_opt(a.user, b.user));
        assert(a.tty == b.tty && a.has_stdin == b.has_stdin && a.detached == b.detached &&
               a.rows == b.rows && a.cols == b.cols && a.n_rlimits == b.n_rlimits);
        for (i = 0; i < a.n_rlimits; i++)
                assert(strcmp(a.rlimits[i].resource, b.rlimits[i].resource) == 0 &&
                       a.rlimits[i].soft == b.rlimits[i].soft &&
                       a.rlimits[i].hard == b.rlimits[i].hard);
        proto_exec_request_free(&a);
        proto_exec_request_free(&b);
}

static void fuzz_failed(struct ctx *c, const struct proto_msg *m)
{
        struct proto_exec_failed a, b;

        if (proto_decode_exec_failed(m, &a) < 0)
                return;
        assert(proto_encode_exec_failed(&c->out, c->id, &a) == 0);
        reread(c, PROTO_EXEC_FAILED);
        assert(proto_decode_exec_failed(&c->again, &b) == 0);
        assert(strcmp(a.kind, b.kind) == 0 && a.err == b.err && strcmp(a.message, b.message) == 0 &&
               strcmp(a.stage, b.stage) == 0);
}

static void fuzz_small(struct ctx *c, const struct proto_msg *m)
{
        struct proto_exec_exited ea, eb;
        struct proto_exec_started sa, sb;
        struct proto_exec_resize ra, rb;
        struct proto_exec_signal ga, gb;
        struct proto_stdin_ack aa, ab;

        if (proto_decode_exec_exited(m, &ea) == 0) {
                assert(proto_encode_exec_exited(&c->out, c->id, &ea) == 0);
                reread(c, PROTO_EXEC_EXITED);
                assert(proto_decode_exec_exited(&c->again, &eb) == 0);
                assert(ea.code == eb.code && ea.signal == eb.signal);
        }
        if (proto_decode_exec_started(m, &sa) == 0) {
                assert(proto_encode_exec_started(&c->out, c->id, &sa) == 0);
                reread(c, PROTO_EXEC_STARTED);
                assert(proto_decode_exec_started(&c->again, &sb) == 0);
                assert(sa.pid == sb.pid);
        }
        if (proto_decode_exec_resize(m, &ra) == 0) {
                assert(proto_encode_exec_resize(&c->out, c->id, &ra) == 0);
                reread(c, PROTO_EXEC_RESIZE);
                assert(proto_decode_exec_resize(&c->again, &rb) == 0);
                assert(ra.rows == rb.rows && ra.cols == rb.cols);
        }
        if (proto_decode_exec_signal(m, &ga) == 0) {
                assert(proto_encode_exec_signal(&c->out, c->id, &ga) == 0);
                reread(c, PROTO_EXEC_SIGNAL);
                assert(proto_decode_exec_signal(&c->again, &gb) == 0);
                assert(ga.signal == gb.signal);
        }
        if (proto_decode_stdin_ack(m, &aa) == 0) {
                assert(proto_encode_stdin_ack(&c->out, c->id, &aa) == 0);
                reread(c, PROTO_EXEC_STDIN_ACK);
                assert(proto_decode_stdin_ack(&c->again, &ab) == 0);
                assert(aa.bytes == ab.bytes);
        }
}

static void fuzz_data(struct ctx *c, const struct proto_msg *m)
{
        static const enum proto_type types[] = {PROTO_EXEC_STDIN, PROTO_EXEC_STDOUT,
                                                PROTO_EXEC_STDERR, PROTO_FS_DATA};
        struct proto_data a, b;
        enum proto_type t = types[c->id % 4];

        if (proto_decode_data(m, &a) < 0)
                return;
        assert(proto_encode_data(&c->out, c->id, t, a.data, a.len) == 0);
        reread(c, t);
        assert(proto_decode_data(&c->again, &b) == 0);
        assert(a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0));
}

static void fuzz_disconnected(struct ctx *c, const struct proto_msg *m)
{
        struct proto_relay_disconnected a, b;

        if (proto_decode_relay_disconnected(m, &a) < 0)
                return;
        assert(a.id_start <= a.id_end);
        c->id = 0;
        assert(proto_encode_relay_disconnected(&c->out, &a) == 0);
        reread(c, PROTO_RELAY_CLIENT_DISCONNECTED);
        assert(proto_decode_relay_disconnected(&c->again, &b) == 0);
        assert(a.id_start == b.id_start && a.id_end == b.id_end);
        c->id = m->id;
}

static void fuzz_fs_request(struct ctx *c, const struct proto_msg *m)
{
        static struct proto_fs_request a, b;

        if (proto_decode_fs_request(m, &a) < 0)
                return;
        assert(a.path[0] == '/');
        assert(proto_encode_fs_request(&c->out, c->id, &a) == 0);
        reread(c, PROTO_FS_REQUEST);
        assert(proto_decode_fs_request(&c->again, &b) == 0);
        assert(a.op == b.op && strcmp(a.path, b.path) == 0 && strcmp(a.target, b.target) == 0 &&
               a.mode == b.mode && a.follow == b.follow && a.parents == b.parents &&
               a.recursive == b.recursive && a.exclusive == b.exclusive);
}

static bool same_stat(const struct proto_fs_stat *a, const struct proto_fs_stat *b)
{
        return strcmp(a->name, b->name) == 0 && a->type == b->type && a->mode == b->mode &&
               a->size == b->size && a->uid == b->uid && a->gid == b->gid &&
               a->mtime_ns == b->mtime_ns && strcmp(a->target, b->target) == 0;
}

/* Every record is re-encoded into one frame whose records must match. */
static void fuzz_fs_entries(struct ctx *c, const struct proto_msg *m)
{
        static struct proto_fs_stat a[PROTO_FS_BATCH], b;
        struct proto_fs_entries it, again;
        struct cbor_buf items;
        size_t n = 0;
        int k;

        if (proto_decode_fs_entries(m, &it) < 0)
                return;
        assert(it.count >= 1 && it.count <= PROTO_FS_BATCH);
        cbor_buf_init(&items, 0);
        while ((k = proto_fs_entries_next(&it, &a[n])) == 1) {
                assert(a[n].name[0] == '\0' ||
                       (strchr(a[n].name, '/') == NULL && strcmp(a[n].name, "..") != 0));
                assert(proto_fs_stat_put(&items, &a[n]) == 0);
                n++;
        }
        assert(k == 0);
        assert(proto_encode_fs_entries(&c->out, c->id, items.data, items.len, n) == 0);
        cbor_buf_free(&items);
        reread(c, PROTO_FS_ENTRIES);
        assert(proto_decode_fs_entries(&c->again, &again) == 0);
        assert(again.count == n);
        for (size_t i = 0; i < n; i++) {
                assert(proto_fs_entries_next(&again, &b) == 1);
                assert(same_stat(&a[i], &b));
        }
        assert(proto_fs_entries_next(&again, &b) == 0);
}

static void fuzz_fs_response(struct ctx *c, const struct proto_msg *m)
{
        static struct proto_fs_response a, b;

        if (proto_decode_fs_response(m, &a) < 0)
                return;
        assert(proto_encode_fs_response(&c->out, c->id, &a) == 0);
        reread(c, PROTO_FS_RESPONSE);
        assert(proto_decode_fs_response(&c->again, &b) == 0);
        assert(a.err == b.err && strcmp(a.message, b.message) == 0 && strcmp(a.path, b.path) == 0 &&
               a.has_stat == b.has_stat && (!a.has_stat || same_stat(&a.stat, &b.stat)) &&
               a.truncated == b.truncated);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct frame f;
        struct proto_msg m;
        struct ctx c;

        if (size < 5)
                return 0;
        f.id = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 | (uint32_t)data[2] << 8 | data[3];
        f.flags = data[4];
        f.body = data + 5;
        f.body_len = size - 5;
        if (proto_decode(&f, &m) < 0)
                return 0;
        assert(m.id == f.id && m.flags == f.flags);
        assert(m.payload >= f.body && m.payload + m.payload_len <= f.body + f.body_len);
        assert(m.type_name[0] != '\0');
        assert(strlen(m.type_name) < sizeof(m.type_name));
        if (m.type != PROTO_UNKNOWN)
                assert(strcmp(m.type_name, proto_type_name(m.type)) == 0);

        c.id = m.id;
        cbor_buf_init(&c.out, 0);
        frame_reader_init(&c.fr);
        fuzz_ready(&c, &m);
        c.id = m.id;
        fuzz_error(&c, &m);
        fuzz_request(&c, &m);
        fuzz_failed(&c, &m);
        fuzz_small(&c, &m);
        fuzz_data(&c, &m);
        fuzz_disconnected(&c, &m);
        fuzz_fs_request(&c, &m);
        fuzz_fs_entries(&c, &m);
        fuzz_fs_response(&c, &m);
        frame_reader_free(&c.fr);
        cbor_buf_free(&c.out);
        return 0;
}
