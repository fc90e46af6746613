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
#define PROTO_MAX_ARGS       4096u
#define PROTO_MAX_ENV        4096u
#define PROTO_MAX_STRING     (64u * 1024u) /* one argument, env entry, path */
#define PROTO_MAX_RLIMITS    16u
#define PROTO_DATA_CHUNK     (64u * 1024u)  /* stdout/stderr/stdin bytes per frame */
#define PROTO_STDIN_WINDOW   (256u * 1024u) /* unacknowledged stdin bytes per session */
#define PROTO_MAX_SIGNAL     64             /* signal numbers are 1..64 (Linux _NSIG - 1) */
#define PROTO_FS_PATH_MAX    4096u /* a path: 1..4095 bytes (Linux PATH_MAX with its NUL) */
#define PROTO_FS_NAME_MAX    256u  /* an entry name: 1..255 bytes (NAME_MAX with its NUL) */
#define PROTO_FS_WINDOW      (1024u * 1024u) /* unacknowledged core.fs.data bytes per session */
#define PROTO_FS_BATCH       1024u           /* entries per core.fs.entries frame, at most */
#define PROTO_FS_MAX_ENTRIES (1u << 20)      /* entries one list sends before truncating */

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
        PROTO_RELAY_CLIENT_DISCONNECTED, /* core.relay.client.disconnected  relay->G  id 0 */
        PROTO_FS_REQUEST,                /* core.fs.request     H->G  SESSION_START */
        PROTO_FS_DATA,     /* core.fs.data        both  file bytes; empty (H->G) = end */
        PROTO_FS_ACK,      /* core.fs.ack         both  core.fs.data bytes consumed */
        PROTO_FS_ENTRIES,  /* core.fs.entries     G->H  stat records (list, read) */
        PROTO_FS_CANCEL,   /* core.fs.cancel      H->G  abandon the operation */
        PROTO_FS_RESPONSE, /* core.fs.response    G->H  TERMINAL */
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
        bool detached;  /* "detached": survives its client's disconnection */
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

/* core.exec.stdin.ack and core.fs.ack. */
struct proto_stdin_ack {
        uint64_t bytes; /* bytes consumed since the previous ack */
};

/* The relay tells the agent that the client owning [id_start, id_end) is
 * gone: the agent ends that range's sessions, except detached ones. */
struct proto_relay_disconnected {
        uint32_t id_start;
        uint32_t id_end; /* exclusive */
};

/* ---- files (core.fs.*) ---- */

enum proto_fs_op {
        PROTO_FS_OP_STAT = 1, /* "stat" */
        PROTO_FS_OP_LIST,     /* "list" */
        PROTO_FS_OP_READ,     /* "read" */
        PROTO_FS_OP_WRITE,    /* "write" */
        PROTO_FS_OP_MKDIR,    /* "mkdir" */
        PROTO_FS_OP_REMOVE,   /* "remove" */
        PROTO_FS_OP_RENAME,   /* "rename" */
        PROTO_FS_OP_CHMOD,    /* "chmod" */
        PROTO_FS_OP_SYMLINK,  /* "symlink" */
};

/* "stat" etc.; NULL for a value outside the enum. */
const char *proto_fs_op_name(enum proto_fs_op op);

/*
 * A request. The decoder enforces what each op needs: path is always an
 * absolute path (1..4095 bytes); target is required by rename (an absolute
 * path) and symlink (the link's content, any 1..4095 bytes), and empty
 * otherwise; chmod requires mode. Absent options are false; an absent mode
 * is 0644 for write and 0755 for mkdir.
 */
struct proto_fs_request {
        enum proto_fs_op op;
        char path[PROTO_FS_PATH_MAX];
        char target[PROTO_FS_PATH_MAX];
        uint32_t mode;  /* permission bits, 0..07777 */
        bool follow;    /* stat: follow a final symlink (list and read always do) */
        bool parents;   /* mkdir: create missing parents; an existing directory is fine */
        bool recursive; /* remove: a directory with everything in it */
        bool exclusive; /* write: fail with EEXIST when path exists */
};

