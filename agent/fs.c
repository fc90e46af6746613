/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: one core.fs.request runs in a helper process forked
 * for it, so that nothing a file operation does (a slow disk, a FIFO, a
 * stalled 9p mount, a huge directory) can block the agent's event loop.
 *
 * The helper keeps two descriptors and closes every other one it inherited
 * (holding a copy of another session's pipe would keep that pipe open):
 *
 *   frames  the write end of a pipe carrying whole protocol frames for the
 *           session (core.fs.entries, core.fs.data, core.fs.response), which
 *           the server forwards to the host. Blocking: when the server stops
 *           reading it (read window full, host queue full), the helper waits
 *           and only this session stalls. EPIPE means the server abandoned
 *           the session.
 *   data    write only: a SOCK_SEQPACKET socket from the server, one message
 *           per chunk of file bytes ('D' + bytes) and one 'E' at the end. The
 *           end of the socket without 'E' means the host went away or
 *           cancelled: the write is abandoned. Message boundaries make the
 *           difference explicit, whatever other process still holds a copy
 *           of the server's end.
 *
 * Writes go to a temporary file in the target's directory, which is renamed
 * over the target once 'E' arrived and everything was written; on any error
 * or abandonment the temporary file is removed. ext4 (auto_da_alloc) flushes
 * a file renamed over another, so there is no fsync per file.
 *
 * The helper runs as root with umask 0 (modes are applied exactly), does not
 * log (the server reports what goes wrong), and keeps the agent's blocked
 * signals: SIGTERM at shutdown does not cut a
 * write short; the server closes the helper's pipes instead.
 */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/core/util.h"

#ifndef RENAME_NOREPLACE /* musl's headers lack it */
#define RENAME_NOREPLACE (1 << 0)
#endif

#define LIST_BATCH      256u
#define LIST_BATCH_SIZE (48u * 1024u)
#define TMP_TRIES       100

struct helper {
        uint32_t id;
        int frames;
        int data;
        struct cbor_buf out;
        /* the temporary file of a write, removed unless it was committed */
        int tmp_dir;
        char tmp_name[64];
};

static uint8_t buf[PROTO_DATA_CHUNK + 1];

static void drop_tmp(struct helper *h)
{
        if (h->tmp_name[0])
                unlinkat(h->tmp_dir, h->tmp_name, 0);
        h->tmp_name[0] = '\0';
}

static _noreturn_ void helper_exit(struct helper *h)
{
        drop_tmp(h);
        _exit(0);
}

/* Writes the queued frames; a server that stopped listening (or a frame that
 * could not be encoded, which the server then reports) ends the helper. */
static void flush(struct helper *h)
{
        if (h->out.err < 0 || write_all(h->frames, h->out.data, h->out.len) < 0)
                helper_exit(h);
        cbor_buf_reset(&h->out);
}

static _noreturn_ void reply(struct helper *h, int err, const char *path, const char *fmt, ...)
        _printf_(4, 5);

/* Sends core.fs.response (err 0: success) and ends the helper. */
static _noreturn_ void reply(struct helper *h, int err, const char *path, const char *fmt, ...)
{
        struct proto_fs_response *resp = calloc(1, sizeof(*resp));
        va_list ap;

        drop_tmp(h);
        if (!resp)
                _exit(1);
        resp->err = err;
        snprintf(resp->path, sizeof(resp->path), "%s", path ? path : "");
        if (fmt) {
                va_start(ap, fmt);
                vsnprintf(resp->message, sizeof(resp->message), fmt, ap);
                va_end(ap);
        }
        proto_encode_fs_response(&h->out, h->id, resp);
        flush(h);
        _exit(0);
}

static _noreturn_ void reply_errno(struct helper *h, int err, const char *what, const char *path)
{
        reply(h, err, path, "%s %s: %s", what, path, strerror(err));
}

static _noreturn_ void reply_ok(struct helper *h)
{
        reply(h, 0, NULL, NULL);
}

static enum proto_fs_type type_of(mode_t mode)
{
        switch (mode & S_IFMT) {
        case S_IFDIR:
                return PROTO_FS_TYPE_DIR;
        case S_IFLNK:
                return PROTO_FS_TYPE_SYMLINK;
        case S_IFCHR:
                return PROTO_FS_TYPE_CHAR;
        case S_IFBLK:
                return PROTO_FS_TYPE_BLOCK;
        case S_IFIFO:
                return PROTO_FS_TYPE_FIFO;
        case S_IFSOCK:
                return PROTO_FS_TYPE_SOCKET;
        default:
                return PROTO_FS_TYPE_FILE;
        }
}

/* A stat record; for a symlink, its content read at dirfd/name. */
static int fill_stat(const struct stat *st, int dirfd, const char *name, struct proto_fs_stat *ret)
{
        *ret = (struct proto_fs_stat){
                .type = type_of(st->st_mode),
                .mode = st->st_mode & 07777,
                .size = (uint64_t)st->st_size,
                .uid = st->st_uid,
                .gid = st->st_gid,
                .mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec,
        };
        if (ret->type == PROTO_FS_TYPE_SYMLINK) {
                ssize_t n = readlinkat(dirfd, name, ret->target, sizeof(ret->target) - 1);

                if (n < 0)
                        return negative_errno();
                if (n == 0 || (size_t)n >= sizeof(ret->target) - 1)
                        return -ENAMETOOLONG;
                ret->target[n] = '\0';
        }
        return 0;
}

static _noreturn_ void op_stat(struct helper *h, const struct proto_fs_request *req)
{
        struct proto_fs_response *resp = calloc(1, sizeof(*resp));
        struct stat st;
        int r;

        if (!resp)
                reply_errno(h, ENOMEM, "stat", req->path);
        if ((req->follow ? stat(req->path, &st) : lstat(req->path, &st)) < 0)
                reply_errno(h, errno, "stat", req->path);
        r = fill_stat(&st, AT_FDCWD, req->path, &resp->stat);
        if (r < 0)
                reply_errno(h, -r, "readlink", req->path);
        resp->has_stat = true;
        proto_encode_fs_response(&h->out, h->id, resp);
        flush(h);
        _exit(0);
}

/* Sends the records gathered in items as one core.fs.entries frame. */
static void send_entries(struct helper *h, struct cbor_buf *items, size_t *count)
{
        if (*count == 0)
                return;
        if (items->err < 0 ||
            proto_encode_fs_entries(&h->out, h->id, items->data, items->len, *count) < 0)
                reply(h, ENOMEM, NULL, "out of memory listing a directory");
        flush(h);
        cbor_buf_reset(items);
        *count = 0;
}

static _noreturn_ void op_list(struct helper *h, const struct proto_fs_request *req)
{
        struct proto_fs_response *resp = calloc(1, sizeof(*resp));
        struct proto_fs_stat *rec = malloc(sizeof(*rec));
        struct cbor_buf items;
        size_t count = 0, total = 0;
        struct dirent *de;
        DIR *d;
        int fd;

        if (!resp || !rec)
                reply_errno(h, ENOMEM, "list", req->path);
        fd = open(req->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || !(d = fdopendir(fd)))
                reply_errno(h, errno, "list", req->path);
        cbor_buf_init(&items, 0);
        for (;;) {
                struct stat st;
                int r;

                errno = 0;
                de = readdir(d);
                if (!de) {
                        if (errno)
                                reply_errno(h, errno, "list", req->path);
                        break;
                }
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (total == PROTO_FS_MAX_ENTRIES) {
                        resp->truncated = true;
                        break;
                }
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno == ENOENT) /* removed since readdir() */
                                continue;
                        reply(h, errno, req->path, "list %s: %s: %s", req->path, de->d_name,
                              strerror(errno));
                }
                r = fill_stat(&st, dirfd(d), de->d_name, rec);
                if (r == -ENOENT)
                        continue;
                if (r < 0)
                        reply(h, -r, req->path, "list %s: %s: %s", req->path, de->d_name,
                              strerror(-r));
                snprintf(rec->name, sizeof(rec->name), "%s", de->d_name);
                if (proto_fs_stat_put(&items, rec) < 0)
                        reply(h, EINVAL, req->path, "list %s: cannot encode \"%s\"", req->path,
                              de->d_name);
                count++;
                total++;
                if (count == LIST_BATCH || items.len >= LIST_BATCH_SIZE)
                        send_entries(h, &items, &count);
        }
        send_entries(h, &items, &count);
        proto_encode_fs_response(&h->out, h->id, resp);
        flush(h);
        _exit(0);
}

