/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: every file call is one core.fs.* session on the
 * sandbox's agent channel (docs/protocol.md), driven to its end before the
 * call returns, like lib/exec.c drives a command.
 *
 * Streams never hold a whole file: a write sends chunks of at most
 * PROTO_DATA_CHUNK while fewer than PROTO_FS_WINDOW bytes are unacknowledged,
 * taking the agent's core.fs.ack and an early core.fs.response in between; a
 * read hands each chunk to a sink (memory, or a host file) and acknowledges
 * it. A call that fails halfway sends core.fs.cancel, so the guest keeps no
 * half-written file.
 *
 * The tree copies walk one side and build the other with these calls, with
 * docker cp's rules for where the copy lands (see the header). On the host,
 * copy_out creates everything relative to directory descriptors, never
 * following a symlink it did not make the user name: the guest chooses the
 * names, types and link targets, so it must not be able to lead a write out
 * of the destination (entry names are single components, checked by the
 * decoder; duplicate names are refused here). Files arrive in a temporary
 * file renamed into place, without set-id bits.
 *
 * Errors: bad arguments are MSB_ERR_INVALID_ARGUMENT; what the guest's file
 * system refuses comes back as -errno with MSB_ERR_SYSTEM and a message
 * naming NAME:/path (the message is built here: the guest's own text is not
 * shown); host file errors likewise name the host path; a guest that breaks
 * the protocol is MSB_ERR_PROTOCOL.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chan.h"
#include "error.h"
#include "internal.h"
#include "lib/core/log.h"
#include "lib/core/util.h"

/* One file session. */
struct fss {
        msb_sandbox *sb;
        struct chan *ch;
        uint32_t id;
        bool ended; /* its TERMINAL frame was read */
        const char *op;
        const char *path;
        struct cbor_buf out;
        struct proto_fs_response *resp; /* the final answer */
        uint64_t sent, acked;           /* write: data bytes */
};

/* ---- arguments ---- */

static int check_path(const char *path)
{
        if (!path || path[0] != '/')
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL,
                                 "guest path \"%s\" is not absolute", path ? path : "(null)");
        if (strlen(path) >= PROTO_FS_PATH_MAX)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -ENAMETOOLONG,
                                 "guest path is longer than %u bytes", PROTO_FS_PATH_MAX - 1);
        return 0;
}

static int check_mode(uint32_t mode)
{
        if (mode > 07777)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL, "invalid mode %#o", mode);
        return 0;
}

/* The last component of path, ignoring trailing slashes; "" for "/". */
static char *last_component(const char *path)
{
        size_t end = strlen(path), start;

        while (end > 0 && path[end - 1] == '/')
                end--;
        start = end;
        while (start > 0 && path[start - 1] != '/')
                start--;
        return strndup(path + start, end - start);
}

/* path without its last component ("/" for "/x"; "." for "x"). */
static char *parent_of(const char *path)
{
        size_t end = strlen(path);

        while (end > 1 && path[end - 1] == '/')
                end--;
        while (end > 0 && path[end - 1] != '/')
                end--;
        while (end > 1 && path[end - 1] == '/')
                end--;
        return end == 0 ? strdup(".") : strndup(path, end);
}

/* dir/name, without doubling a slash. */
static char *join(const char *dir, const char *name)
{
        size_t n = strlen(dir);

        return strdup_printf("%s%s%s", dir, n > 0 && dir[n - 1] == '/' ? "" : "/", name);
}

static bool has_trailing_slash(const char *path)
{
        size_t n = strlen(path);

        return n > 1 && path[n - 1] == '/';
}

/* "dir/." (or "/"): the contents of dir rather than dir itself. */
static bool means_contents(const char *path)
{
        size_t n = strlen(path);

        return streq(path, "/") || (n >= 2 && streq(path + n - 2, "/.")) || streq(path, ".");
}

static int oom(void)
{
        return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
}

/* ---- sessions ---- */

static int fss_fail_guest(struct fss *s, int err, const char *path)
{
        if (err <= 0 || err >= 4096)
                err = EIO;
        return error_set(MSB_ERR_SYSTEM, -err, "%s %s:%s: %s", s->op, msb_sandbox_name(s->sb), path,
                         strerror(err));
}

static int fss_fail_protocol(struct fss *s, const char *what)
{
        return error_set(MSB_ERR_PROTOCOL, -EBADMSG, "%s %s:%s: the guest agent sent %s", s->op,
                         msb_sandbox_name(s->sb), s->path, what);
}

static int fss_send(struct fss *s, int r)
{
        if (r >= 0)
                r = chan_send(s->ch, &s->out);
        cbor_buf_reset(&s->out);
        if (r == -EINVAL || r == -EMSGSIZE)
                return error_set(MSB_ERR_INVALID_ARGUMENT, r, "%s %s:%s: invalid request", s->op,
                                 msb_sandbox_name(s->sb), s->path);
        return r < 0 ? sandbox_fail_channel(s->sb, r) : 0;
}

