/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The message schema shared by the host and the agent (DESIGN §5).
 *
 * A frame body is a CBOR map { "v": version, "t": type name, "p": payload map }.
 * proto_decode() checks that envelope and returns the payload as a slice; a
 * proto_decode_<message>() per payload turns it into a struct. Decoders
 * ignore unknown payload fields (for forward compatibility) and reject wrong
 * types, missing required fields and out-of-range values with -EBADMSG.
 * Strings in decoded structs are owned copies (free with the matching
 * *_free()); byte payloads (stdin/stdout data) are slices into the frame.
 *
 * Encoders append one complete frame (header and body) to a cbor_buf and
 * return 0, or -EMSGSIZE/-ENOMEM.
 *
 * Versions: each side sends its highest version in every frame's "v"; the
 * agent announces its own in core.ready and both then use
 * min(host, agent). A frame whose "v" is below PROTO_MIN_VERSION is refused
 * with core.error kind "unsupported_protocol_version".
 *
 * Sessions: the host picks a session id for each request (SESSION_START);
 * every reply carries that id; the last reply carries TERMINAL. Id 0 is the
 * control id (core.ready, core.shutdown).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/cbor.h"
#include "../core/frame.h"

#define PROTO_VERSION     1u
#define PROTO_MIN_VERSION 1u

/* Limits applied by the decoders (both directions are treated as hostile). */
#define PROTO_MAX_ARGS     4096u
#define PROTO_MAX_ENV      4096u
#define PROTO_MAX_STRING   (64u * 1024u) /* one argument, env entry, path */
#define PROTO_MAX_RLIMITS  16u
#define PROTO_DATA_CHUNK   (64u * 1024u)  /* stdout/stderr/stdin bytes per frame */
#define PROTO_STDIN_WINDOW (256u * 1024u) /* unacknowledged stdin bytes per session */
#define PROTO_MAX_SIGNAL   64             /* signal numbers are 1..64 (Linux _NSIG - 1) */

enum proto_type {
        PROTO_UNKNOWN = 0,
        PROTO_READY,          /* core.ready          G->H  id 0 */
        PROTO_PING,           /* core.ping           H->G  SESSION_START */
        PROTO_PONG,           /* core.pong           G->H  TERMINAL */
        PROTO_ERROR,          /* core.error          both  TERMINAL */
        PROTO_SHUTDOWN,       /* core.shutdown       H->G  id 0, SHUTDOWN */
        PROTO_EXEC_REQUEST,   /* core.exec.request   H->G  SESSION_START */
        PROTO_EXEC_STARTED,   /* core.exec.started   G->H */
        PROTO_EXEC_STDIN,     /* core.exec.stdin     H->G  empty data = EOF */
        PROTO_EXEC_STDIN_ACK, /* core.exec.stdin.ack G->H  bytes written to the process */
        PROTO_EXEC_STDOUT,    /* core.exec.stdout    G->H */
        PROTO_EXEC_STDERR,    /* core.exec.stderr    G->H */
        PROTO_EXEC_EXITED,    /* core.exec.exited    G->H  TERMINAL */
        PROTO_EXEC_FAILED,    /* core.exec.failed    G->H  TERMINAL */
        PROTO_EXEC_RESIZE,    /* core.exec.resize    H->G */
        PROTO_EXEC_SIGNAL,    /* core.exec.signal    H->G  to the process group */
        PROTO_TYPE_COUNT,
};

/* "core.exec.request" etc.; NULL for PROTO_UNKNOWN. */
const char *proto_type_name(enum proto_type t);
enum proto_type proto_type_from_name(const char *name, size_t len);
/* The frame flags every frame of type t carries (the table above); encoders
 * add them to whatever flags the caller passes. 0 for PROTO_UNKNOWN. */
uint8_t proto_type_flags(enum proto_type t);

/* A decoded envelope. type_name is set even for PROTO_UNKNOWN types so the
 * receiver can answer core.error naming it. */
struct proto_msg {
        uint32_t id;
        uint8_t flags;
        uint32_t version;
        enum proto_type type;
        char type_name[64];
        const uint8_t *payload; /* the CBOR map, a slice of the frame body */
        size_t payload_len;
};

int proto_decode(const struct frame *f, struct proto_msg *ret);

/* ---- payloads ---- */

struct proto_ready {
        uint32_t version;       /* highest protocol version the agent speaks */
        char agent_version[32]; /* e.g. "0.1.0" */
        uint64_t boot_time_ns;  /* CLOCK_BOOTTIME when the agent started */
        uint64_t ready_time_ns; /* CLOCK_BOOTTIME when it sent core.ready */
};

/* core.error kinds */
#define PROTO_ERR_MALFORMED        "malformed_message"
#define PROTO_ERR_UNSUPPORTED_TYPE "unsupported_message_type"
#define PROTO_ERR_UNSUPPORTED_VER  "unsupported_protocol_version"
#define PROTO_ERR_INVALID_SESSION  "invalid_session"
#define PROTO_ERR_BUSY             "resource_limit"

