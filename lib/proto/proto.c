/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: the host/agent message schema on top of frames and
 * CBOR (docs/protocol.md is the wire reference).
 *
 * One table maps each proto_type to its wire name and the frame flags its
 * frames carry. proto_decode() checks the envelope map {v, t, p} of a frame
 * body and hands back the payload map as a slice; the per-message decoders
 * walk that map with one loop each: a key is matched by name, its value read
 * with the typed helpers below (which apply the limits of proto.h), unknown
 * keys are skipped whole, duplicate keys are refused, and required fields
 * are checked once the map is done. A decoder fills a local struct and copies
 * it out only on success, so *ret is untouched on failure.
 *
 * Encoders write a whole frame: header via frame_begin(), envelope, payload,
 * frame_end(), which also removes the partial frame if anything failed.
 * Encoders refuse (-EINVAL) values that the decoders would refuse, so what
 * one side sends the other side accepts.
 */
#include "proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../core/macro.h"

static const struct {
        const char *name;
        uint8_t flags;
} type_table[PROTO_TYPE_COUNT] = {
        [PROTO_READY] = {"core.ready", 0},
        [PROTO_PING] = {"core.ping", FRAME_SESSION_START},
        [PROTO_PONG] = {"core.pong", FRAME_TERMINAL},
        [PROTO_ERROR] = {"core.error", FRAME_TERMINAL},
        [PROTO_SHUTDOWN] = {"core.shutdown", FRAME_SHUTDOWN},
        [PROTO_EXEC_REQUEST] = {"core.exec.request", FRAME_SESSION_START},
        [PROTO_EXEC_STARTED] = {"core.exec.started", 0},
        [PROTO_EXEC_STDIN] = {"core.exec.stdin", 0},
        [PROTO_EXEC_STDIN_ACK] = {"core.exec.stdin.ack", 0},
        [PROTO_EXEC_STDOUT] = {"core.exec.stdout", 0},
        [PROTO_EXEC_STDERR] = {"core.exec.stderr", 0},
        [PROTO_EXEC_EXITED] = {"core.exec.exited", FRAME_TERMINAL},
        [PROTO_EXEC_FAILED] = {"core.exec.failed", FRAME_TERMINAL},
        [PROTO_EXEC_RESIZE] = {"core.exec.resize", 0},
        [PROTO_EXEC_SIGNAL] = {"core.exec.signal", 0},
        [PROTO_RELAY_CLIENT_DISCONNECTED] = {"core.relay.client.disconnected", 0},
        [PROTO_FS_REQUEST] = {"core.fs.request", FRAME_SESSION_START},
        [PROTO_FS_DATA] = {"core.fs.data", 0},
        [PROTO_FS_ACK] = {"core.fs.ack", 0},
        [PROTO_FS_ENTRIES] = {"core.fs.entries", 0},
        [PROTO_FS_CANCEL] = {"core.fs.cancel", 0},
        [PROTO_FS_RESPONSE] = {"core.fs.response", FRAME_TERMINAL},
};

static const char *const fs_op_names[] = {
        [PROTO_FS_OP_STAT] = "stat",       [PROTO_FS_OP_LIST] = "list",
        [PROTO_FS_OP_READ] = "read",       [PROTO_FS_OP_WRITE] = "write",
        [PROTO_FS_OP_MKDIR] = "mkdir",     [PROTO_FS_OP_REMOVE] = "remove",
        [PROTO_FS_OP_RENAME] = "rename",   [PROTO_FS_OP_CHMOD] = "chmod",
        [PROTO_FS_OP_SYMLINK] = "symlink",
};

static const char *const fs_type_names[] = {
        [PROTO_FS_TYPE_FILE] = "file",       [PROTO_FS_TYPE_DIR] = "dir",
        [PROTO_FS_TYPE_SYMLINK] = "symlink", [PROTO_FS_TYPE_CHAR] = "char",
        [PROTO_FS_TYPE_BLOCK] = "block",     [PROTO_FS_TYPE_FIFO] = "fifo",
        [PROTO_FS_TYPE_SOCKET] = "socket",
};

/* The index of the text in names[] (entry 0 unused), or 0. */
static unsigned name_index(const char *const *names, size_t n, const char *s, size_t len)
{
        for (unsigned i = 1; i < n; i++)
                if (names[i] && strlen(names[i]) == len && memcmp(names[i], s, len) == 0)
                        return i;
        return 0;
}

const char *proto_fs_op_name(enum proto_fs_op op)
{
        if ((unsigned)op >= ARRAY_SIZE(fs_op_names))
                return NULL;
        return fs_op_names[op];
}

static const char *fs_type_name(enum proto_fs_type t)
{
        if ((unsigned)t >= ARRAY_SIZE(fs_type_names))
                return NULL;
        return fs_type_names[t];
}

const char *proto_type_name(enum proto_type t)
{
        if ((unsigned)t >= PROTO_TYPE_COUNT)
                return NULL;
        return type_table[t].name;
}

uint8_t proto_type_flags(enum proto_type t)
{
        if ((unsigned)t >= PROTO_TYPE_COUNT)
                return 0;
        return type_table[t].flags;
}

enum proto_type proto_type_from_name(const char *name, size_t len)
{
        unsigned t;

        for (t = PROTO_UNKNOWN + 1; t < PROTO_TYPE_COUNT; t++)
                if (strlen(type_table[t].name) == len && memcmp(type_table[t].name, name, len) == 0)
                        return (enum proto_type)t;
        return PROTO_UNKNOWN;
}

static bool key_is(const char *key, size_t len, const char *name)
{
        return strlen(name) == len && memcmp(key, name, len) == 0;
}

/* Marks field bit `bit` as seen; -EBADMSG if it already was (duplicate key). */
static int mark_seen(unsigned *seen, unsigned bit)
{
        if (*seen & 1u << bit)
                return -EBADMSG;
        *seen |= 1u << bit;
        return 0;
}

/* ---- typed field readers (limits of proto.h applied here) ---- */

static int get_u64(struct cbor_reader *r, uint64_t max, uint64_t *ret)
{
        uint64_t v;

        if (cbor_get_uint(r, &v) < 0 || v > max)
                return -EBADMSG;
        *ret = v;
        return 0;
}