static int fss_start(msb_sandbox *sb, const struct proto_fs_request *req, struct fss *s)
{
        *s = (struct fss){.sb = sb,
                          .ch = sandbox_chan(sb),
                          .op = proto_fs_op_name(req->op),
                          .path = req->path};
        cbor_buf_init(&s->out, FRAME_MAX_LEN);
        s->resp = calloc(1, sizeof(*s->resp));
        if (!s->resp)
                return oom();
        s->id = chan_session_open(s->ch);
        if (s->id == 0)
                return oom();
        return fss_send(s, proto_encode_fs_request(&s->out, s->id, req));
}

/* Ends the session; one that did not reach its end is cancelled, so the
 * guest drops a half-written file. */
static void fss_end(struct fss *s)
{
        if (s->id != 0 && !s->ended && proto_encode_empty(&s->out, s->id, 0, PROTO_FS_CANCEL) == 0)
                (void)chan_send(s->ch, &s->out);
        if (s->id != 0)
                chan_session_close(s->ch, s->id);
        cbor_buf_free(&s->out);
        free(s->resp);
        s->resp = NULL;
}

/* The next message of the session (free() it), waiting for it when block;
 * NULL in *ret when !block and nothing is there. */
static int fss_next(struct fss *s, bool block, struct chan_msg **ret)
{
        struct chan_msg *m;
        int r;

        while (!(m = chan_pop(s->ch, s->id))) {
                r = chan_pump(s->ch, block ? -1 : 0);
                if (r == -EINTR)
                        continue;
                if (r < 0)
                        return sandbox_fail_channel(s->sb, r);
                if (r == 0 && !block) {
                        *ret = NULL;
                        return 0;
                }
        }
        if (m->msg.flags & FRAME_TERMINAL)
                s->ended = true;
        *ret = m;
        return 0;
}

/*
 * The session's last frame: core.fs.response (0, or the guest's errno) or
 * core.error. Anything else is a protocol error.
 */
static int fss_final(struct fss *s, const struct proto_msg *m)
{
        struct proto_error e;

        if (m->type == PROTO_ERROR) {
                if (proto_decode_error(m, &e) < 0)
                        return fss_fail_protocol(s, "a malformed core.error");
                if (streq(e.kind, PROTO_ERR_BUSY))
                        return error_set(MSB_ERR_SYSTEM, -EAGAIN,
                                         "%s %s:%s: the guest agent is busy", s->op,
                                         msb_sandbox_name(s->sb), s->path);
                return error_set(MSB_ERR_PROTOCOL, -EPROTO,
                                 "%s %s:%s: the guest agent refused it (%s)", s->op,
                                 msb_sandbox_name(s->sb), s->path, e.kind);
        }
        if (m->type != PROTO_FS_RESPONSE || !(m->flags & FRAME_TERMINAL))
                return fss_fail_protocol(s, m->type == PROTO_FS_RESPONSE
                                                    ? "a response that is not final"
                                                    : "an unexpected message");
        if (proto_decode_fs_response(m, s->resp) < 0)
                return fss_fail_protocol(s, "a malformed response");
        if (s->resp->err != 0) {
                /* the guest names a path: trust it only when it is ours or a parent of ours */
                const char *p = s->resp->path;
                bool ours = *p && startswith(s->path, p) &&
                            (s->path[strlen(p)] == '/' || s->path[strlen(p)] == '\0');

                return fss_fail_guest(s, s->resp->err, ours ? p : s->path);
        }
        return 0;
}

/* Runs an op that answers with one response. */
static int fss_simple(msb_sandbox *sb, const struct proto_fs_request *req,
                      struct proto_fs_stat *ret_stat)
{
        struct chan_msg *m = NULL;
        struct fss s;
        int r;

        r = fss_start(sb, req, &s);
        if (r >= 0)
                r = fss_next(&s, true, &m);
        if (r >= 0)
                r = fss_final(&s, &m->msg);
        if (r >= 0 && ret_stat) {
                if (s.resp->has_stat)
                        *ret_stat = s.resp->stat;
                else
                        r = fss_fail_protocol(&s, "no stat");
        }
        free(m);
        fss_end(&s);
        return r;
}

/* ---- stat, list and the small ops ---- */

static void entry_clear(msb_fs_entry *e)
{
        free(e->name);
        free(e->target);
        *e = (msb_fs_entry){0};
}

void msb_fs_entry_clear(msb_fs_entry *e)
{
        if (e)
                entry_clear(e);
}

void msb_fs_list_free(msb_fs_entry *entries, size_t n)
{
        for (size_t i = 0; entries && i < n; i++)
                entry_clear(&entries[i]);
        free(entries);
}

/* A public entry from a record; name NULL: the record's own. */
static int entry_from(const struct proto_fs_stat *st, const char *name, msb_fs_entry *ret)
{
        msb_fs_entry e = {
                .name = strdup(name ? name : st->name),
                .type = (msb_fs_type)st->type,
                .mode = st->mode,
                .size = st->size,
                .uid = st->uid,
                .gid = st->gid,
                .mtime_ns = st->mtime_ns,
                .target = st->target[0] ? strdup(st->target) : NULL,
        };

        if (!e.name || (st->target[0] && !e.target)) {
                entry_clear(&e);
                return oom();
        }
        *ret = e;
        return 0;
}