struct proto_error {
        char kind[40];
        char message[256];       /* truncated if longer */
        char offending_type[64]; /* may be empty */
};

struct proto_rlimit {
        char resource[16]; /* "nofile", "nproc", ... (see agent) */
        uint64_t soft;     /* UINT64_MAX = unlimited */
        uint64_t hard;
};

struct proto_exec_request {
        char **argv; /* argc entries, argc >= 1, NULL-terminated */
        size_t argc;
        char **env; /* "KEY=VALUE", envc entries, NULL-terminated */
        size_t envc;
        char *cwd;      /* NULL: the user's home, or / */
        char *user;     /* NULL: root; "name", "uid", "uid:gid", "name:group" */
        bool tty;       /* run on a PTY (stdout and stderr merged) */
        bool has_stdin; /* "stdin": the host will send stdin; false: /dev/null */
        uint16_t rows, cols;
        struct proto_rlimit rlimits[PROTO_MAX_RLIMITS];
        size_t n_rlimits;
};

/* core.exec.failed kinds */
#define PROTO_EXEC_NOT_FOUND         "not_found"
#define PROTO_EXEC_PERMISSION_DENIED "permission_denied"
#define PROTO_EXEC_NOT_EXECUTABLE    "not_executable"
#define PROTO_EXEC_BAD_CWD           "bad_cwd"
#define PROTO_EXEC_BAD_USER          "bad_user"
#define PROTO_EXEC_BAD_ARGS          "bad_args"
#define PROTO_EXEC_RESOURCE_LIMIT    "resource_limit"
#define PROTO_EXEC_PTY_FAILED        "pty_setup_failed"
#define PROTO_EXEC_OTHER             "other"

struct proto_exec_failed {
        char kind[32];
        int32_t err; /* errno, 0 if none */
        char message[256];
        char stage[32]; /* "cwd", "user", "rlimit", "exec", "pty", ... */
};

struct proto_exec_exited {
        int32_t code;   /* exit status, or -1 when killed by a signal */
        int32_t signal; /* signal number, 0 when it exited */
};

struct proto_exec_started {
        uint32_t pid;
};

struct proto_exec_resize {
        uint16_t rows, cols;
};

struct proto_exec_signal {
        int32_t signal;
};

struct proto_data {
        const uint8_t *data;
        size_t len;
};

struct proto_stdin_ack {
        uint64_t bytes; /* stdin bytes written to the process since the previous ack */
};

/* Decoders: payload slice -> struct. */
int proto_decode_ready(const struct proto_msg *m, struct proto_ready *ret);
int proto_decode_error(const struct proto_msg *m, struct proto_error *ret);
int proto_decode_exec_request(const struct proto_msg *m, struct proto_exec_request *ret);
void proto_exec_request_free(struct proto_exec_request *req); /* frees members, not req */
void proto_strv_free(char **v); /* a NULL-terminated vector and its strings; NULL is fine */
int proto_decode_exec_failed(const struct proto_msg *m, struct proto_exec_failed *ret);
int proto_decode_exec_exited(const struct proto_msg *m, struct proto_exec_exited *ret);
int proto_decode_exec_started(const struct proto_msg *m, struct proto_exec_started *ret);
int proto_decode_exec_resize(const struct proto_msg *m, struct proto_exec_resize *ret);
int proto_decode_exec_signal(const struct proto_msg *m, struct proto_exec_signal *ret);
int proto_decode_stdin_ack(const struct proto_msg *m, struct proto_stdin_ack *ret);
/* For core.exec.stdin, core.exec.stdout, core.exec.stderr. */
int proto_decode_data(const struct proto_msg *m, struct proto_data *ret);

/* Encoders: append one whole frame to b. */
int proto_encode_ready(struct cbor_buf *b, const struct proto_ready *m);
int proto_encode_empty(struct cbor_buf *b, uint32_t id, uint8_t flags, enum proto_type t);
int proto_encode_error(struct cbor_buf *b, uint32_t id, const struct proto_error *m);
int proto_encode_exec_request(struct cbor_buf *b, uint32_t id, const struct proto_exec_request *m);
int proto_encode_exec_started(struct cbor_buf *b, uint32_t id, const struct proto_exec_started *m);
int proto_encode_exec_failed(struct cbor_buf *b, uint32_t id, const struct proto_exec_failed *m);
int proto_encode_exec_exited(struct cbor_buf *b, uint32_t id, const struct proto_exec_exited *m);
int proto_encode_exec_resize(struct cbor_buf *b, uint32_t id, const struct proto_exec_resize *m);
int proto_encode_exec_signal(struct cbor_buf *b, uint32_t id, const struct proto_exec_signal *m);
int proto_encode_stdin_ack(struct cbor_buf *b, uint32_t id, const struct proto_stdin_ack *m);
/* t is PROTO_EXEC_STDIN, PROTO_EXEC_STDOUT or PROTO_EXEC_STDERR. */
int proto_encode_data(struct cbor_buf *b, uint32_t id, enum proto_type t, const void *data,
                      size_t len);
