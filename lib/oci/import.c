/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: the layer goes into the cache through an anonymous
 * blob writer (which hashes it), then is scanned like any pulled layer,
 * which checks that it is a tar we can flatten and yields its diff_id; the
 * config and the manifest are written around it. A directory is walked
 * with libarchive's disk reader (physical: symlinks are entries, never
 * followed) and written by its pax writer straight into the blob writer;
 * hard links are matched by libarchive's link resolver.
 */
#include "import.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dl.h"
#include "lib/core/util.h"
#include "manifest.h"
#include "rootfs.h"

#define COPY_BUF (1 << 20)

static la_ssize_t to_writer(struct archive *a, void *userdata, const void *data, size_t n)
{
        int r = oci_blob_writer_write(userdata, data, n);

        if (r < 0) {
                sym_archive_set_error(a, -r, "%s", strerror(-r));
                return -1;
        }
        return (la_ssize_t)n;
}

/* Copies the current entry's data (sparse regions at their offsets). */
static int copy_data(struct archive *in, struct archive *out, uint64_t size, uint8_t *zeros)
{
        uint64_t pos = 0;

        for (;;) {
                const void *buf;
                size_t len;
                la_int64_t off;
                int ar = sym_archive_read_data_block(in, &buf, &len, &off);

                if (ar == ARCHIVE_EOF)
                        break;
                if (ar < ARCHIVE_WARN || off < 0 || (uint64_t)off < pos)
                        return -EIO;
                /* the pax writer takes the file's bytes in order and keeps
                 * those of its data map: holes are passed as zeros */
                while (pos < (uint64_t)off) {
                        size_t n = (size_t)MIN((uint64_t)COPY_BUF, (uint64_t)off - pos);

                        if (sym_archive_write_data(out, zeros, n) != (la_ssize_t)n)
                                return -EIO;
                        pos += n;
                }
                if (len && sym_archive_write_data(out, buf, len) != (la_ssize_t)len)
                        return -EIO;
                pos += len;
        }
        while (pos < size) {
                size_t n = (size_t)MIN((uint64_t)COPY_BUF, size - pos);

                if (sym_archive_write_data(out, zeros, n) != (la_ssize_t)n)
                        return -EIO;
                pos += n;
        }
        return 0;
}

static int write_entry(struct archive *disk, struct archive *out, struct archive_entry *ae,
                       bool map_owner, uint8_t *zeros, struct oci_err *e)
{
        const char *rel = sym_archive_entry_pathname(ae);
        const char *host_path = sym_archive_entry_sourcepath(ae);
        int ar, r;

        if (map_owner) {
                if ((uid_t)sym_archive_entry_uid(ae) == geteuid()) {
                        sym_archive_entry_set_uid(ae, 0);
                        sym_archive_entry_set_uname(ae, "root");
                }
                if ((gid_t)sym_archive_entry_gid(ae) == getegid()) {
                        sym_archive_entry_set_gid(ae, 0);
                        sym_archive_entry_set_gname(ae, "root");
                }
        }
        ar = sym_archive_write_header(out, ae);
        if (ar < ARCHIVE_WARN)
                return oci_err_set(e, -EIO, "%s: %s", host_path ? host_path : rel,
                                   sym_archive_error_string(out));
        if (sym_archive_entry_filetype(ae) == AE_IFREG && sym_archive_entry_size(ae) > 0 &&
            !sym_archive_entry_hardlink(ae)) {
                r = copy_data(disk, out, (uint64_t)sym_archive_entry_size(ae), zeros);
                if (r < 0)
                        return oci_err_set(e, r, "%s: %s", host_path ? host_path : rel,
                                           sym_archive_error_string(disk)
                                                   ? sym_archive_error_string(disk)
                                                   : strerror(-r));
        }
        return 0;
}