int msb_fs_stat(msb_sandbox *sb, const char *path, int follow, msb_fs_entry *ret)
{
        struct proto_fs_request *req;
        struct proto_fs_stat *st;
        _cleanup_free_ char *name = NULL;
        int r = check_path(path);

        if (r < 0)
                return r;
        req = calloc(1, sizeof(*req));
        st = calloc(1, sizeof(*st));
        name = last_component(path);
        if (!req || !st || !name) {
                r = oom();
                goto out;
        }
        req->op = PROTO_FS_OP_STAT;
        strcpy(req->path, path);
        req->follow = follow;
        r = fss_simple(sb, req, st);
        if (r >= 0)
                r = entry_from(st, name, ret);
out:
        free(req);
        free(st);
        return r;
}

static int compare_entries(const void *a, const void *b)
{
        return strcmp(((const msb_fs_entry *)a)->name, ((const msb_fs_entry *)b)->name);
}

/* Appends the records of one core.fs.entries frame. */
static int take_entries(struct fss *s, const struct proto_msg *m, msb_fs_entry **v, size_t *n,
                        size_t *cap)
{
        struct proto_fs_entries it;
        struct proto_fs_stat *st;
        int r = 0, k;

        if (proto_decode_fs_entries(m, &it) < 0)
                return fss_fail_protocol(s, "malformed entries");
        if (*n + it.count > PROTO_FS_MAX_ENTRIES)
                return fss_fail_protocol(s, "too many entries");
        if (*n + it.count > *cap) {
                size_t c = MAX(*n + it.count, 2 * *cap);
                msb_fs_entry *p = realloc(*v, c * sizeof(*p));

                if (!p)
                        return oom();
                *v = p;
                *cap = c;
        }
        st = malloc(sizeof(*st));
        if (!st)
                return oom();
        while (r == 0 && (k = proto_fs_entries_next(&it, st)) == 1) {
                if (!st->name[0])
                        r = fss_fail_protocol(s, "an entry without a name");
                else
                        r = entry_from(st, NULL, &(*v)[*n]);
                *n += r == 0;
        }
        free(st);
        return r;
}