static _noreturn_ void op_read(struct helper *h, const struct proto_fs_request *req)
{
        struct proto_fs_stat *rec = malloc(sizeof(*rec));
        const char *base = strrchr(req->path, '/') + 1;
        struct cbor_buf items;
        struct stat st;
        int fd;

        if (!rec)
                reply_errno(h, ENOMEM, "read", req->path);
        /* O_NONBLOCK: opening a FIFO must not wait for a writer */
        fd = open(req->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0 || fstat(fd, &st) < 0)
                reply_errno(h, errno, "read", req->path);
        if (S_ISDIR(st.st_mode))
                reply_errno(h, EISDIR, "read", req->path);
        if (!S_ISREG(st.st_mode))
                reply(h, EINVAL, req->path, "read %s: not a regular file", req->path);
        if (fd_set_nonblock(fd, false) < 0)
                reply_errno(h, errno, "read", req->path);
        fill_stat(&st, fd, "", rec);
        if (strcmp(base, ".") != 0 && strcmp(base, "..") != 0)
                snprintf(rec->name, sizeof(rec->name), "%s", base);
        cbor_buf_init(&items, 0);
        proto_fs_stat_put(&items, rec);
        if (items.err < 0 || proto_encode_fs_entries(&h->out, h->id, items.data, items.len, 1) < 0)
                reply_errno(h, ENOMEM, "read", req->path);
        flush(h);
        for (;;) {
                ssize_t n = read(fd, buf, PROTO_DATA_CHUNK);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        reply_errno(h, errno, "read", req->path);
                if (n == 0)
                        reply_ok(h);
                proto_encode_data(&h->out, h->id, PROTO_FS_DATA, buf, (size_t)n);
                flush(h);
        }
}

