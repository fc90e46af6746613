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
};

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
};
static const char *const request_names[] = {
        [REQ_ARGV] = "argv", [REQ_ENV] = "env",   [REQ_CWD] = "cwd",
        [REQ_USER] = "user", [REQ_TTY] = "tty",   [REQ_STDIN] = "stdin",
        [REQ_ROWS] = "rows", [REQ_COLS] = "cols", [REQ_RLIMITS] = "rlimits",
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
        size_t start, i, pairs = 7;

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

int proto_encode_data(struct cbor_buf *b, uint32_t id, enum proto_type t, const void *data,
                      size_t len)
{
        size_t start;

        if (t != PROTO_EXEC_STDIN && t != PROTO_EXEC_STDOUT && t != PROTO_EXEC_STDERR)
                return -EINVAL;
        if (len > PROTO_DATA_CHUNK)
                return -EMSGSIZE;
        start = begin_msg(b, id, 0, t, 1);
        cbor_put_str(b, "data");
        cbor_put_bytes(b, data, len);
        return frame_end(b, start);
}