int msb_fs_list(msb_sandbox *sb, const char *path, msb_fs_entry **ret, size_t *ret_n)
{
        struct proto_fs_request *req;
        msb_fs_entry *v = NULL;
        size_t n = 0, cap = 0;
        struct fss s = {0};
        int r = check_path(path);

        if (r < 0)
                return r;
        req = calloc(1, sizeof(*req));
        if (!req)
                return oom();
        req->op = PROTO_FS_OP_LIST;
        strcpy(req->path, path);
        r = fss_start(sb, req, &s);
        while (r >= 0 && !s.ended) {
                struct chan_msg *m;

                r = fss_next(&s, true, &m);
                if (r < 0)
                        break;
                if (m->msg.type == PROTO_FS_ENTRIES)
                        r = take_entries(&s, &m->msg, &v, &n, &cap);
                else
                        r = fss_final(&s, &m->msg);
                if (r >= 0 && s.ended && s.resp->truncated)
                        r = error_set(MSB_ERR_SYSTEM, -E2BIG, "list %s:%s: more than %u entries",
                                      msb_sandbox_name(sb), path, PROTO_FS_MAX_ENTRIES);
                free(m);
        }
        if (r >= 0 && n > 0) {
                qsort(v, n, sizeof(*v), compare_entries);
                for (size_t i = 1; i < n && r >= 0; i++)
                        if (streq(v[i - 1].name, v[i].name))
                                r = fss_fail_protocol(&s, "the same name twice");
        }
        fss_end(&s);
        free(req);
        if (r < 0) {
                msb_fs_list_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static struct proto_fs_request *request(enum proto_fs_op op, const char *path, const char *target,
                                        uint32_t mode)
{
        struct proto_fs_request *req = calloc(1, sizeof(*req));

        if (!req)
                return NULL;
        req->op = op;
        strcpy(req->path, path);
        if (target)
                strcpy(req->target, target);
        req->mode = mode;
        return req;
}

/* Runs a simple op built by request() (NULL: out of memory) and frees it. */
static int run_simple(msb_sandbox *sb, struct proto_fs_request *req)
{
        int r;

        if (!req)
                return oom();
        r = fss_simple(sb, req, NULL);
        free(req);
        return r;
}

int msb_fs_mkdir(msb_sandbox *sb, const char *path, uint32_t mode, int parents)
{
        struct proto_fs_request *req;
        int r = check_path(path);

        if (r >= 0)
                r = check_mode(mode);
        if (r < 0)
                return r;
        req = request(PROTO_FS_OP_MKDIR, path, NULL, mode);
        if (req)
                req->parents = parents;
        return run_simple(sb, req);
}

int msb_fs_remove(msb_sandbox *sb, const char *path, int recursive)
{
        struct proto_fs_request *req;
        int r = check_path(path);

        if (r < 0)
                return r;
        req = request(PROTO_FS_OP_REMOVE, path, NULL, 0);
        if (req)
                req->recursive = recursive;
        return run_simple(sb, req);
}

int msb_fs_rename(msb_sandbox *sb, const char *from, const char *to)
{
        int r = check_path(from);

        if (r >= 0)
                r = check_path(to);
        if (r < 0)
                return r;
        return run_simple(sb, request(PROTO_FS_OP_RENAME, from, to, 0));
}

int msb_fs_chmod(msb_sandbox *sb, const char *path, uint32_t mode)
{
        int r = check_path(path);

        if (r >= 0)
                r = check_mode(mode);
        if (r < 0)
                return r;
        return run_simple(sb, request(PROTO_FS_OP_CHMOD, path, NULL, mode));
}

int msb_fs_symlink(msb_sandbox *sb, const char *target, const char *linkpath)
{
        int r = check_path(linkpath);

        if (r < 0)
                return r;
        if (!target || !*target || strlen(target) >= PROTO_FS_PATH_MAX)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL, "invalid symlink target for %s",
                                 linkpath);
        return run_simple(sb, request(PROTO_FS_OP_SYMLINK, linkpath, target, 0));
}

/* ---- streams ---- */

/* Where a read's bytes go: open() gets the file's stat first, then data()
 * each chunk. Both set the error themselves. */
struct sink {
        int (*open)(void *ud, const struct proto_fs_stat *st);
        int (*data)(void *ud, const uint8_t *p, size_t n);
        void *ud;
};

static int fs_read(msb_sandbox *sb, const char *path, const struct sink *sink)
{
        struct proto_fs_request *req = request(PROTO_FS_OP_READ, path, NULL, 0);
        struct proto_fs_stat *st = malloc(sizeof(*st));
        bool opened = false;
        struct fss s = {0};
        int r;

        if (!req || !st) {
                free(req);
                free(st);
                return oom();
        }
        r = fss_start(sb, req, &s);
        while (r >= 0 && !s.ended) {
                struct proto_stdin_ack ack;
                struct proto_fs_entries it;
                struct proto_data d;
                struct chan_msg *m;

                r = fss_next(&s, true, &m);
                if (r < 0)
                        break;
                if (m->msg.type == PROTO_FS_ENTRIES && !opened) {
                        if (proto_decode_fs_entries(&m->msg, &it) < 0 || it.count != 1 ||
                            proto_fs_entries_next(&it, st) != 1 || st->type != PROTO_FS_TYPE_FILE)
                                r = fss_fail_protocol(&s, "a malformed stat");
                        else
                                r = sink->open(sink->ud, st);
                        opened = true;
                } else if (m->msg.type == PROTO_FS_DATA && opened) {
                        if (proto_decode_data(&m->msg, &d) < 0) {
                                r = fss_fail_protocol(&s, "malformed data");
                        } else {
                                ack.bytes = d.len;
                                r = sink->data(sink->ud, d.data, d.len);
                                if (r >= 0)
                                        r = fss_send(&s, proto_encode_fs_ack(&s.out, s.id, &ack));
                        }
                } else {
                        r = fss_final(&s, &m->msg);
                        if (r >= 0 && !opened)
                                r = fss_fail_protocol(&s, "no stat");
                }
                free(m);
        }
        fss_end(&s);
        free(req);
        free(st);
        return r;
}

/* Where a write's bytes come from: fill() puts up to max bytes in buf and
 * returns how many (0 at the end), or a negative errno with the error set. */
typedef ssize_t (*fill_fn)(void *ud, uint8_t *buf, size_t max);

/* Takes the messages the agent sent during a write: acks, or its early end. */
static int take_write_msg(struct fss *s, struct chan_msg *m)
{
        struct proto_stdin_ack ack;
        int r = 0;

        if (m->msg.type == PROTO_FS_ACK) {
                if (proto_decode_stdin_ack(&m->msg, &ack) < 0 || ack.bytes > s->sent - s->acked)
                        r = fss_fail_protocol(s, "a bad acknowledgement");
                else
                        s->acked += ack.bytes;
        } else {
                r = fss_final(s, &m->msg);
                if (r >= 0) /* done before all data was sent: not a success */
                        r = fss_fail_protocol(s, "an early answer");
        }
        free(m);
        return r;
}

static int fs_write(msb_sandbox *sb, const char *path, uint32_t mode, fill_fn fill, void *ud)
{
        struct proto_fs_request *req = request(PROTO_FS_OP_WRITE, path, NULL, mode);
        uint8_t *buf = malloc(PROTO_DATA_CHUNK);
        struct fss s = {0};
        bool eof = false;
        int r;

        if (!req || !buf) {
                free(req);
                free(buf);
                return oom();
        }
        r = fss_start(sb, req, &s);
        while (r >= 0 && !eof) {
                size_t room = PROTO_FS_WINDOW - (size_t)(s.sent - s.acked);
                struct chan_msg *m;
                ssize_t n;

                /* what came meanwhile; wait only when the window is full */
                r = fss_next(&s, room == 0, &m);
                if (r >= 0 && m) {
                        r = take_write_msg(&s, m);
                        continue;
                }
                if (r < 0)
                        break;
                n = fill(ud, buf, MIN(room, (size_t)PROTO_DATA_CHUNK));
                if (n < 0) {
                        r = (int)n;
                        break;
                }
                eof = n == 0;
                r = fss_send(&s, proto_encode_data(&s.out, s.id, PROTO_FS_DATA, buf, (size_t)n));
                s.sent += (uint64_t)n;
        }
        while (r >= 0 && !s.ended) {
                struct chan_msg *m;

                r = fss_next(&s, true, &m);
                if (r < 0)
                        break;
                if (m->msg.type == PROTO_FS_ACK)
                        r = take_write_msg(&s, m);
                else {
                        r = fss_final(&s, &m->msg);
                        free(m);
                }
        }
        fss_end(&s);
        free(req);
        free(buf);
        return r;
}

/* ---- whole files in memory ---- */

struct mem {
        const char *path;
        msb_sandbox *sb;
        uint8_t *data;
        size_t len, max;
        const uint8_t *src;
};

static int mem_too_big(struct mem *m)
{
        return error_set(MSB_ERR_SYSTEM, -EFBIG, "read %s:%s: larger than %zu bytes",
                         msb_sandbox_name(m->sb), m->path, m->max);
}

static int mem_open(void *ud, const struct proto_fs_stat *st)
{
        struct mem *m = ud;

        if (m->max && st->size > m->max)
                return mem_too_big(m);
        return 0;
}

static int mem_data(void *ud, const uint8_t *p, size_t n)
{
        struct mem *m = ud;
        uint8_t *q;

        if (n == 0)
                return 0;
        if (m->max && n > m->max - m->len)
                return mem_too_big(m);
        q = realloc(m->data, m->len + n);
        if (!q)
                return oom();
        memcpy(q + m->len, p, n);
        m->data = q;
        m->len += n;
        return 0;
}

int msb_fs_read_file(msb_sandbox *sb, const char *path, size_t max, uint8_t **ret_data,
                     size_t *ret_len)
{
        struct mem m = {.path = path, .sb = sb, .max = max};
        const struct sink sink = {mem_open, mem_data, &m};
        int r = check_path(path);

        if (r >= 0)
                r = fs_read(sb, path, &sink);
        if (r < 0) {
                free(m.data);
                return r;
        }
        *ret_data = m.data ? m.data : malloc(1);
        if (!*ret_data)
                return oom();
        *ret_len = m.len;
        return 0;
}

static ssize_t mem_fill(void *ud, uint8_t *buf, size_t max)
{
        struct mem *m = ud;
        size_t n = MIN(max, m->len);

        if (n > 0)
                memcpy(buf, m->src, n);
        m->src += n;
        m->len -= n;
        return (ssize_t)n;
}

int msb_fs_write_file(msb_sandbox *sb, const char *path, const void *data, size_t len,
                      uint32_t mode)
{
        struct mem m = {.src = data, .len = len};
        int r = check_path(path);

        if (r >= 0)
                r = check_mode(mode);
        if (r >= 0 && !data && len > 0)
                r = error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL, "no data");
        if (r < 0)
                return r;
        return fs_write(sb, path, mode, mem_fill, &m);
}

