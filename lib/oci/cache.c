/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: every path is relative to one directory fd of the
 * cache (openat, renameat, unlinkat), so nothing is resolved through the
 * rest of the file system twice. Writes go to tmp/ and appear under their
 * final name with renameat() only once verified; tmp/ lives in the cache
 * so the rename never crosses file systems. Blob parts are named by the
 * digest they must reach, so an interrupted download is found and resumed
 * by the next process that wants the same blob, after it takes the blob's
 * lock (the lock is what makes the part file safe to append to).
 */
#include "cache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/core/util.h"

static const char *const cache_dirs[] = {"blobs",  "blobs/sha256", "layers",
                                         "rootfs", "tmp",          "locks"};

void oci_cache_close(struct oci_cache *c)
{
        if (!c)
                return;
        safe_close(c->lock_fd);
        safe_close(c->dir_fd);
        free(c->path);
        free(c);
}

int oci_cache_open(const char *home, bool exclusive, struct oci_cache **ret)
{
        _cleanup_(oci_cache_closep) struct oci_cache *c = NULL;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->dir_fd = c->lock_fd = -1;
        c->path = strdup_printf("%s/cache", home);
        if (!c->path)
                return -ENOMEM;
        r = mkdir_p(c->path, 0700);
        if (r < 0)
                return r;
        c->dir_fd = open(c->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (c->dir_fd < 0)
                return negative_errno();
        for (size_t i = 0; i < ARRAY_SIZE(cache_dirs); i++)
                if (mkdirat(c->dir_fd, cache_dirs[i], 0700) < 0 && errno != EEXIST)
                        return negative_errno();
        c->lock_fd = openat(c->dir_fd, ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (c->lock_fd < 0)
                return negative_errno();
        while (flock(c->lock_fd, exclusive ? LOCK_EX : LOCK_SH) < 0)
                if (errno != EINTR)
                        return negative_errno();
        *ret = TAKE_PTR(c);
        return 0;
}

char *oci_cache_blob_rel(const char *digest)
{
        return strdup_printf("blobs/sha256/%s", oci_digest_hex(digest));
}

char *oci_cache_abs(const struct oci_cache *c, const char *rel)
{
        return strdup_printf("%s/%s", c->path, rel);
}

bool oci_cache_has_blob(const struct oci_cache *c, const char *digest, uint64_t size)
{
        _cleanup_free_ char *rel = oci_cache_blob_rel(digest);
        struct stat st;

        if (!rel || fstatat(c->dir_fd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                return false;
        return size == UINT64_MAX || (uint64_t)st.st_size == size;
}

int oci_cache_blob_open(const struct oci_cache *c, const char *digest, int *ret_fd)
{
        _cleanup_free_ char *rel = oci_cache_blob_rel(digest);
        int fd;

        if (!rel)
                return -ENOMEM;
        fd = openat(c->dir_fd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return negative_errno();
        *ret_fd = fd;
        return 0;
}

int oci_cache_file_read(const struct oci_cache *c, const char *rel, size_t max, char **ret,
                        size_t *ret_len)
{
        _cleanup_close_ int fd = openat(c->dir_fd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        ssize_t n;

        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EBADMSG;
        if ((uint64_t)st.st_size > max)
                return -E2BIG;
        buf = malloc((size_t)st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        n = read_full(fd, buf, (size_t)st.st_size + 1);
        if (n < 0)
                return (int)n;
        if ((size_t)n > (size_t)st.st_size)
                return -E2BIG; /* grew while we read: not one of ours */
        buf[n] = '\0';
        *ret = TAKE_PTR(buf);
        *ret_len = (size_t)n;
        return 0;
}

int oci_cache_blob_read(const struct oci_cache *c, const char *digest, size_t max, char **ret,
                        size_t *ret_len)
{
        _cleanup_free_ char *rel = oci_cache_blob_rel(digest), *buf = NULL;
        char got[OCI_DIGEST_SIZE];
        size_t len;
        int r;

        if (!rel)
                return -ENOMEM;
        r = oci_cache_file_read(c, rel, max, &buf, &len);
        if (r < 0)
                return r;
        r = oci_sha256_buf(buf, len, got);
        if (r < 0)
                return r;
        if (!streq(got, digest)) {
                unlinkat(c->dir_fd, rel, 0);
                return -EBADMSG;
        }
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

int oci_cache_tmpfile(const struct oci_cache *c, const char *prefix, int *ret_fd, char **ret_rel)
{
        _cleanup_free_ char *rel = NULL;
        unsigned char rnd[8];
        int fd;

        for (int tries = 0; tries < 16; tries++) {
                uint64_t v = 0;

                if (getentropy(rnd, sizeof(rnd)) < 0)
                        return negative_errno();
                memcpy(&v, rnd, sizeof(v));
                free(rel);
                rel = strdup_printf("tmp/%s.%d.%016llx", prefix, (int)getpid(),
                                    (unsigned long long)v);
                if (!rel)
                        return -ENOMEM;
                fd = openat(c->dir_fd, rel, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                if (fd >= 0) {
                        *ret_fd = fd;
                        *ret_rel = TAKE_PTR(rel);
                        return 0;
                }
                if (errno != EEXIST)
                        return negative_errno();
        }
        return -EEXIST;
}

int oci_cache_file_write(const struct oci_cache *c, const char *rel, const void *data, size_t len)
{
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        int r;

        r = oci_cache_tmpfile(c, "file", &fd, &tmp);
        if (r < 0)
                return r;
        r = write_all(fd, data, len);
        if (r >= 0 && fchmod(fd, 0644) < 0)
                r = negative_errno();
        if (r >= 0 && renameat(c->dir_fd, tmp, c->dir_fd, rel) < 0)
                r = negative_errno();
        if (r < 0)
                unlinkat(c->dir_fd, tmp, 0);
        return r;
}

int oci_cache_blob_put(const struct oci_cache *c, const void *data, size_t len,
                       char ret_digest[OCI_DIGEST_SIZE])
{
        _cleanup_free_ char *rel = NULL;
        char digest[OCI_DIGEST_SIZE];
        int r;

        r = oci_sha256_buf(data, len, digest);
        if (r < 0)
                return r;
        rel = oci_cache_blob_rel(digest);
        if (!rel)
                return -ENOMEM;
        if (!oci_cache_has_blob(c, digest, len)) {
                r = oci_cache_file_write(c, rel, data, len);
                if (r < 0)
                        return r;
        }
        if (ret_digest)
                memcpy(ret_digest, digest, OCI_DIGEST_SIZE);
        return 0;
}

int oci_cache_blob_remove(const struct oci_cache *c, const char *digest)
{
        _cleanup_free_ char *rel = oci_cache_blob_rel(digest);

        if (!rel)
                return -ENOMEM;
        if (unlinkat(c->dir_fd, rel, 0) < 0)
                return negative_errno();
        return 0;
}

int oci_cache_blob_verify(const struct oci_cache *c, const char *digest)
{
        _cleanup_free_ char *buf = malloc(1 << 20);
        _cleanup_close_ int fd = -1;
        struct oci_sha256 h;
        char got[OCI_DIGEST_SIZE];
        ssize_t n;
        int r;

        if (!buf)
                return -ENOMEM;
        r = oci_cache_blob_open(c, digest, &fd);
        if (r < 0)
                return r;
        r = oci_sha256_init(&h);
        if (r < 0)
                return r;
        while ((n = read_full(fd, buf, 1 << 20)) > 0)
                oci_sha256_update(&h, buf, (size_t)n);
        oci_sha256_final(&h, got);
        oci_sha256_free(&h);
        if (n < 0)
                return (int)n;
        if (!streq(got, digest)) {
                oci_cache_blob_remove(c, digest);
                return -EBADMSG;
        }
        return 0;
}

int oci_cache_lock(const struct oci_cache *c, const char *name, bool wait, int *ret_fd)
{
        _cleanup_free_ char *rel = strdup_printf("locks/%s.lock", name);
        _cleanup_close_ int fd = -1;

        if (!rel)
                return -ENOMEM;
        fd = openat(c->dir_fd, rel, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return negative_errno();
        while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
                if (errno == EWOULDBLOCK)
                        return -EAGAIN;
                if (errno != EINTR)
                        return negative_errno();
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

struct oci_blob_writer {
        const struct oci_cache *cache;
        int fd;
        int lock_fd;
        char *rel; /* tmp/<hex>.part or an anonymous tmp file */
        bool anonymous;
        bool discard;   /* delete the part when freed */
        bool existed;   /* the committed blob was there already */
        int tee_fd;     /* a copy of the stream goes there (not owned), or -1 */
        bool tee_whole; /* the tee started at offset 0 and lost nothing */
        char digest[OCI_DIGEST_SIZE];
        uint64_t expected_size;
        uint64_t offset;
        struct oci_sha256 hash;
};

void oci_blob_writer_free(struct oci_blob_writer *w)
{
        if (!w)
                return;
        if (w->rel && (w->anonymous || w->discard))
                unlinkat(w->cache->dir_fd, w->rel, 0);
        safe_close(w->fd);
        safe_close(w->lock_fd);
        oci_sha256_free(&w->hash);
        free(w->rel);
        free(w);
}

/* Hashes what an earlier attempt left in the part file. */
static int writer_resume(struct oci_blob_writer *w)
{
        _cleanup_free_ char *buf = malloc(1 << 20);
        struct stat st;

        if (!buf)
                return -ENOMEM;
        if (fstat(w->fd, &st) < 0)
                return negative_errno();
        if ((uint64_t)st.st_size > w->expected_size)
                return oci_blob_writer_restart(w);
        while (w->offset < (uint64_t)st.st_size) {
                ssize_t n = pread(w->fd, buf,
                                  MIN((uint64_t)(1 << 20), (uint64_t)st.st_size - w->offset),
                                  (off_t)w->offset);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        break;
                oci_sha256_update(&w->hash, buf, (size_t)n);
                w->offset += (uint64_t)n;
        }
        if (ftruncate(w->fd, (off_t)w->offset) < 0)
                return negative_errno();
        return 0;
}

int oci_blob_writer_open(const struct oci_cache *c, const char *digest, uint64_t expected_size,
                         bool nowait, struct oci_blob_writer **ret)
{
        _cleanup_(oci_blob_writer_freep) struct oci_blob_writer *w = NULL;
        int r;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->cache = c;
        w->fd = w->lock_fd = w->tee_fd = -1;
        w->expected_size = expected_size;
        r = oci_sha256_init(&w->hash);
        if (r < 0)
                return r;
        if (!digest) {
                w->anonymous = true;
                r = oci_cache_tmpfile(c, "blob", &w->fd, &w->rel);
                if (r < 0)
                        return r;
                *ret = TAKE_PTR(w);
                return 0;
        }
        if (!oci_digest_valid(digest))
                return -EINVAL;
        memcpy(w->digest, digest, OCI_DIGEST_SIZE);
        r = oci_cache_lock(c, oci_digest_hex(digest), !nowait, &w->lock_fd);
        if (r < 0)
                return r;
        if (oci_cache_has_blob(c, digest, expected_size)) {
                *ret = NULL;
                return 0;
        }
        w->rel = strdup_printf("tmp/%s.part", oci_digest_hex(digest));
        if (!w->rel)
                return -ENOMEM;
        /* O_APPEND: new data goes after what an earlier attempt left */
        w->fd = openat(c->dir_fd, w->rel, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW,
                       0600);
        if (w->fd < 0)
                return negative_errno();
        r = writer_resume(w);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(w);
        return 0;
}

bool oci_blob_writer_existed(const struct oci_blob_writer *w)
{
        return w->existed;
}

uint64_t oci_blob_writer_offset(const struct oci_blob_writer *w)
{
        return w->offset;
}

int oci_blob_writer_write(struct oci_blob_writer *w, const void *data, size_t n)
{
        int r;

        if (n > w->expected_size - w->offset) {
                w->discard = true;
                return -EFBIG;
        }
        oci_sha256_update(&w->hash, data, n);
        r = write_all(w->fd, data, n);
        if (r < 0)
                return r;
        w->offset += n;
        for (size_t done = 0; w->tee_fd >= 0 && done < n;) {
                ssize_t k = send(w->tee_fd, (const char *)data + done, n - done, MSG_NOSIGNAL);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        w->tee_fd = -1; /* the reader is gone: it only loses the copy */
                        w->tee_whole = false;
                        break;
                }
                done += (size_t)k;
        }
        return 0;
}

void oci_blob_writer_tee(struct oci_blob_writer *w, int fd)
{
        w->tee_fd = fd;
        w->tee_whole = w->offset == 0;
}

bool oci_blob_writer_tee_complete(const struct oci_blob_writer *w)
{
        return w->tee_whole && w->tee_fd >= 0;
}

int oci_blob_writer_restart(struct oci_blob_writer *w)
{
        if (ftruncate(w->fd, 0) < 0 || lseek(w->fd, 0, SEEK_SET) < 0)
                return negative_errno();
        w->offset = 0;
        w->tee_fd = -1; /* the copy so far is wrong now */
        w->tee_whole = false;
        oci_sha256_final(&w->hash, (char[OCI_DIGEST_SIZE]){0}); /* resets */
        return 0;
}

int oci_blob_writer_commit(struct oci_blob_writer *w, char ret_digest[OCI_DIGEST_SIZE])
{
        _cleanup_free_ char *dst = NULL;
        char got[OCI_DIGEST_SIZE];
        struct stat st;

        if (fstat(w->fd, &st) < 0 || (uint64_t)st.st_size != w->offset) {
                w->discard = true;
                return -EIO;
        }
        if (w->expected_size != UINT64_MAX && w->offset != w->expected_size) {
                w->discard = true;
                return -EPIPE;
        }
        oci_sha256_final(&w->hash, got);
        if (!w->anonymous && !streq(got, w->digest)) {
                w->discard = true;
                return -EBADMSG;
        }
        dst = oci_cache_blob_rel(got);
        if (!dst)
                return -ENOMEM;
        if (w->anonymous && oci_cache_has_blob(w->cache, got, w->offset)) {
                w->existed = true; /* the temporary file goes when w is freed */
                if (ret_digest)
                        memcpy(ret_digest, got, OCI_DIGEST_SIZE);
                return 0;
        }
        if (fchmod(w->fd, 0644) < 0 ||
            renameat(w->cache->dir_fd, w->rel, w->cache->dir_fd, dst) < 0) {
                w->discard = true;
                return negative_errno();
        }
        free(w->rel);
        w->rel = NULL;
        if (ret_digest)
                memcpy(ret_digest, got, OCI_DIGEST_SIZE);
        return 0;
}