enum proto_fs_type {
        PROTO_FS_TYPE_FILE = 1, /* "file" */
        PROTO_FS_TYPE_DIR,      /* "dir" */
        PROTO_FS_TYPE_SYMLINK,  /* "symlink" */
        PROTO_FS_TYPE_CHAR,     /* "char" */
        PROTO_FS_TYPE_BLOCK,    /* "block" */
        PROTO_FS_TYPE_FIFO,     /* "fifo" */
        PROTO_FS_TYPE_SOCKET,   /* "socket" */
};

/* One stat record: an entry of core.fs.entries, or the stat of a response.
 * A name, when present, is a single path component: 1..255 bytes, no '/',
 * not "." or "..". */
struct proto_fs_stat {
        char name[PROTO_FS_NAME_MAX]; /* "" when absent */
        enum proto_fs_type type;
        uint32_t mode; /* permission bits, 0..07777 */
        uint64_t size;
        uint32_t uid, gid;
        int64_t mtime_ns;               /* since the epoch */
        char target[PROTO_FS_PATH_MAX]; /* a symlink's content; "" otherwise */
};

/* core.fs.entries, decoded lazily: proto_decode_fs_entries() checks the whole
 * payload, then proto_fs_entries_next() hands the records out one by one
 * (they are large; a frame holds up to PROTO_FS_BATCH of them). */
struct proto_fs_entries {
        size_t count; /* records left */
        struct cbor_reader r;
};

struct proto_fs_response {
        int32_t err;                  /* errno (Linux numbering); 0: success */
        char message[256];            /* for humans; "" on success */
        char path[PROTO_FS_PATH_MAX]; /* the path an error concerns; may be "" */
        bool has_stat;                /* stat: the result */
        struct proto_fs_stat stat;
        bool truncated; /* list: more than PROTO_FS_MAX_ENTRIES entries */
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
/* For core.exec.stdin.ack and core.fs.ack. */
int proto_decode_stdin_ack(const struct proto_msg *m, struct proto_stdin_ack *ret);
/* For core.exec.stdin, core.exec.stdout, core.exec.stderr, core.fs.data. */
int proto_decode_data(const struct proto_msg *m, struct proto_data *ret);
int proto_decode_relay_disconnected(const struct proto_msg *m,
                                    struct proto_relay_disconnected *ret);
int proto_decode_fs_request(const struct proto_msg *m, struct proto_fs_request *ret);
int proto_decode_fs_entries(const struct proto_msg *m, struct proto_fs_entries *ret);
/* The next record: 1 with *ret filled, 0 when none is left, -EBADMSG. */
int proto_fs_entries_next(struct proto_fs_entries *it, struct proto_fs_stat *ret);
int proto_decode_fs_response(const struct proto_msg *m, struct proto_fs_response *ret);

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
int proto_encode_fs_ack(struct cbor_buf *b, uint32_t id, const struct proto_stdin_ack *m);
int proto_encode_relay_disconnected(struct cbor_buf *b, const struct proto_relay_disconnected *m);
/* t is PROTO_EXEC_STDIN, PROTO_EXEC_STDOUT, PROTO_EXEC_STDERR or PROTO_FS_DATA. */
int proto_encode_data(struct cbor_buf *b, uint32_t id, enum proto_type t, const void *data,
                      size_t len);
int proto_encode_fs_request(struct cbor_buf *b, uint32_t id, const struct proto_fs_request *m);
/* core.fs.entries is written in two steps: proto_fs_stat_put() appends one
 * record to a scratch buffer (-EINVAL for what the decoder would refuse),
 * and proto_encode_fs_entries() wraps count such records (items, len bytes)
 * in a frame. count is 1..PROTO_FS_BATCH. */
int proto_fs_stat_put(struct cbor_buf *b, const struct proto_fs_stat *st);
int proto_encode_fs_entries(struct cbor_buf *b, uint32_t id, const void *items, size_t len,
                            size_t count);
int proto_encode_fs_response(struct cbor_buf *b, uint32_t id, const struct proto_fs_response *m);