/* ---- copies into the guest ---- */

static int host_fail(int err, const char *what, const char *path)
{
        return error_set(MSB_ERR_SYSTEM, -err, "%s %s: %s", what, path, strerror(err));
}

struct host_file {
        int fd;
        const char *path;
};

static ssize_t host_fill(void *ud, uint8_t *buf, size_t max)
{
        struct host_file *f = ud;
        ssize_t n = read_full(f->fd, buf, max);

        if (n < 0)
                return host_fail((int)-n, "read", f->path);
        return n;
}

DEFINE_FREEP(char *, proto_strv_free)

static int compare_names(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in a host directory, sorted, in a NULL-terminated vector. */
static int host_names(const char *path, char ***ret)
{
        _cleanup_(proto_strv_freep) char **v = NULL;
        struct dirent *de;
        size_t n = 0, cap = 0;
        DIR *d = opendir(path);
        int r = 0;

        if (!d)
                return host_fail(errno, "open directory", path);
        for (;;) {
                errno = 0;
                de = readdir(d);
                if (!de) {
                        if (errno)
                                r = host_fail(errno, "read directory", path);
                        break;
                }
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (n + 2 > cap) {
                        char **p = realloc(v, (cap = MAX(16, 2 * cap)) * sizeof(*p));

                        if (!p) {
                                r = oom();
                                break;
                        }
                        v = p;
                }
                v[n] = strdup(de->d_name);
                v[n + 1] = NULL;
                if (!v[n]) {
                        r = oom();
                        break;
                }
                n++;
        }
        closedir(d);
        if (r >= 0 && !v && !(v = calloc(1, sizeof(*v))))
                r = oom();
        if (r < 0)
                return r;
        if (n > 1)
                qsort(v, n, sizeof(*v), compare_names);
        *ret = TAKE_PTR(v);
        return 0;
}

static int copy_in(msb_sandbox *sb, const char *src, const struct stat *st, const char *dst,
                   bool merge);

/* A host directory into the guest directory dst: created (or, with merge,
 * an existing one), filled, then given the source's mode. */
static int copy_in_dir(msb_sandbox *sb, const char *src, const struct stat *st, const char *dst,
                       bool merge)
{
        _cleanup_(proto_strv_freep) char **names = NULL;
        msb_fs_entry e;
        int r;

        /* writable by us while it is being filled */
        r = msb_fs_mkdir(sb, dst, (st->st_mode & 07777) | 0700, false);
        if (r == -EEXIST && msb_fs_stat(sb, dst, false, &e) >= 0) {
                bool dir = e.type == MSB_FS_DIR;

                msb_fs_entry_clear(&e);
                if (!dir)
                        return error_set(MSB_ERR_SYSTEM, -ENOTDIR,
                                         "copy %s to %s:%s: not a directory there", src,
                                         msb_sandbox_name(sb), dst);
                r = 0;
        }
        if (r < 0)
                return r;
        r = host_names(src, &names);
        for (size_t i = 0; r >= 0 && names[i]; i++) {
                _cleanup_free_ char *from = join(src, names[i]), *to = join(dst, names[i]);
                struct stat cst;

                if (!from || !to)
                        return oom();
                if (strlen(to) >= PROTO_FS_PATH_MAX)
                        return error_set(MSB_ERR_SYSTEM, -ENAMETOOLONG,
                                         "copy %s: the guest path would be too long", from);
                if (lstat(from, &cst) < 0)
                        return host_fail(errno, "stat", from);
                r = copy_in(sb, from, &cst, to, false);
        }
        if (r >= 0 && !merge)
                r = msb_fs_chmod(sb, dst, st->st_mode & 07777);
        return r;
}

/* One host file system object to the guest path dst. */
static int copy_in(msb_sandbox *sb, const char *src, const struct stat *st, const char *dst,
                   bool merge)
{
        char target[PROTO_FS_PATH_MAX];
        struct host_file f = {.path = src};
        struct stat fst;
        msb_fs_entry e;
        ssize_t n;
        int r;

        switch (st->st_mode & S_IFMT) {
        case S_IFREG:
                /* not blocking on a FIFO put there since the lstat() */
                f.fd = open(src, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
                if (f.fd < 0)
                        return host_fail(errno, "open", src);
                r = fstat(f.fd, &fst) < 0 ? -errno : S_ISREG(fst.st_mode) ? 0 : -EINVAL;
                if (r >= 0)
                        r = fd_set_nonblock(f.fd, false);
                if (r < 0)
                        r = host_fail(-r, "read", src);
                else
                        r = fs_write(sb, dst, st->st_mode & 07777, host_fill, &f);
                close(f.fd);
                return r;
        case S_IFLNK:
                n = readlink(src, target, sizeof(target) - 1);
                if (n < 0)
                        return host_fail(errno, "readlink", src);
                if (n == 0 || (size_t)n >= sizeof(target) - 1)
                        return host_fail(ENAMETOOLONG, "readlink", src);
                target[n] = '\0';
                r = msb_fs_symlink(sb, target, dst);
                if (r != -EEXIST)
                        return r;
                /* replace what is there, unless it is a directory */
                r = msb_fs_stat(sb, dst, false, &e);
                if (r < 0)
                        return r;
                r = e.type == MSB_FS_DIR ? -EISDIR : 0;
                msb_fs_entry_clear(&e);
                if (r < 0)
                        return error_set(MSB_ERR_SYSTEM, r,
                                         "copy %s to %s:%s: a directory is there", src,
                                         msb_sandbox_name(sb), dst);
                r = msb_fs_remove(sb, dst, false);
                return r < 0 ? r : msb_fs_symlink(sb, target, dst);
        case S_IFDIR:
                return copy_in_dir(sb, src, st, dst, merge);
        default:
                log_debug("copy %s: not a regular file, directory or symlink: skipped", src);
                return 0;
        }
}

/*
 * Where a copy lands, by docker cp's rules: into dst when it is an existing
 * directory (as dst/basename(src), or merged for "src/."), else at dst,
 * whose parent must exist. src_dir: whether the source is a directory;
 * dst_type: 0 when dst does not exist, else S_IFDIR or another S_IF*.
 * Sets *ret (allocated) and *ret_merge; a message names side:dst on failure.
 */
static int destination(const char *src, bool src_dir, const char *dst, mode_t dst_type,
                       const char *side, char **ret, bool *ret_merge)
{
        _cleanup_free_ char *base = NULL;
        bool contents = src_dir && means_contents(src);

        *ret_merge = false;
        if (dst_type == 0) {
                if (has_trailing_slash(dst))
                        return error_set(MSB_ERR_SYSTEM, -ENOENT,
                                         "destination directory %s%s does not exist", side, dst);
                *ret = strdup(dst);
                return *ret ? 0 : oom();
        }
        if (dst_type == S_IFDIR) {
                if (contents) {
                        *ret_merge = true;
                        *ret = strdup(dst);
                        return *ret ? 0 : oom();
                }
                base = last_component(src);
                if (!base)
                        return oom();
                *ret = join(dst, base);
                return *ret ? 0 : oom();
        }
        if (src_dir)
                return error_set(MSB_ERR_SYSTEM, -ENOTDIR,
                                 "cannot copy the directory %s onto %s%s, which is not a directory",
                                 src, side, dst);
        if (has_trailing_slash(dst))
                return error_set(MSB_ERR_SYSTEM, -ENOTDIR, "%s%s is not a directory", side, dst);
        *ret = strdup(dst);
        return *ret ? 0 : oom();
}

static mode_t type_bits(msb_fs_type t)
{
        return t == MSB_FS_DIR ? S_IFDIR : S_IFREG;
}

/* The arguments of a copy either way: a host path, an absolute guest path. */
static int check_copy_paths(const char *host_path, const char *guest_path)
{
        if (!host_path || !*host_path)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL, "no host path given");
        return check_path(guest_path);
}

int msb_fs_copy_in(msb_sandbox *sb, const char *host_path, const char *guest_path)
{
        _cleanup_free_ char *final = NULL, *prefix = NULL;
        msb_fs_entry e;
        mode_t dst_type = 0;
        struct stat st;
        bool merge;
        int r;

        r = check_copy_paths(host_path, guest_path);
        if (r < 0)
                return r;
        if (lstat(host_path, &st) < 0)
                return host_fail(errno, "copy", host_path);
        prefix = strdup_printf("%s:", msb_sandbox_name(sb));
        if (!prefix)
                return oom();
        r = msb_fs_stat(sb, guest_path, true, &e);
        if (r >= 0) {
                dst_type = type_bits(e.type);
                msb_fs_entry_clear(&e);
        } else if (r == -ENOENT) {
                _cleanup_free_ char *parent = parent_of(guest_path);

                if (!parent)
                        return oom();
                r = msb_fs_stat(sb, parent, true, &e);
                if (r == -ENOENT)
                        return error_set(MSB_ERR_SYSTEM, -ENOENT,
                                         "copy to %s%s: the directory %s%s does not exist", prefix,
                                         guest_path, prefix, parent);
                if (r < 0)
                        return r;
                r = e.type == MSB_FS_DIR ? 0 : -ENOTDIR;
                msb_fs_entry_clear(&e);
                if (r < 0)
                        return error_set(MSB_ERR_SYSTEM, r, "copy to %s%s: %s%s is not a directory",
                                         prefix, guest_path, prefix, parent);
        } else {
                return r;
        }
        r = destination(host_path, S_ISDIR(st.st_mode), guest_path, dst_type, prefix, &final,
                        &merge);
        if (r < 0)
                return r;
        if (strlen(final) >= PROTO_FS_PATH_MAX)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -ENAMETOOLONG,
                                 "copy %s: the guest path would be too long", host_path);
        return copy_in(sb, host_path, &st, final, merge);
}