static int pack_dir(const char *dir, bool map_owner, struct oci_blob_writer *w, struct oci_err *e)
{
        struct archive *disk = sym_archive_read_disk_new(), *out = sym_archive_write_new();
        struct archive_entry_linkresolver *lr = sym_archive_entry_linkresolver_new();
        _cleanup_free_ uint8_t *zeros = calloc(1, COPY_BUF);
        size_t dir_len = strlen(dir);
        int r = 0, ar;

        while (dir_len > 1 && dir[dir_len - 1] == '/')
                dir_len--;
        if (!disk || !out || !lr || !zeros) {
                r = -ENOMEM;
                goto out;
        }
        sym_archive_entry_linkresolver_set_strategy(lr, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
        if (sym_archive_read_disk_set_symlink_physical(disk) != ARCHIVE_OK ||
            sym_archive_read_disk_set_standard_lookup(disk) != ARCHIVE_OK ||
            sym_archive_write_set_format_pax_restricted(out) != ARCHIVE_OK ||
            sym_archive_write_set_bytes_in_last_block(out, 1) != ARCHIVE_OK ||
            sym_archive_write_open2(out, w, NULL, to_writer, NULL, NULL) != ARCHIVE_OK) {
                r = oci_err_set(e, -EIO, "cannot set up the archive writer");
                goto out;
        }
        if (sym_archive_read_disk_open(disk, dir) != ARCHIVE_OK) {
                r = oci_err_set(e, -EIO, "%s: %s", dir, sym_archive_error_string(disk));
                goto out;
        }
        for (;;) {
                struct archive_entry *ae = sym_archive_entry_new(), *sparse = NULL;
                const char *p;
                char *rel;

                if (!ae) {
                        r = -ENOMEM;
                        break;
                }
                ar = sym_archive_read_next_header2(disk, ae);
                if (ar == ARCHIVE_EOF) {
                        sym_archive_entry_free(ae);
                        break;
                }
                if (ar < ARCHIVE_WARN) {
                        r = oci_err_set(e, -EIO, "%s", sym_archive_error_string(disk));
                        sym_archive_entry_free(ae);
                        break;
                }
                sym_archive_read_disk_descend(disk);
                p = sym_archive_entry_pathname(ae);
                if (!p || strncmp(p, dir, dir_len) != 0) {
                        sym_archive_entry_free(ae);
                        continue;
                }
                p += dir_len;
                while (*p == '/')
                        p++;
                rel = *p ? strdup_printf("%s%s", p,
                                         sym_archive_entry_filetype(ae) == AE_IFDIR ? "/" : "")
                         : strdup("./");
                if (!rel) {
                        sym_archive_entry_free(ae);
                        r = -ENOMEM;
                        break;
                }
                /* the archive name first: hard links refer to it */
                sym_archive_entry_set_pathname(ae, rel);
                free(rel);
                sym_archive_entry_linkify(lr, &ae, &sparse);
                if (ae)
                        r = write_entry(disk, out, ae, map_owner, zeros, e);
                sym_archive_entry_free(ae);
                if (r < 0)
                        break;
        }
        if (r >= 0 && sym_archive_write_close(out) != ARCHIVE_OK)
                r = oci_err_set(e, -EIO, "writing the layer: %s", sym_archive_error_string(out));
out:
        if (lr)
                sym_archive_entry_linkresolver_free(lr);
        if (disk)
                sym_archive_read_free(disk);
        if (out)
                sym_archive_write_free(out);
        return r;
}

static int copy_file(int fd, struct oci_blob_writer *w)
{
        _cleanup_free_ uint8_t *buf = malloc(COPY_BUF);

        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n = read_full(fd, buf, COPY_BUF);
                int r;

                if (n < 0)
                        return (int)n;
                if (n == 0)
                        return 0;
                r = oci_blob_writer_write(w, buf, (size_t)n);
                if (r < 0)
                        return r;
        }
}

static const char *media_type_of(const struct oci_cache *c, const char *digest)
{
        _cleanup_close_ int fd = -1;
        uint8_t head[4] = {0};

        if (oci_cache_blob_open(c, digest, &fd) < 0 || read_full(fd, head, 4) < 0)
                return OCI_MT_OCI_LAYER;
        if (head[0] == 0x1f && head[1] == 0x8b)
                return OCI_MT_OCI_LAYER_GZIP;
        if (head[0] == 0x28 && head[1] == 0xb5 && head[2] == 0x2f && head[3] == 0xfd)
                return OCI_MT_OCI_LAYER_ZSTD;
        return OCI_MT_OCI_LAYER;
}

int oci_import(const struct oci_cache *c, const char *path, bool map_owner_to_root,
               const struct oci_limits *limits, char ret_digest[OCI_DIGEST_SIZE], struct oci_err *e)
{
        _cleanup_(oci_blob_writer_freep) struct oci_blob_writer *w = NULL;
        _cleanup_(oci_layer_meta_freep) struct oci_layer_meta *meta = NULL;
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *config = NULL, *manifest = NULL;
        char layer[OCI_DIGEST_SIZE], cfg_digest[OCI_DIGEST_SIZE], created[32];
        struct oci_descriptor ld = {0};
        struct oci_manifest m = {.media_type = OCI_MT_OCI_MANIFEST, .layers = &ld, .n_layers = 1};
        struct stat st;
        struct tm tm;
        time_t now = time(NULL);
        int r;

        r = oci_dl_archive(e);
        if (r < 0)
                return r;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0)
                return oci_err_set(e, negative_errno(), "%s: %m", path);
        r = oci_blob_writer_open(c, NULL, UINT64_MAX, false, &w);
        if (r < 0)
                return oci_err_set(e, r, "cannot write to the cache: %s", strerror(-r));
        if (S_ISDIR(st.st_mode))
                r = pack_dir(path, map_owner_to_root && geteuid() != 0, w, e);
        else if (S_ISREG(st.st_mode))
                r = copy_file(fd, w);
        else
                return oci_err_set(e, -EINVAL, "%s is neither a directory nor a file", path);
        if (r < 0)
                return oci_err_default(e, r, "%s: %s", path, strerror(-r));
        r = oci_blob_writer_commit(w, layer);
        if (r < 0)
                return oci_err_set(e, r, "cannot store the layer: %s", strerror(-r));
        ld.size = oci_blob_writer_offset(w);
        memcpy(ld.digest, layer, OCI_DIGEST_SIZE);
        ld.media_type = (char *)media_type_of(c, layer);

        r = oci_layer_meta_get(c, layer, ld.size, limits, &meta, e);
        if (r < 0) {
                oci_cache_blob_remove(c, layer);
                return oci_err_prefix(e, r, "%s", path);
        }
        gmtime_r(&now, &tm);
        strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
        config = oci_config_new_json(meta->diff_id, created);
        if (!config)
                return -ENOMEM;
        r = oci_cache_blob_put(c, config, strlen(config), cfg_digest);
        if (r < 0)
                return oci_err_set(e, r, "cannot store the config: %s", strerror(-r));
        m.config = (struct oci_descriptor){.media_type = OCI_MT_OCI_CONFIG, .size = strlen(config)};
        memcpy(m.config.digest, cfg_digest, OCI_DIGEST_SIZE);
        manifest = oci_manifest_to_json(&m);
        if (!manifest)
                return -ENOMEM;
        r = oci_cache_blob_put(c, manifest, strlen(manifest), ret_digest);
        if (r < 0)
                return oci_err_set(e, r, "cannot store the manifest: %s", strerror(-r));
        return 0;
}
