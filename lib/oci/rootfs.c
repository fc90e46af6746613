/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: see rootfs.h. The image is written under tmp/ while
 * the manifest's lock is held and renamed into rootfs/ once finished, so a
 * reader never sees a partial image and a failed build leaves nothing (the
 * writer deletes its file). Errors name the layer ("layer 2/5
 * sha256:abcd...") and the entry, and say whether a full disk is the
 * image's or the host's.
 */
#include "rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "lib/core/util.h"
#include "lib/image/ext4.h"

char *oci_rootfs_rel(const char *manifest_digest)
{
        return strdup_printf("rootfs/%s.ext4", oci_digest_hex(manifest_digest));
}

/* After a failure reading a cached blob: if the blob no longer matches its
 * digest (changed on disk), that is the error, and the blob is deleted so
 * that the next pull fetches it again. */
static int check_blob(const struct oci_cache *c, const char *digest, int r, struct oci_err *e)
{
        if (r != -EBADMSG && r != -EIO)
                return r;
        if (oci_cache_blob_verify(c, digest) == -EBADMSG)
                return oci_err_set(e, -EBADMSG,
                                   "digest mismatch: the cached blob was corrupt and is removed");
        return r;
}

static char *meta_rel(const char *digest)
{
        return strdup_printf("layers/%s", oci_digest_hex(digest));
}

int oci_layer_meta_get(const struct oci_cache *c, const char *digest, uint64_t size,
                       const struct oci_limits *limits, struct oci_layer_meta **ret,
                       struct oci_err *e)
{
        _cleanup_free_ char *rel = meta_rel(digest), *data = NULL, *lock_name = NULL;
        _cleanup_(oci_layer_meta_freep) struct oci_layer_meta *m = NULL;
        _cleanup_close_ int fd = -1, lock_fd = -1;
        size_t len;
        int r;

        if (!rel)
                return -ENOMEM;
        if (oci_cache_file_read(c, rel, SIZE_MAX / 2, &data, &len) >= 0 &&
            oci_layer_meta_parse(data, len, ret) >= 0)
                return 0;
        lock_name = strdup_printf("scan-%s", oci_digest_hex(digest));
        if (!lock_name)
                return -ENOMEM;
        r = oci_cache_lock(c, lock_name, true, &lock_fd);
        if (r < 0)
                return r;
        free(data);
        data = NULL;
        if (oci_cache_file_read(c, rel, SIZE_MAX / 2, &data, &len) >= 0 &&
            oci_layer_meta_parse(data, len, ret) >= 0)
                return 0; /* another process scanned it meanwhile */
        free(data);
        data = NULL;
        if (!oci_cache_has_blob(c, digest, size))
                return oci_err_set(e, -ENOENT, "the blob is not in the cache");
        r = oci_cache_blob_open(c, digest, &fd);
        if (r < 0)
                return oci_err_set(e, r, "cannot open the blob: %s", strerror(-r));
        r = oci_layer_scan(fd, NULL, 0, digest, limits, &m, e);
        if (r < 0)
                return check_blob(c, digest, r, e);
        r = oci_layer_meta_put(c, digest, m);
        if (r < 0)
                return oci_err_set(e, r, "cannot write the layer index: %s", strerror(-r));
        *ret = TAKE_PTR(m);
        return 0;
}

int oci_layer_meta_put(const struct oci_cache *c, const char *digest,
                       const struct oci_layer_meta *m)
{
        _cleanup_free_ char *rel = meta_rel(digest), *data = NULL;
        size_t len;
        int r;

        if (!rel)
                return -ENOMEM;
        r = oci_layer_meta_serialize(m, &data, &len);
        if (r < 0)
                return r;
        return oci_cache_file_write(c, rel, data, len);
}

static const char *writer_error(int r)
{
        switch (r) {
        case -EINVAL:
                return "malformed entry";
        case -ENAMETOOLONG:
                return "name too long";
        case -ENOENT:
                return "hard link target missing";
        case -EPERM:
                return "hard link to a directory";
        case -EMLINK:
                return "too many hard links";
        case -ENOTDIR:
                return "a parent is not a directory (a write through a symlink?)";
        case -E2BIG:
                return "too many or too large extended attributes";
        case -EOPNOTSUPP:
                return "extended attribute ext4 cannot store";
        case -EFBIG:
                return "file too large for ext4";
        default:
                return strerror(-r);
        }
}

/* -ENOSPC: the image's capacity or the host's disk? */
static int no_space(const struct oci_cache *c, struct oci_err *e)
{
        struct statvfs st;

        if (fstatvfs(c->dir_fd, &st) == 0 && (uint64_t)st.f_bavail * st.f_frsize < (64u << 20))
                return oci_err_set(e, -ENOSPC, "no space left on the host disk (%s)", c->path);
        return oci_err_set(e, -ENOSPC, "the image is full (more data than its layers declared)");
}

struct build {
        const struct oci_cache *cache;
        struct img_ext4 *w;
        const struct oci_limits *limits;
        oci_rootfs_progress_fn progress;
        void *userdata;
};

static int apply_removals(struct build *b, const struct oci_layer_meta *meta)
{
        for (size_t i = 0; i < meta->n_opaques; i++) {
                int r = img_ext4_remove_children(b->w, meta->opaques[i]);

                if (r < 0 && r != -ENOENT && r != -ENOTDIR)
                        return r;
        }
        for (size_t i = 0; i < meta->n_whiteouts; i++) {
                int r = img_ext4_remove(b->w, meta->whiteouts[i]);

                if (r < 0 && r != -ENOENT && r != -ENOTDIR && r != -EINVAL)
                        return r;
        }
        return 0;
}

static int add_layer(struct build *b, const struct oci_descriptor *d,
                     const struct oci_layer_meta *meta, size_t idx, size_t n, struct oci_err *e)
{
        _cleanup_(oci_layer_freep) struct oci_layer_reader *rd = NULL;
        _cleanup_close_ int fd = -1;
        struct oci_tar_item it;
        uint64_t entries = 0;
        int r;

        r = apply_removals(b, meta);
        if (r < 0)
                return r == -ENOSPC ? no_space(b->cache, e)
                                    : oci_err_set(e, r, "applying whiteouts: %s", strerror(-r));
        r = oci_cache_blob_open(b->cache, d->digest, &fd);
        if (r < 0)
                return oci_err_set(e, r, "cannot open the blob: %s", strerror(-r));
        r = oci_layer_open(fd, NULL, 0, d->digest, b->limits, &rd, e);
        if (r < 0)
                return check_blob(b->cache, d->digest, r, e);
        while ((r = oci_layer_next(rd, &it, e)) > 0) {
                if (it.kind != OCI_TAR_ENTRY)
                        continue;
                r = img_ext4_add(b->w, &it.entry);
                if (r == -ENOSPC)
                        return no_space(b->cache, e);
                if (r == -EBADMSG || r == -EIO)
                        return check_blob(b->cache, d->digest,
                                          oci_err_set(e, -EBADMSG, "entry '%.200s': %s",
                                                      it.entry.path,
                                                      *oci_layer_errmsg(rd) ? oci_layer_errmsg(rd)
                                                                            : "truncated data"),
                                          e);
                if (r < 0)
                        /* a missing link target is the layer's fault, not a missing image */
                        return oci_err_set(e, r == -ENOENT ? -EBADMSG : r, "entry '%.200s': %s",
                                           it.entry.path, writer_error(r));
                if (b->progress && (++entries & 1023) == 0) {
                        off_t pos = lseek(fd, 0, SEEK_CUR);

                        b->progress(b->userdata, idx, n, pos > 0 ? (uint64_t)pos : 0, d->size);
                }
        }
        if (r < 0)
                return check_blob(b->cache, d->digest, r, e);
        r = oci_layer_finish(rd, NULL, NULL, e);
        if (r < 0)
                return check_blob(b->cache, d->digest, r, e);
        if (b->progress)
                b->progress(b->userdata, idx, n, d->size, d->size);
        return 0;
}

static int layer_prefix(struct oci_err *e, int r, size_t i, size_t n, const char *digest)
{
        return oci_err_prefix(e, r, "layer %zu/%zu %.19s", i + 1, n, digest);
}

int oci_rootfs_build(const struct oci_cache *c, const char *manifest_digest,
                     const struct oci_manifest *m, const struct oci_image_config *cfg,
                     const struct oci_limits *limits, oci_rootfs_progress_fn progress,
                     void *userdata, char **ret_path, struct oci_err *e)
{
        _cleanup_free_ char *rel = oci_rootfs_rel(manifest_digest), *tmp = NULL, *abs_tmp = NULL,
                            *lock_name = NULL;
        _cleanup_free_ struct oci_layer_meta **metas = NULL;
        _cleanup_(img_ext4_freep) struct img_ext4 *w = NULL;
        _cleanup_close_ int lock_fd = -1;
        struct oci_limits lim;
        struct img_ext4_usage total = {0};
        uint64_t size, inodes, removals = 0;
        struct build b;
        struct stat st;
        int r;

        if (limits)
                lim = *limits;
        else
                oci_limits_default(&lim);
        lock_name = strdup_printf("rootfs-%s", oci_digest_hex(manifest_digest));
        if (!rel || !lock_name)
                return -ENOMEM;
        r = oci_cache_lock(c, lock_name, true, &lock_fd);
        if (r < 0)
                return oci_err_set(e, r, "cannot lock the image: %s", strerror(-r));
        if (fstatat(c->dir_fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
                *ret_path = oci_cache_abs(c, rel);
                return *ret_path ? 0 : -ENOMEM;
        }
        if (cfg && cfg->diff_ids && cfg->n_diff_ids != m->n_layers)
                return oci_err_set(e, -EBADMSG,
                                   "the image config lists %zu layers, the manifest %zu",
                                   cfg->n_diff_ids, m->n_layers);

        metas = calloc(m->n_layers + 1, sizeof(*metas));
        if (!metas)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_layers; i++) {
                const struct oci_descriptor *d = &m->layers[i];

                r = oci_layer_meta_get(c, d->digest, d->size, &lim, &metas[i], e);
                if (r >= 0 && cfg && cfg->diff_ids && !streq(cfg->diff_ids[i], metas[i]->diff_id))
                        r = oci_err_set(e, -EBADMSG,
                                        "diff_id mismatch: the config says %s, the layer is %s",
                                        cfg->diff_ids[i], metas[i]->diff_id);
                if (r < 0) {
                        layer_prefix(e, r, i, m->n_layers, d->digest);
                        goto out;
                }
                total.entries += metas[i]->usage.entries;
                total.dirs += metas[i]->usage.dirs;
                total.files += metas[i]->usage.files;
                total.data_bytes += metas[i]->usage.data_bytes;
                total.name_bytes += metas[i]->usage.name_bytes;
                total.xattr_inodes += metas[i]->usage.xattr_inodes;
                removals += metas[i]->n_whiteouts + metas[i]->n_opaques;
                if (total.entries + removals > lim.max_entries) {
                        r = oci_err_set(e, -E2BIG, "more than %llu entries in the image",
                                        (unsigned long long)lim.max_entries);
                        goto out;
                }
                if (total.data_bytes > lim.max_total_bytes) {
                        r = oci_err_set(e, -EFBIG, "more than %llu bytes of file data",
                                        (unsigned long long)lim.max_total_bytes);
                        goto out;
                }
        }
        r = img_ext4_capacity(&total, false, &size, &inodes);
        if (r < 0) {
                r = oci_err_set(e, r, "the image is too large for one ext4 disk");
                goto out;
        }
        tmp = strdup_printf("tmp/rootfs-%s.ext4", oci_digest_hex(manifest_digest));
        abs_tmp = tmp ? oci_cache_abs(c, tmp) : NULL;
        if (!abs_tmp) {
                r = -ENOMEM;
                goto out;
        }
        unlinkat(c->dir_fd, tmp, 0); /* a crashed build's; we hold the lock */
        r = img_ext4_create(abs_tmp,
                            &(struct img_ext4_params){.size_bytes = size, .inodes = inodes}, &w);
        if (r < 0) {
                r = r == -ENOSPC ? no_space(c, e)
                                 : oci_err_set(e, r, "cannot create the image: %s", strerror(-r));
                goto out;
        }
        b = (struct build){c, w, &lim, progress, userdata};
        for (size_t i = 0; i < m->n_layers; i++) {
                r = add_layer(&b, &m->layers[i], metas[i], i, m->n_layers, e);
                if (r < 0) {
                        layer_prefix(e, r, i, m->n_layers, m->layers[i].digest);
                        goto out;
                }
        }
        r = img_ext4_finish(w);
        if (r < 0) {
                r = r == -ENOSPC ? no_space(c, e)
                                 : oci_err_set(e, r, "cannot write the image: %s", strerror(-r));
                goto out;
        }
        if (renameat(c->dir_fd, tmp, c->dir_fd, rel) < 0) {
                r = oci_err_set(e, negative_errno(), "cannot publish the image: %m");
                unlinkat(c->dir_fd, tmp, 0);
                goto out;
        }
        *ret_path = oci_cache_abs(c, rel);
        r = *ret_path ? 0 : -ENOMEM;
out:
        for (size_t i = 0; i < m->n_layers; i++)
                oci_layer_meta_free(metas[i]);
        return r;
}