/* ---- copies out of the guest ---- */

/* A guest file into a temporary file in dirfd, renamed to name at the end. */
struct host_sink {
        msb_sandbox *sb;
        int dirfd;
        const char *name;
        const char *shown; /* the host path, for messages */
        int fd;
        char tmp[32];
        uint32_t mode;
};

static int sink_open(void *ud, const struct proto_fs_stat *st)
{
        struct host_sink *h = ud;

        for (int i = 0; i < 100; i++) {
                snprintf(h->tmp, sizeof(h->tmp), ".msb-cp-%08x",
                         (unsigned)(now_ns(CLOCK_MONOTONIC) * 2654435761u + (unsigned)i));
                h->fd = openat(h->dirfd, h->tmp,
                               O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (h->fd >= 0 || errno != EEXIST)
                        break;
        }
        if (h->fd < 0) {
                h->tmp[0] = '\0';
                return host_fail(errno, "create a file next to", h->shown);
        }
        /* no set-id bits from the guest */
        h->mode = st->mode & 0777;
        return 0;
}

static int sink_data(void *ud, const uint8_t *p, size_t n)
{
        struct host_sink *h = ud;
        int r = write_all(h->fd, p, n);

        return r < 0 ? host_fail(-r, "write", h->shown) : 0;
}

static int copy_out_file(msb_sandbox *sb, const char *src, int dirfd, const char *name,
                         const char *shown)
{
        struct host_sink h = {.sb = sb, .dirfd = dirfd, .name = name, .shown = shown, .fd = -1};
        const struct sink sink = {sink_open, sink_data, &h};
        int r;

        r = fs_read(sb, src, &sink);
        if (h.fd >= 0) {
                if (r >= 0 && fchmod(h.fd, h.mode) < 0)
                        r = host_fail(errno, "chmod", shown);
                if (close(h.fd) < 0 && r >= 0)
                        r = host_fail(errno, "write", shown);
        }
        if (r >= 0 && renameat(dirfd, h.tmp, dirfd, name) < 0)
                r = host_fail(errno, "create", shown);
        if (r < 0 && h.tmp[0])
                unlinkat(dirfd, h.tmp, 0);
        return r;
}

static int copy_out(msb_sandbox *sb, const char *src, const msb_fs_entry *e, int dirfd,
                    const char *name, const char *shown, bool merge);

static int copy_out_dir(msb_sandbox *sb, const char *src, const msb_fs_entry *e, int dirfd,
                        const char *name, const char *shown, bool merge)
{
        _cleanup_close_ int fd = -1;
        msb_fs_entry *v = NULL;
        struct stat st;
        size_t n = 0;
        int r = 0;

        if (mkdirat(dirfd, name, 0700) < 0) {
                /* only a real directory may be there: never a symlink */
                if (errno != EEXIST)
                        return host_fail(errno, "create", shown);
                if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return host_fail(errno, "stat", shown);
                if (!S_ISDIR(st.st_mode))
                        return host_fail(ENOTDIR, "copy into", shown);
        }
        fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return host_fail(errno, "open", shown);
        r = msb_fs_list(sb, src, &v, &n);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                _cleanup_free_ char *from = join(src, v[i].name), *to = join(shown, v[i].name);

                if (!from || !to)
                        r = oom();
                else if (strlen(from) >= PROTO_FS_PATH_MAX)
                        r = error_set(MSB_ERR_SYSTEM, -ENAMETOOLONG, "copy %s:%s: path too long",
                                      msb_sandbox_name(sb), src);
                else
                        r = copy_out(sb, from, &v[i], fd, v[i].name, to, false);
        }
        msb_fs_list_free(v, n);
        if (r >= 0 && !merge && fchmod(fd, e->mode & 01777) < 0)
                r = host_fail(errno, "chmod", shown);
        return r;
}