static int get_u32(struct cbor_reader *r, uint32_t *ret)
{
        uint64_t v;
        int k;

        k = get_u64(r, UINT32_MAX, &v);
        if (k < 0)
                return k;
        *ret = (uint32_t)v;
        return 0;
}

static int get_u16(struct cbor_reader *r, uint16_t *ret)
{
        uint64_t v;
        int k;

        k = get_u64(r, UINT16_MAX, &v);
        if (k < 0)
                return k;
        *ret = (uint16_t)v;
        return 0;
}

static int get_i32(struct cbor_reader *r, int32_t min, int32_t max, int32_t *ret)
{
        int64_t v;

        if (cbor_get_int(r, &v) < 0 || v < min || v > max)
                return -EBADMSG;
        *ret = (int32_t)v;
        return 0;
}

static int get_i64(struct cbor_reader *r, int64_t *ret)
{
        return cbor_get_int(r, ret) < 0 ? -EBADMSG : 0;
}

static int get_bool(struct cbor_reader *r, bool *ret)
{
        return cbor_get_bool(r, ret) < 0 ? -EBADMSG : 0;
}

/* Length of the longest prefix of s (at most max bytes) that does not cut a
 * UTF-8 sequence in two. */
static size_t utf8_prefix(const char *s, size_t len, size_t max)
{
        size_t n = len;

        if (n <= max)
                return n;
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
                n--;
        return n;
}

/* Text into a fixed array (NUL-terminated). Longer text is refused, or cut
 * to fit when `truncate` (messages meant for humans). Embedded NULs are
 * refused. */
static int get_text_fixed(struct cbor_reader *r, char *buf, size_t size, bool truncate)
{
        const char *s;
        size_t n;

        if (cbor_get_text(r, &s, &n) < 0 || memchr(s, '\0', n))
                return -EBADMSG;
        if (n >= size) {
                if (!truncate)
                        return -EBADMSG;
                n = utf8_prefix(s, n, size - 1);
        }
        memcpy(buf, s, n);
        buf[n] = '\0';
        return 0;
}

/* A NUL-free text of at most PROTO_MAX_STRING bytes, copied. */
static int get_string(struct cbor_reader *r, char **ret)
{
        int k;

        k = cbor_get_strdup(r, PROTO_MAX_STRING, ret);
        return k == -ENOMEM ? k : k < 0 ? -EBADMSG : 0;
}

/*
 * The loop shared by the envelope and all payload decoders: data must hold
 * exactly one map. `names` lists the fields a message knows (at most 32);
 * for each pair whose key is one of them, `field` reads the value into `out`
 * given the field's index. Keys must be text; unknown keys are skipped,
 * duplicate keys and trailing bytes refused, and every field whose bit is in
 * `required` must be present.
 */
typedef int (*field_fn)(struct cbor_reader *r, unsigned idx, void *out);

static int decode_fields(const uint8_t *data, size_t len, const char *const *names, size_t n_names,
                         field_fn field, void *out, unsigned required)
{
        struct cbor_reader r;
        unsigned seen = 0;
        size_t pairs, i;
        int k;

        cbor_reader_init(&r, data, len);
        if (cbor_get_map(&r, &pairs) < 0)
                return -EBADMSG;
        for (i = 0; i < pairs; i++) {
                const char *key;
                size_t klen;
                unsigned idx;

                if (cbor_get_text(&r, &key, &klen) < 0)
                        return -EBADMSG;
                for (idx = 0; idx < n_names; idx++)
                        if (key_is(key, klen, names[idx]))
                                break;
                if (idx == n_names) {
                        if (cbor_skip(&r) < 0)
                                return -EBADMSG;
                        continue;
                }
                if (mark_seen(&seen, idx) < 0)
                        return -EBADMSG;
                k = field(&r, idx, out);
                if (k < 0)
                        return k;
        }
        if (!cbor_reader_done(&r) || (seen & required) != required)
                return -EBADMSG;
        return 0;
}

#define DECODE_FIELDS(m, names, field, out, required)                                              \
        decode_fields((m)->payload, (m)->payload_len, names, ARRAY_SIZE(names), field, out,        \
                      required)

/* ---- envelope ---- */

enum { ENV_V, ENV_T, ENV_P };
static const char *const envelope_names[] = {[ENV_V] = "v", [ENV_T] = "t", [ENV_P] = "p"};

static int envelope_field(struct cbor_reader *r, unsigned idx, void *out)
{
        struct proto_msg *m = out;
        struct cbor_reader peek = *r;
        struct cbor_item item;

        switch (idx) {
        case ENV_V:
                return get_u32(r, &m->version);
        case ENV_T:
                if (get_text_fixed(r, m->type_name, sizeof(m->type_name), false) < 0 ||
                    !m->type_name[0])
                        return -EBADMSG;
                m->type = proto_type_from_name(m->type_name, strlen(m->type_name));
                return 0;
        default: /* "p": a map, kept as a slice */
                if (cbor_next(&peek, &item) < 0 || item.type != CBOR_MAP)
                        return -EBADMSG;
                m->payload = r->p;
                if (cbor_skip(r) < 0)
                        return -EBADMSG;
                m->payload_len = (size_t)(r->p - m->payload);
                return 0;
        }
}

int proto_decode(const struct frame *f, struct proto_msg *ret)
{
        struct proto_msg m = {.id = f->id, .flags = f->flags};
        int k;

        k = decode_fields(f->body, f->body_len, envelope_names, ARRAY_SIZE(envelope_names),
                          envelope_field, &m, 1u << ENV_V | 1u << ENV_T | 1u << ENV_P);
        if (k < 0)
                return k;
        *ret = m;
        return 0;
}

/* ---- payload decoders ---- */

enum { READY_VERSION, READY_AGENT_VERSION, READY_BOOT_TIME, READY_READY_TIME };
static const char *const ready_names[] = {
        [READY_VERSION] = "version",
        [READY_AGENT_VERSION] = "agent_version",
        [READY_BOOT_TIME] = "boot_time_ns",
        [READY_READY_TIME] = "ready_time_ns",
};