/* Creates the temporary file of a write in dirfd: its fd. */
static int open_tmp(struct helper *h, int dirfd)
{
        for (int i = 0; i < TMP_TRIES; i++) {
                uint64_t rnd = now_ns(CLOCK_MONOTONIC) ^ ((uint64_t)getpid() << 32);
                int fd;

                snprintf(h->tmp_name, sizeof(h->tmp_name), ".msb-write-%016llx",
                         (unsigned long long)(rnd * 0x9e3779b97f4a7c15ull + (uint64_t)i));
                fd = openat(dirfd, h->tmp_name,
                            O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd >= 0) {
                        h->tmp_dir = dirfd;
                        return fd;
                }
                h->tmp_name[0] = '\0';
                if (errno != EEXIST)
                        return negative_errno();
        }
        return -EEXIST;
}

/* Moves the temporary file to name; exclusive: only if name does not exist. */
static int commit_tmp(struct helper *h, const char *name, bool exclusive)
{
        int dirfd = h->tmp_dir;

        if (!exclusive) {
                if (renameat(dirfd, h->tmp_name, dirfd, name) < 0)
                        return negative_errno();
        } else if (syscall(SYS_renameat2, dirfd, h->tmp_name, dirfd, name, RENAME_NOREPLACE) < 0) {
                /* file systems without RENAME_NOREPLACE (9p): link, which never replaces */
                if (errno != EINVAL && errno != ENOSYS)
                        return negative_errno();
                if (linkat(dirfd, h->tmp_name, dirfd, name, 0) < 0)
                        return negative_errno();
                unlinkat(dirfd, h->tmp_name, 0);
        }
        h->tmp_name[0] = '\0';
        return 0;
}

static _noreturn_ void op_write(struct helper *h, const struct proto_fs_request *req)
{
        char dir[PROTO_FS_PATH_MAX];
        const char *slash = strrchr(req->path, '/'), *name = slash + 1;
        struct stat st;
        int dirfd, fd, r;

        snprintf(dir, sizeof(dir), "%.*s", slash == req->path ? 1 : (int)(slash - req->path),
                 req->path);
        if (!*name || streq(name, ".") || streq(name, ".."))
                reply_errno(h, EISDIR, "write", req->path);
        dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0)
                reply_errno(h, errno, "write", dir);
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                if (S_ISDIR(st.st_mode))
                        reply_errno(h, EISDIR, "write", req->path);
                if (req->exclusive)
                        reply_errno(h, EEXIST, "write", req->path);
        }
        fd = open_tmp(h, dirfd);
        if (fd < 0)
                reply_errno(h, -fd, "write", req->path);
        for (;;) {
                ssize_t n = recv(h->data, buf, sizeof(buf), 0);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        reply_errno(h, errno, "write", req->path);
                if (n == 0) /* abandoned */
                        helper_exit(h);
                if (buf[0] == 'E')
                        break;
                r = write_all(fd, buf + 1, (size_t)n - 1);
                if (r < 0)
                        reply_errno(h, -r, "write", req->path);
        }
        if (fchmod(fd, req->mode) < 0 || close(fd) < 0)
                reply_errno(h, errno, "write", req->path);
        r = commit_tmp(h, name, req->exclusive);
        if (r < 0)
                reply_errno(h, -r, "write", req->path);
        reply_ok(h);
}

static _noreturn_ void op_mkdir(struct helper *h, const struct proto_fs_request *req)
{
        char parent[PROTO_FS_PATH_MAX];
        const char *slash = strrchr(req->path, '/');
        struct stat st;
        int r;

        if (req->parents && slash != req->path) {
                snprintf(parent, sizeof(parent), "%.*s", (int)(slash - req->path), req->path);
                r = mkdir_p(parent, 0755);
                if (r < 0)
                        reply_errno(h, -r, "mkdir", parent);
        }
        if (mkdir(req->path, req->mode) < 0) {
                if (errno == EEXIST && req->parents && stat(req->path, &st) == 0 &&
                    S_ISDIR(st.st_mode))
                        reply_ok(h);
                reply_errno(h, errno, "mkdir", req->path);
        }
        /* mkdir() leaves out set-id bits and may inherit the parent's setgid */
        if (chmod(req->path, req->mode) < 0)
                reply_errno(h, errno, "chmod", req->path);
        reply_ok(h);
}