/* One guest object (e: its lstat) to dirfd/name on the host. */
static int copy_out(msb_sandbox *sb, const char *src, const msb_fs_entry *e, int dirfd,
                    const char *name, const char *shown, bool merge)
{
        struct stat st;

        switch (e->type) {
        case MSB_FS_FILE:
                return copy_out_file(sb, src, dirfd, name, shown);
        case MSB_FS_SYMLINK:
                if (!e->target)
                        return error_set(MSB_ERR_PROTOCOL, -EBADMSG,
                                         "copy %s:%s: a symlink without a target",
                                         msb_sandbox_name(sb), src);
                if (symlinkat(e->target, dirfd, name) == 0)
                        return 0;
                if (errno != EEXIST)
                        return host_fail(errno, "create", shown);
                /* replace what is there, unless it is a directory */
                if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
                        return host_fail(EISDIR, "replace", shown);
                if (unlinkat(dirfd, name, 0) < 0 || symlinkat(e->target, dirfd, name) < 0)
                        return host_fail(errno, "create", shown);
                return 0;
        case MSB_FS_DIR:
                return copy_out_dir(sb, src, e, dirfd, name, shown, merge);
        default:
                log_debug("copy %s:%s: not a regular file, directory or symlink: skipped",
                          msb_sandbox_name(sb), src);
                return 0;
        }
}