static int ready_field(struct cbor_reader *r, unsigned idx, void *out)
{
        struct proto_ready *m = out;

        switch (idx) {
        case READY_VERSION:
                return get_u32(r, &m->version);
        case READY_AGENT_VERSION:
                return get_text_fixed(r, m->agent_version, sizeof(m->agent_version), false);
        case READY_BOOT_TIME:
                return get_u64(r, UINT64_MAX, &m->boot_time_ns);
        default:
                return get_u64(r, UINT64_MAX, &m->ready_time_ns);
        }
}

int proto_decode_ready(const struct proto_msg *m, struct proto_ready *ret)
{
        struct proto_ready v = {0};
        int k;

        k = DECODE_FIELDS(m, ready_names, ready_field, &v, 1u << READY_VERSION);
        if (k < 0)
                return k;
        *ret = v;
        return 0;
}

enum { ERROR_KIND, ERROR_MESSAGE, ERROR_OFFENDING_TYPE };
static const char *const error_names[] = {
        [ERROR_KIND] = "kind",
        [ERROR_MESSAGE] = "message",
        [ERROR_OFFENDING_TYPE] = "offending_type",
};

static int error_field(struct cbor_reader *r, unsigned idx, void *out)
{
        struct proto_error *m = out;

        switch (idx) {
        case ERROR_KIND:
                return get_text_fixed(r, m->kind, sizeof(m->kind), false);
        case ERROR_MESSAGE:
                return get_text_fixed(r, m->message, sizeof(m->message), true);
        default:
                return get_text_fixed(r, m->offending_type, sizeof(m->offending_type), false);
        }
}

int proto_decode_error(const struct proto_msg *m, struct proto_error *ret)
{
        struct proto_error v = {0};
        int k;

        k = DECODE_FIELDS(m, error_names, error_field, &v, 1u << ERROR_KIND);
        if (k < 0)
                return k;
        *ret = v;
        return 0;
}

/* An array of at most max strings into a new NULL-terminated vector.
 * With `env`, every entry must look like KEY=VALUE with a non-empty KEY. */