static _noreturn_ void op_remove(struct helper *h, const struct proto_fs_request *req)
{
        char path[PROTO_FS_PATH_MAX];
        size_t len = strlen(req->path);
        struct stat st;
        int r = 0;

        /* "/a/link/" would resolve the link: remove what the name itself is */
        while (len > 1 && req->path[len - 1] == '/')
                len--;
        snprintf(path, sizeof(path), "%.*s", (int)len, req->path);
        if (streq(path, "/"))
                reply(h, EBUSY, path, "remove /: refusing to remove the root");
        if (lstat(path, &st) < 0)
                reply_errno(h, errno, "remove", path);
        if (!S_ISDIR(st.st_mode))
                r = unlink(path) < 0 ? negative_errno() : 0;
        else if (req->recursive)
                r = rm_rf(path);
        else
                r = rmdir(path) < 0 ? negative_errno() : 0;
        if (r < 0)
                reply_errno(h, -r, "remove", path);
        reply_ok(h);
}

static _noreturn_ void run(struct helper *h, const struct proto_fs_request *req)
{
        switch (req->op) {
        case PROTO_FS_OP_STAT:
                op_stat(h, req);
        case PROTO_FS_OP_LIST:
                op_list(h, req);
        case PROTO_FS_OP_READ:
                op_read(h, req);
        case PROTO_FS_OP_WRITE:
                op_write(h, req);
        case PROTO_FS_OP_MKDIR:
                op_mkdir(h, req);
        case PROTO_FS_OP_REMOVE:
                op_remove(h, req);
        case PROTO_FS_OP_RENAME:
                if (rename(req->path, req->target) < 0)
                        reply(h, errno, req->path, "rename %s to %s: %s", req->path, req->target,
                              strerror(errno));
                reply_ok(h);
        case PROTO_FS_OP_CHMOD:
                if (chmod(req->path, req->mode) < 0)
                        reply_errno(h, errno, "chmod", req->path);
                reply_ok(h);
        case PROTO_FS_OP_SYMLINK:
                if (symlink(req->target, req->path) < 0)
                        reply_errno(h, errno, "symlink", req->path);
                reply_ok(h);
        }
        reply(h, EOPNOTSUPP, req->path, "unsupported operation");
}

/* Closes the descriptors lo..hi (close_range(2) needs Linux 5.9). */
static void close_from(unsigned lo, unsigned hi)
{
        if (syscall(SYS_close_range, lo, hi, 0) == 0)
                return;
        for (unsigned fd = lo; fd <= hi && fd < 65536; fd++)
                close((int)fd);
}

/* Closes every descriptor but 0-2 and keep[0..1] (which may be -1). */
static void close_others(const int keep[2])
{
        unsigned lo = 3;
        int k[2] = {MIN(keep[0], keep[1]), MAX(keep[0], keep[1])};

        for (int i = 0; i < 2; i++) {
                if (k[i] < (int)lo)
                        continue;
                if (k[i] > (int)lo)
                        close_from(lo, (unsigned)k[i] - 1);
                lo = (unsigned)k[i] + 1;
        }
        close_from(lo, ~0u);
}

int agent_fs_spawn(uint32_t id, const struct proto_fs_request *req, struct agent_fs_child *ret)
{
        _cleanup_close_ int frames_r = -1, frames_w = -1, data_a = -1, data_h = -1;
        int fds[2];
        pid_t pid;

        if (pipe2(fds, O_CLOEXEC) < 0)
                return negative_errno();
        frames_r = fds[0];
        frames_w = fds[1];
        if (req->op == PROTO_FS_OP_WRITE) {
                if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0)
                        return negative_errno();
                data_a = fds[0];
                data_h = fds[1];
                if (shutdown(data_a, SHUT_RD) < 0 || shutdown(data_h, SHUT_WR) < 0 ||
                    fd_set_nonblock(data_a, true) < 0)
                        return negative_errno();
        }
        if (fd_set_nonblock(frames_r, true) < 0)
                return negative_errno();
        pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0) {
                struct helper h = {.id = id, .frames = frames_w, .data = data_h, .tmp_dir = -1};
                const int keep[2] = {frames_w, data_h};

                close_others(keep);
                /* the log's descriptor (/dev/kmsg) is gone, its number free */
                log_set_handler(NULL, LOG_LEVEL_ERROR, NULL);
                umask(0);
                cbor_buf_init(&h.out, 0);
                run(&h, req);
        }
        *ret = (struct agent_fs_child){
                .pid = pid,
                .frames_fd = TAKE_FD(frames_r),
                .data_fd = TAKE_FD(data_a),
        };
        return 0;
}