int msb_fs_copy_out(msb_sandbox *sb, const char *guest_path, const char *host_path)
{
        _cleanup_free_ char *final = NULL, *parent = NULL, *name = NULL;
        _cleanup_close_ int dirfd = -1;
        msb_fs_entry e = {0};
        mode_t dst_type = 0;
        struct stat st;
        bool merge;
        int r;

        r = check_copy_paths(host_path, guest_path);
        if (r < 0)
                return r;
        r = msb_fs_stat(sb, guest_path, false, &e);
        if (r < 0)
                return r;
        if (stat(host_path, &st) == 0)
                dst_type = st.st_mode & S_IFMT;
        else if (errno != ENOENT)
                r = host_fail(errno, "copy to", host_path);
        if (r >= 0 && dst_type == 0) {
                parent = parent_of(host_path);
                if (!parent)
                        r = oom();
                else if (stat(parent, &st) < 0)
                        r = error_set(MSB_ERR_SYSTEM, -errno,
                                      "copy to %s: the directory %s does not exist", host_path,
                                      parent);
                else if (!S_ISDIR(st.st_mode))
                        r = host_fail(ENOTDIR, "copy to", parent);
        }
        if (r >= 0)
                r = destination(guest_path, e.type == MSB_FS_DIR, host_path, dst_type, "", &final,
                                &merge);
        if (r < 0)
                goto out;
        if (merge) {
                /* the contents of a directory into an existing one */
                free(parent);
                parent = strdup(final);
                name = strdup(".");
        } else {
                free(parent);
                parent = parent_of(final);
                name = last_component(final);
        }
        if (!parent || !name) {
                r = oom();
                goto out;
        }
        dirfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0) {
                r = host_fail(errno, "open", parent);
                goto out;
        }
        r = copy_out(sb, guest_path, &e, dirfd, name, final, merge);
out:
        msb_fs_entry_clear(&e);
        return r;
}