static int get_strv(struct cbor_reader *r, size_t max, bool env, char ***ret, size_t *ret_n)
{
        char **v;
        size_t n, i;
        int k;

        if (cbor_get_array(r, &n) < 0 || n > max)
                return -EBADMSG;
        v = calloc(n + 1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        for (i = 0; i < n; i++) {
                k = get_string(r, &v[i]);
                if (k == 0 && env && (v[i][0] == '=' || !strchr(v[i], '=')))
                        k = -EBADMSG;
                if (k < 0) {
                        proto_strv_free(v);
                        return k;
                }
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

/* soft/hard of an rlimit: a uint, or the text "unlimited" (UINT64_MAX). */
static int get_rlim_value(struct cbor_reader *r, uint64_t *ret)
{
        struct cbor_item item;

        if (cbor_next(r, &item) < 0)
                return -EBADMSG;
        if (item.type == CBOR_UINT) {
                *ret = item.u;
                return 0;
        }
        if (item.type == CBOR_TEXT &&
            key_is((const char *)item.str.ptr, item.str.len, "unlimited")) {
                *ret = UINT64_MAX;
                return 0;
        }
        return -EBADMSG;
}

enum { RLIMIT_RESOURCE, RLIMIT_SOFT, RLIMIT_HARD };
static const char *const rlimit_names[] = {
        [RLIMIT_RESOURCE] = "resource",
        [RLIMIT_SOFT] = "soft",
        [RLIMIT_HARD] = "hard",
};

static int rlimit_field(struct cbor_reader *r, unsigned idx, void *out)
{
        struct proto_rlimit *m = out;

        switch (idx) {
        case RLIMIT_RESOURCE:
                if (get_text_fixed(r, m->resource, sizeof(m->resource), false) < 0 ||
                    !m->resource[0])
                        return -EBADMSG;
                return 0;
        case RLIMIT_SOFT:
                return get_rlim_value(r, &m->soft);
        default:
                return get_rlim_value(r, &m->hard);
        }
}

/* One {resource, soft, hard} map (all three required); the reader advances
 * past it. */
static int get_rlimit(struct cbor_reader *r, struct proto_rlimit *ret)
{
        struct proto_rlimit v = {0};
        const uint8_t *start = r->p;
        int k;

        if (cbor_skip(r) < 0)
                return -EBADMSG;
        k = decode_fields(start, (size_t)(r->p - start), rlimit_names, ARRAY_SIZE(rlimit_names),
                          rlimit_field, &v,
                          1u << RLIMIT_RESOURCE | 1u << RLIMIT_SOFT | 1u << RLIMIT_HARD);
        if (k < 0)
                return k;
        *ret = v;
        return 0;
}

enum {
        REQ_ARGV,
        REQ_ENV,
        REQ_CWD,
        REQ_USER,
        REQ_TTY,
        REQ_STDIN,
        REQ_ROWS,
        REQ_COLS,
        REQ_RLIMITS,
        REQ_DETACHED,
};
static const char *const request_names[] = {
        [REQ_ARGV] = "argv",         [REQ_ENV] = "env",   [REQ_CWD] = "cwd",
        [REQ_USER] = "user",         [REQ_TTY] = "tty",   [REQ_STDIN] = "stdin",
        [REQ_ROWS] = "rows",         [REQ_COLS] = "cols", [REQ_RLIMITS] = "rlimits",
        [REQ_DETACHED] = "detached",
};

static int request_field(struct cbor_reader *r, unsigned idx, void *out)
{
        struct proto_exec_request *m = out;
        size_t n, i;
        int k;

        switch (idx) {
        case REQ_ARGV:
                k = get_strv(r, PROTO_MAX_ARGS, false, &m->argv, &m->argc);
                return k < 0 ? k : m->argc == 0 ? -EBADMSG : 0;
        case REQ_ENV:
                proto_strv_free(m->env); /* the empty default */
                m->env = NULL;
                return get_strv(r, PROTO_MAX_ENV, true, &m->env, &m->envc);
        case REQ_CWD:
                return get_string(r, &m->cwd);
        case REQ_USER:
                return get_string(r, &m->user);
        case REQ_TTY:
                return get_bool(r, &m->tty);
        case REQ_STDIN:
                return get_bool(r, &m->has_stdin);
        case REQ_ROWS:
                return get_u16(r, &m->rows);
        case REQ_COLS:
                return get_u16(r, &m->cols);
        case REQ_DETACHED:
                return get_bool(r, &m->detached);
        default:
                if (cbor_get_array(r, &n) < 0 || n > PROTO_MAX_RLIMITS)
                        return -EBADMSG;
                for (i = 0; i < n; i++) {
                        k = get_rlimit(r, &m->rlimits[i]);
                        if (k < 0)
                                return k;
                }
                m->n_rlimits = n;
                return 0;
        }
}

int proto_decode_exec_request(const struct proto_msg *m, struct proto_exec_request *ret)
{
        _cleanup_(proto_exec_request_free) struct proto_exec_request v = {
                .rows = 24,
                .cols = 80,
        };
        int k;

        v.env = calloc(1, sizeof(*v.env));
        if (!v.env)
                return -ENOMEM;
        k = DECODE_FIELDS(m, request_names, request_field, &v, 1u << REQ_ARGV);
        if (k < 0)
                return k;
        *ret = v;
        v = (struct proto_exec_request){0};
        return 0;
}

void proto_strv_free(char **v)
{
        char **p;

        if (!v)
                return;
        for (p = v; *p; p++)
                free(*p);
        free(v);
}

void proto_exec_request_free(struct proto_exec_request *req)
{
        proto_strv_free(req->argv);
        proto_strv_free(req->env);
        free(req->cwd);
        free(req->user);
        *req = (struct proto_exec_request){0};
}

enum { FAILED_KIND, FAILED_ERRNO, FAILED_MESSAGE, FAILED_STAGE };
static const char *const failed_names[] = {
        [FAILED_KIND] = "kind",
        [FAILED_ERRNO] = "errno",
        [FAILED_MESSAGE] = "message",
        [FAILED_STAGE] = "stage",
};

static int failed_field(struct cbor_reader *r, unsigned idx, void *out)
{
        struct proto_exec_failed *m = out;

        switch (idx) {
        case FAILED_KIND:
                return get_text_fixed(r, m->kind, sizeof(m->kind), false);
        case FAILED_ERRNO:
                return get_i32(r, 0, INT32_MAX, &m->err);
        case FAILED_MESSAGE:
                return get_text_fixed(r, m->message, sizeof(m->message), true);
        default:
                return get_text_fixed(r, m->stage, sizeof(m->stage), false);
        }
}

int proto_decode_exec_failed(const struct proto_msg *m, struct proto_exec_failed *ret)
{
        struct proto_exec_failed v = {0};
        int k;

        k = DECODE_FIELDS(m, failed_names, failed_field, &v, 1u << FAILED_KIND);
        if (k < 0)
                return k;
        *ret = v;
        return 0;
}

enum { EXITED_CODE, EXITED_SIGNAL };
static const char *const exited_names[] = {
        [EXITED_CODE] = "code",
        [EXITED_SIGNAL] = "signal",
};

static int exited_field(struct cbor_reader *r, unsigned idx, void *out)
{
        struct proto_exec_exited *m = out;

        if (idx == EXITED_CODE)
                return get_i32(r, INT32_MIN, INT32_MAX, &m->code);
        return get_i32(r, 0, PROTO_MAX_SIGNAL, &m->signal);
}

int proto_decode_exec_exited(const struct proto_msg *m, struct proto_exec_exited *ret)
{
        struct proto_exec_exited v = {0};
        int k;

        k = DECODE_FIELDS(m, exited_names, exited_field, &v, 1u << EXITED_CODE);
        if (k < 0)
                return k;
        *ret = v;
        return 0;
}

static const char *const started_names[] = {"pid"};

static int started_field(struct cbor_reader *r, unsigned idx, void *out)
{
        struct proto_exec_started *m = out;

        return get_u32(r, &m->pid);
}

int proto_decode_exec_started(const struct proto_msg *m, struct proto_exec_started *ret)
{
        struct proto_exec_started v = {0};
        int k;

        k = DECODE_FIELDS(m, started_names, started_field, &v, 1u);
        if (k < 0)
                return k;
        *ret = v;
        return 0;
}

static const char *const resize_names[] = {"rows", "cols"};

static int resize_field(struct cbor_reader *r, unsigned idx, void *out)
{
        struct proto_exec_resize *m = out;

        return get_u16(r, idx == 0 ? &m->rows : &m->cols);
}

int proto_decode_exec_resize(const struct proto_msg *m, struct proto_exec_resize *ret)
{
        struct proto_exec_resize v = {0};
        int k;

        k = DECODE_FIELDS(m, resize_names, resize_field, &v, 3u);
        if (k < 0)
                return k;
        *ret = v;
        return 0;
}

static const char *const signal_names[] = {"signal"};

static int signal_field(struct cbor_reader *r, unsigned idx, void *out)
{
        struct proto_exec_signal *m = out;

        return get_i32(r, 1, PROTO_MAX_SIGNAL, &m->signal);
}

int proto_decode_exec_signal(const struct proto_msg *m, struct proto_exec_signal *ret)
{
        struct proto_exec_signal v = {0};
        int k;

        k = DECODE_FIELDS(m, signal_names, signal_field, &v, 1u);
        if (k < 0)
                return k;
        *ret = v;
        return 0;
}

static const char *const ack_names[] = {"bytes"};

static int ack_field(struct cbor_reader *r, unsigned idx, void *out)
{
        struct proto_stdin_ack *m = out;

        return get_u64(r, UINT64_MAX, &m->bytes);
}

int proto_decode_stdin_ack(const struct proto_msg *m, struct proto_stdin_ack *ret)
{
        struct proto_stdin_ack v = {0};
        int k;

        k = DECODE_FIELDS(m, ack_names, ack_field, &v, 1u);
        if (k < 0)
                return k;
        *ret = v;
        return 0;
}

static const char *const data_names[] = {"data"};

static int data_field(struct cbor_reader *r, unsigned idx, void *out)
{
        struct proto_data *m = out;

        if (cbor_get_bytes(r, &m->data, &m->len) < 0 || m->len > PROTO_DATA_CHUNK)
                return -EBADMSG;
        return 0;
}

int proto_decode_data(const struct proto_msg *m, struct proto_data *ret)
{
        struct proto_data v = {0};
        int k;

        k = DECODE_FIELDS(m, data_names, data_field, &v, 1u);
        if (k < 0)
                return k;
        *ret = v;
        return 0;
}

enum { DISC_ID_START, DISC_ID_END };
static const char *const disconnected_names[] = {
        [DISC_ID_START] = "id_start",
        [DISC_ID_END] = "id_end",
};

static int disconnected_field(struct cbor_reader *r, unsigned idx, void *out)
{
        struct proto_relay_disconnected *m = out;

        return get_u32(r, idx == DISC_ID_START ? &m->id_start : &m->id_end);
}

int proto_decode_relay_disconnected(const struct proto_msg *m, struct proto_relay_disconnected *ret)
{
        struct proto_relay_disconnected v = {0};
        int k;

        k = DECODE_FIELDS(m, disconnected_names, disconnected_field, &v,
                          1u << DISC_ID_START | 1u << DISC_ID_END);
        if (k < 0)
                return k;
        if (v.id_start > v.id_end)
                return -EBADMSG;
        *ret = v;
        return 0;
}

/* ---- files ---- */

/* A text naming one of names[] (index 0 unused): its index. */
static int get_enum(struct cbor_reader *r, const char *const *names, size_t n, unsigned *ret)
{
        const char *s;
        size_t len;
        unsigned i;

        if (cbor_get_text(r, &s, &len) < 0)
                return -EBADMSG;
        i = name_index(names, n, s, len);
        if (i == 0)
                return -EBADMSG;
        *ret = i;
        return 0;
}

static int get_mode(struct cbor_reader *r, uint32_t *ret)
{
        uint64_t v;
        int k;

        k = get_u64(r, 07777, &v);
        if (k < 0)
                return k;
        *ret = (uint32_t)v;
        return 0;
}

/* An absolute path (what the path fields of a request hold). */
static bool fs_path_ok(const char *s)
{
        return s[0] == '/' && strnlen(s, PROTO_FS_PATH_MAX) < PROTO_FS_PATH_MAX;
}

/* A single path component: no '/', not "." or "..". */
static bool fs_name_ok(const char *s)
{
        return s[0] && strnlen(s, PROTO_FS_NAME_MAX) < PROTO_FS_NAME_MAX && !strchr(s, '/') &&
               strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

enum { ST_NAME, ST_TYPE, ST_MODE, ST_SIZE, ST_UID, ST_GID, ST_MTIME, ST_TARGET };
static const char *const stat_names[] = {
        [ST_NAME] = "name", [ST_TYPE] = "type", [ST_MODE] = "mode",      [ST_SIZE] = "size",
        [ST_UID] = "uid",   [ST_GID] = "gid",   [ST_MTIME] = "mtime_ns", [ST_TARGET] = "target",
};

static int stat_field(struct cbor_reader *r, unsigned idx, void *out)
{
        struct proto_fs_stat *m = out;
        unsigned type;
        int k;

        switch (idx) {
        case ST_NAME:
                k = get_text_fixed(r, m->name, sizeof(m->name), false);
                return k < 0 ? k : fs_name_ok(m->name) ? 0 : -EBADMSG;
        case ST_TYPE:
                k = get_enum(r, fs_type_names, ARRAY_SIZE(fs_type_names), &type);
                m->type = (enum proto_fs_type)type;
                return k;
        case ST_MODE:
                return get_mode(r, &m->mode);
        case ST_SIZE:
                return get_u64(r, UINT64_MAX, &m->size);
        case ST_UID:
                return get_u32(r, &m->uid);
        case ST_GID:
                return get_u32(r, &m->gid);
        case ST_MTIME:
                return get_i64(r, &m->mtime_ns);
        default:
                k = get_text_fixed(r, m->target, sizeof(m->target), false);
                return k < 0 ? k : m->target[0] ? 0 : -EBADMSG;
        }
}

/* One stat map (type and mode required); the reader advances past it. */
static int get_stat(struct cbor_reader *r, struct proto_fs_stat *ret)
{
        const uint8_t *start = r->p;

        if (cbor_skip(r) < 0)
                return -EBADMSG;
        *ret = (struct proto_fs_stat){0};
        return decode_fields(start, (size_t)(r->p - start), stat_names, ARRAY_SIZE(stat_names),
                             stat_field, ret, 1u << ST_TYPE | 1u << ST_MODE);
}

enum {
        FSREQ_OP,
        FSREQ_PATH,
        FSREQ_TARGET,
        FSREQ_MODE,
        FSREQ_FOLLOW,
        FSREQ_PARENTS,
        FSREQ_RECURSIVE,
        FSREQ_EXCLUSIVE,
};
static const char *const fs_request_names[] = {
        [FSREQ_OP] = "op",
        [FSREQ_PATH] = "path",
        [FSREQ_TARGET] = "target",
        [FSREQ_MODE] = "mode",
        [FSREQ_FOLLOW] = "follow",
        [FSREQ_PARENTS] = "parents",
        [FSREQ_RECURSIVE] = "recursive",
        [FSREQ_EXCLUSIVE] = "exclusive",
};

struct fs_request_ctx {
        struct proto_fs_request *req;
        bool has_mode;
};

static int fs_request_field(struct cbor_reader *r, unsigned idx, void *out)
{
        struct fs_request_ctx *c = out;
        struct proto_fs_request *m = c->req;
        unsigned op;
        int k;

        switch (idx) {
        case FSREQ_OP:
                k = get_enum(r, fs_op_names, ARRAY_SIZE(fs_op_names), &op);
                m->op = (enum proto_fs_op)op;
                return k;
        case FSREQ_PATH:
                return get_text_fixed(r, m->path, sizeof(m->path), false);
        case FSREQ_TARGET:
                return get_text_fixed(r, m->target, sizeof(m->target), false);
        case FSREQ_MODE:
                c->has_mode = true;
                return get_mode(r, &m->mode);
        case FSREQ_FOLLOW:
                return get_bool(r, &m->follow);
        case FSREQ_PARENTS:
                return get_bool(r, &m->parents);
        case FSREQ_RECURSIVE:
                return get_bool(r, &m->recursive);
        default:
                return get_bool(r, &m->exclusive);
        }
}

/* Whether op takes a target, and whether that target is a path. */
static bool fs_op_has_target(enum proto_fs_op op)
{
        return op == PROTO_FS_OP_RENAME || op == PROTO_FS_OP_SYMLINK;
}

int proto_decode_fs_request(const struct proto_msg *m, struct proto_fs_request *ret)
{
        struct proto_fs_request *v;
        struct fs_request_ctx c;
        int k;

        v = calloc(1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        c = (struct fs_request_ctx){.req = v};
        k = DECODE_FIELDS(m, fs_request_names, fs_request_field, &c,
                          1u << FSREQ_OP | 1u << FSREQ_PATH);
        if (k == 0 && !fs_path_ok(v->path))
                k = -EBADMSG;
        if (k == 0 && fs_op_has_target(v->op) &&
            (!v->target[0] || (v->op == PROTO_FS_OP_RENAME && !fs_path_ok(v->target))))
                k = -EBADMSG;
        if (k == 0 && !fs_op_has_target(v->op))
                v->target[0] = '\0';
        if (k == 0 && !c.has_mode) {
                if (v->op == PROTO_FS_OP_CHMOD)
                        k = -EBADMSG;
                v->mode = v->op == PROTO_FS_OP_WRITE ? 0644 : v->op == PROTO_FS_OP_MKDIR ? 0755 : 0;
        }
        if (k == 0)
                *ret = *v;
        free(v);
        return k;
}

static const char *const fs_entries_names[] = {"entries"};

static int fs_entries_field(struct cbor_reader *r, unsigned idx, void *out)
{
        struct proto_fs_entries *m = out;
        struct proto_fs_stat *st;
        size_t n;
        int k = 0;

        if (cbor_get_array(r, &n) < 0 || n == 0 || n > PROTO_FS_BATCH)
                return -EBADMSG;
        m->count = n;
        m->r = *r;
        st = malloc(sizeof(*st));
        if (!st)
                return -ENOMEM;
        while (n-- > 0 && k == 0)
                k = get_stat(r, st);
        free(st);
        return k;
}

int proto_decode_fs_entries(const struct proto_msg *m, struct proto_fs_entries *ret)
{
        struct proto_fs_entries v = {0};
        int k;

        k = DECODE_FIELDS(m, fs_entries_names, fs_entries_field, &v, 1u);
        if (k < 0)
                return k;
        *ret = v;
        return 0;
}

int proto_fs_entries_next(struct proto_fs_entries *it, struct proto_fs_stat *ret)
{
        int k;

        if (it->count == 0)
                return 0;
        k = get_stat(&it->r, ret);
        if (k < 0)
                return k;
        it->count--;
        return 1;
}

enum { FSRESP_ERRNO, FSRESP_MESSAGE, FSRESP_PATH, FSRESP_STAT, FSRESP_TRUNCATED };
static const char *const fs_response_names[] = {
        [FSRESP_ERRNO] = "errno", [FSRESP_MESSAGE] = "message",     [FSRESP_PATH] = "path",
        [FSRESP_STAT] = "stat",   [FSRESP_TRUNCATED] = "truncated",
};

static int fs_response_field(struct cbor_reader *r, unsigned idx, void *out)
{
        struct proto_fs_response *m = out;

        switch (idx) {
        case FSRESP_ERRNO:
                return get_i32(r, 0, INT32_MAX, &m->err);
        case FSRESP_MESSAGE:
                return get_text_fixed(r, m->message, sizeof(m->message), true);
        case FSRESP_PATH:
                return get_text_fixed(r, m->path, sizeof(m->path), false);
        case FSRESP_STAT:
                m->has_stat = true;
                return get_stat(r, &m->stat);
        default:
                return get_bool(r, &m->truncated);
        }
}

int proto_decode_fs_response(const struct proto_msg *m, struct proto_fs_response *ret)
{
        struct proto_fs_response *v;
        int k;

        v = calloc(1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        k = DECODE_FIELDS(m, fs_response_names, fs_response_field, v, 1u << FSRESP_ERRNO);
        if (k == 0)
                *ret = *v;
        free(v);
        return k;
}

/* ---- encoders ---- */

/* Starts a frame of type t and its envelope, up to the payload map head. */
static size_t begin_msg(struct cbor_buf *b, uint32_t id, uint8_t flags, enum proto_type t,
                        size_t payload_pairs)
{
        size_t start = frame_begin(b, id, flags | proto_type_flags(t));

        cbor_put_map(b, 3);
        cbor_put_str(b, "v");
        cbor_put_uint(b, PROTO_VERSION);
        cbor_put_str(b, "t");
        cbor_put_str(b, proto_type_name(t));
        cbor_put_str(b, "p");
        cbor_put_map(b, payload_pairs);
        return start;
}

/* A fixed-size text field, which may lack its NUL if the caller filled it. */
static void put_fixed(struct cbor_buf *b, const char *key, const char *s, size_t size)
{
        cbor_put_str(b, key);
        cbor_put_text(b, s, strnlen(s, size));
}

static void put_key_uint(struct cbor_buf *b, const char *key, uint64_t v)
{
        cbor_put_str(b, key);
        cbor_put_uint(b, v);
}

static void put_key_int(struct cbor_buf *b, const char *key, int64_t v)
{
        cbor_put_str(b, key);
        cbor_put_int(b, v);
}

/* The same rules as get_text_fixed(): the field must fit and hold no NUL
 * before its end, which strnlen() gives for free; non-truncating fields must
 * leave room for the NUL. */
static bool fixed_ok(const char *s, size_t size)
{
        return strnlen(s, size) < size;
}

int proto_encode_ready(struct cbor_buf *b, const struct proto_ready *m)
{
        size_t start;

        if (!fixed_ok(m->agent_version, sizeof(m->agent_version)))
                return -EINVAL;
        start = begin_msg(b, 0, 0, PROTO_READY, 4);
        put_key_uint(b, "version", m->version);
        put_fixed(b, "agent_version", m->agent_version, sizeof(m->agent_version));
        put_key_uint(b, "boot_time_ns", m->boot_time_ns);
        put_key_uint(b, "ready_time_ns", m->ready_time_ns);
        return frame_end(b, start);
}

int proto_encode_empty(struct cbor_buf *b, uint32_t id, uint8_t flags, enum proto_type t)
{
        size_t start;

        if (t <= PROTO_UNKNOWN || t >= PROTO_TYPE_COUNT)
                return -EINVAL;
        start = begin_msg(b, id, flags, t, 0);
        return frame_end(b, start);
}

int proto_encode_error(struct cbor_buf *b, uint32_t id, const struct proto_error *m)
{
        size_t start;

        if (!fixed_ok(m->kind, sizeof(m->kind)) ||
            !fixed_ok(m->offending_type, sizeof(m->offending_type)))
                return -EINVAL;
        start = begin_msg(b, id, 0, PROTO_ERROR, 3);
        put_fixed(b, "kind", m->kind, sizeof(m->kind));
        put_fixed(b, "message", m->message, sizeof(m->message) - 1);
        put_fixed(b, "offending_type", m->offending_type, sizeof(m->offending_type));
        return frame_end(b, start);
}

static bool string_ok(const char *s)
{
        return strnlen(s, PROTO_MAX_STRING + 1) <= PROTO_MAX_STRING;
}

static bool strv_ok(char *const *v, size_t n, size_t max, bool env)
{
        size_t i;

        if (n > max || (n > 0 && !v))
                return false;
        for (i = 0; i < n; i++)
                if (!v[i] || !string_ok(v[i]) || (env && (v[i][0] == '=' || !strchr(v[i], '='))))
                        return false;
        return true;
}

static void put_strv(struct cbor_buf *b, const char *key, char *const *v, size_t n)
{
        size_t i;

        cbor_put_str(b, key);
        cbor_put_array(b, n);
        for (i = 0; i < n; i++)
                cbor_put_str(b, v[i]);
}

static void put_rlim_value(struct cbor_buf *b, const char *key, uint64_t v)
{
        cbor_put_str(b, key);
        if (v == UINT64_MAX)
                cbor_put_str(b, "unlimited");
        else
                cbor_put_uint(b, v);
}

int proto_encode_exec_request(struct cbor_buf *b, uint32_t id, const struct proto_exec_request *m)
{
        size_t start, i, pairs = 8;

        if (m->argc == 0 || !strv_ok(m->argv, m->argc, PROTO_MAX_ARGS, false) ||
            !strv_ok(m->env, m->envc, PROTO_MAX_ENV, true) || (m->cwd && !string_ok(m->cwd)) ||
            (m->user && !string_ok(m->user)) || m->n_rlimits > PROTO_MAX_RLIMITS)
                return -EINVAL;
        for (i = 0; i < m->n_rlimits; i++)
                if (!m->rlimits[i].resource[0] ||
                    !fixed_ok(m->rlimits[i].resource, sizeof(m->rlimits[i].resource)))
                        return -EINVAL;

        pairs += !!m->cwd + !!m->user;
        start = begin_msg(b, id, 0, PROTO_EXEC_REQUEST, pairs);
        put_strv(b, "argv", m->argv, m->argc);
        put_strv(b, "env", m->env, m->envc);
        if (m->cwd) {
                cbor_put_str(b, "cwd");
                cbor_put_str(b, m->cwd);
        }
        if (m->user) {
                cbor_put_str(b, "user");
                cbor_put_str(b, m->user);
        }
        cbor_put_str(b, "tty");
        cbor_put_bool(b, m->tty);
        cbor_put_str(b, "stdin");
        cbor_put_bool(b, m->has_stdin);
        cbor_put_str(b, "detached");
        cbor_put_bool(b, m->detached);
        put_key_uint(b, "rows", m->rows);
        put_key_uint(b, "cols", m->cols);
        cbor_put_str(b, "rlimits");
        cbor_put_array(b, m->n_rlimits);
        for (i = 0; i < m->n_rlimits; i++) {
                const struct proto_rlimit *rl = &m->rlimits[i];

                cbor_put_map(b, 3);
                put_fixed(b, "resource", rl->resource, sizeof(rl->resource));
                put_rlim_value(b, "soft", rl->soft);
                put_rlim_value(b, "hard", rl->hard);
        }
        return frame_end(b, start);
}

int proto_encode_exec_started(struct cbor_buf *b, uint32_t id, const struct proto_exec_started *m)
{
        size_t start = begin_msg(b, id, 0, PROTO_EXEC_STARTED, 1);

        put_key_uint(b, "pid", m->pid);
        return frame_end(b, start);
}

int proto_encode_exec_failed(struct cbor_buf *b, uint32_t id, const struct proto_exec_failed *m)
{
        size_t start;

        if (!fixed_ok(m->kind, sizeof(m->kind)) || !fixed_ok(m->stage, sizeof(m->stage)) ||
            m->err < 0)
                return -EINVAL;
        start = begin_msg(b, id, 0, PROTO_EXEC_FAILED, 4);
        put_fixed(b, "kind", m->kind, sizeof(m->kind));
        put_key_int(b, "errno", m->err);
        put_fixed(b, "message", m->message, sizeof(m->message) - 1);
        put_fixed(b, "stage", m->stage, sizeof(m->stage));
        return frame_end(b, start);
}

int proto_encode_exec_exited(struct cbor_buf *b, uint32_t id, const struct proto_exec_exited *m)
{
        size_t start;

        if (m->signal < 0 || m->signal > PROTO_MAX_SIGNAL)
                return -EINVAL;
        start = begin_msg(b, id, 0, PROTO_EXEC_EXITED, 2);
        put_key_int(b, "code", m->code);
        put_key_int(b, "signal", m->signal);
        return frame_end(b, start);
}

int proto_encode_exec_resize(struct cbor_buf *b, uint32_t id, const struct proto_exec_resize *m)
{
        size_t start = begin_msg(b, id, 0, PROTO_EXEC_RESIZE, 2);

        put_key_uint(b, "rows", m->rows);
        put_key_uint(b, "cols", m->cols);
        return frame_end(b, start);
}

int proto_encode_exec_signal(struct cbor_buf *b, uint32_t id, const struct proto_exec_signal *m)
{
        size_t start;

        if (m->signal < 1 || m->signal > PROTO_MAX_SIGNAL)
                return -EINVAL;
        start = begin_msg(b, id, 0, PROTO_EXEC_SIGNAL, 1);
        put_key_int(b, "signal", m->signal);
        return frame_end(b, start);
}

int proto_encode_stdin_ack(struct cbor_buf *b, uint32_t id, const struct proto_stdin_ack *m)
{
        size_t start = begin_msg(b, id, 0, PROTO_EXEC_STDIN_ACK, 1);

        put_key_uint(b, "bytes", m->bytes);
        return frame_end(b, start);
}

int proto_encode_relay_disconnected(struct cbor_buf *b, const struct proto_relay_disconnected *m)
{
        size_t start;

        if (m->id_start > m->id_end)
                return -EINVAL;
        start = begin_msg(b, 0, 0, PROTO_RELAY_CLIENT_DISCONNECTED, 2);
        put_key_uint(b, "id_start", m->id_start);
        put_key_uint(b, "id_end", m->id_end);
        return frame_end(b, start);
}

int proto_encode_data(struct cbor_buf *b, uint32_t id, enum proto_type t, const void *data,
                      size_t len)
{
        size_t start;

        if (t != PROTO_EXEC_STDIN && t != PROTO_EXEC_STDOUT && t != PROTO_EXEC_STDERR &&
            t != PROTO_FS_DATA)
                return -EINVAL;
        if (len > PROTO_DATA_CHUNK)
                return -EMSGSIZE;
        start = begin_msg(b, id, 0, t, 1);
        cbor_put_str(b, "data");
        cbor_put_bytes(b, data, len);
        return frame_end(b, start);
}

int proto_encode_fs_ack(struct cbor_buf *b, uint32_t id, const struct proto_stdin_ack *m)
{
        size_t start = begin_msg(b, id, 0, PROTO_FS_ACK, 1);

        put_key_uint(b, "bytes", m->bytes);
        return frame_end(b, start);
}

int proto_encode_fs_request(struct cbor_buf *b, uint32_t id, const struct proto_fs_request *m)
{
        bool target = fs_op_has_target(m->op);
        size_t start;

        if (!proto_fs_op_name(m->op) || !fs_path_ok(m->path) || m->mode > 07777 ||
            (target && (!m->target[0] || !fixed_ok(m->target, sizeof(m->target)) ||
                        (m->op == PROTO_FS_OP_RENAME && !fs_path_ok(m->target)))))
                return -EINVAL;
        start = begin_msg(b, id, 0, PROTO_FS_REQUEST, 7 + target);
        cbor_put_str(b, "op");
        cbor_put_str(b, proto_fs_op_name(m->op));
        cbor_put_str(b, "path");
        cbor_put_str(b, m->path);
        if (target) {
                cbor_put_str(b, "target");
                cbor_put_str(b, m->target);
        }
        put_key_uint(b, "mode", m->mode);
        cbor_put_str(b, "follow");
        cbor_put_bool(b, m->follow);
        cbor_put_str(b, "parents");
        cbor_put_bool(b, m->parents);
        cbor_put_str(b, "recursive");
        cbor_put_bool(b, m->recursive);
        cbor_put_str(b, "exclusive");
        cbor_put_bool(b, m->exclusive);
        return frame_end(b, start);
}

static bool fs_stat_ok(const struct proto_fs_stat *st)
{
        return fs_type_name(st->type) && st->mode <= 07777 &&
               fixed_ok(st->name, sizeof(st->name)) && (!st->name[0] || fs_name_ok(st->name)) &&
               fixed_ok(st->target, sizeof(st->target));
}

static void put_stat(struct cbor_buf *b, const struct proto_fs_stat *st)
{
        cbor_put_map(b, 6 + !!st->name[0] + !!st->target[0]);
        if (st->name[0]) {
                cbor_put_str(b, "name");
                cbor_put_str(b, st->name);
        }
        cbor_put_str(b, "type");
        cbor_put_str(b, fs_type_name(st->type));
        put_key_uint(b, "mode", st->mode);
        put_key_uint(b, "size", st->size);
        put_key_uint(b, "uid", st->uid);
        put_key_uint(b, "gid", st->gid);
        put_key_int(b, "mtime_ns", st->mtime_ns);
        if (st->target[0]) {
                cbor_put_str(b, "target");
                cbor_put_str(b, st->target);
        }
}

int proto_fs_stat_put(struct cbor_buf *b, const struct proto_fs_stat *st)
{
        if (!fs_stat_ok(st))
                return -EINVAL;
        put_stat(b, st);
        return b->err;
}

int proto_encode_fs_entries(struct cbor_buf *b, uint32_t id, const void *items, size_t len,
                            size_t count)
{
        size_t start;

        if (count == 0 || count > PROTO_FS_BATCH)
                return -EINVAL;
        start = begin_msg(b, id, 0, PROTO_FS_ENTRIES, 1);
        cbor_put_str(b, "entries");
        cbor_put_array(b, count);
        cbor_buf_append(b, items, len);
        return frame_end(b, start);
}

int proto_encode_fs_response(struct cbor_buf *b, uint32_t id, const struct proto_fs_response *m)
{
        size_t start;

        if (m->err < 0 || !fixed_ok(m->path, sizeof(m->path)) ||
            (m->has_stat && !fs_stat_ok(&m->stat)))
                return -EINVAL;
        start = begin_msg(b, id, 0, PROTO_FS_RESPONSE,
                          2 + !!m->path[0] + m->has_stat + m->truncated);
        put_key_int(b, "errno", m->err);
        put_fixed(b, "message", m->message, sizeof(m->message) - 1);
        if (m->path[0]) {
                cbor_put_str(b, "path");
                cbor_put_str(b, m->path);
        }
        if (m->has_stat) {
                cbor_put_str(b, "stat");
                put_stat(b, &m->stat);
        }
        if (m->truncated) {
                cbor_put_str(b, "truncated");
                cbor_put_bool(b, true);
        }
        return frame_end(b, start);
}
