/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: two libarchive readers in a chain. The outer one
 * has only the gzip and zstd filters (both built in: a filter that would
 * run an external program is refused) and the "raw" format, so it turns
 * the blob into the decompressed byte stream; our read callback feeds it
 * from the fd or the buffer and hashes every compressed byte. The inner one
 * knows only tar (ustar, pax, GNU: long names, sparse files, large sizes,
 * xattrs) and pulls the decompressed stream through a second callback that
 * hashes it (the diff_id). Every byte thus passes each hash exactly once,
 * whether an entry's data is read or skipped, and oci_layer_finish() drains
 * what follows the end of the archive.
 *
 * Names are taken as the bytes of the archive (libarchive's multibyte form
 * in the C locale; a pax UTF-8 name is copied as is), which is what Linux
 * stores.
 */
#include "layer.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dl.h"
#include "lib/core/util.h"

#define LAYER_BUF (256 * 1024)

struct oci_layer_reader {
        int fd;
        const uint8_t *mem;
        size_t mem_len;
        bool mem_done;
        struct archive *outer, *inner;
        bool outer_eof;
        bool empty; /* a blob of 0 bytes */
        uint64_t blob_bytes;
        struct oci_sha256 zhash, thash;
        uint64_t tar_bytes;
        bool check_digest;
        char expected[OCI_DIGEST_SIZE];
        struct oci_limits limits;
        uint64_t n_entries;
        uint8_t *zbuf, *tbuf;
        char errmsg[256];

        /* the current item */
        char path[IMG_PATH_MAX + 2];
        char target[IMG_PATH_MAX + 2];
        struct img_xattr xattrs[IMG_XATTRS_MAX];
        struct img_extent *map;
        size_t map_cap, n_map;
        /* reading a sparse entry */
        size_t map_idx;
        uint64_t pos;
        const uint8_t *blk;
        size_t blk_len;
        uint64_t blk_off;
        bool blk_eof;
};

void oci_limits_default(struct oci_limits *l)
{
        *l = (struct oci_limits){
                .max_entries = OCI_DEFAULT_MAX_ENTRIES,
                .max_file_bytes = OCI_DEFAULT_MAX_FILE_BYTES,
                .max_total_bytes = OCI_DEFAULT_MAX_TOTAL_BYTES,
        };
}

static void save_archive_error(struct oci_layer_reader *r, struct archive *a)
{
        const char *s = sym_archive_error_string(a);

        snprintf(r->errmsg, sizeof(r->errmsg), "%s", s && *s ? s : "malformed archive");
}

const char *oci_layer_errmsg(const struct oci_layer_reader *r)
{
        return r->errmsg;
}

/* A reader with only the gzip and zstd filters, both built in
 * (ARCHIVE_WARN would mean "through an external program": refused), and
 * the raw format: it yields the decompressed bytes. NULL on failure. */
static struct archive *new_decompressor(void)
{
        struct archive *a = sym_archive_read_new();

        if (a && (sym_archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
                  sym_archive_read_support_filter_zstd(a) != ARCHIVE_OK ||
                  sym_archive_read_support_format_raw(a) != ARCHIVE_OK)) {
                sym_archive_read_free(a);
                a = NULL;
        }
        return a;
}

static la_ssize_t outer_read(struct archive *a, void *userdata, const void **buf)
{
        struct oci_layer_reader *r = userdata;
        ssize_t n;

        if (r->fd < 0) {
                if (r->mem_done)
                        return 0;
                r->mem_done = true;
                oci_sha256_update(&r->zhash, r->mem, r->mem_len);
                r->blob_bytes += r->mem_len;
                *buf = r->mem;
                return (la_ssize_t)r->mem_len;
        }
        do
                n = read(r->fd, r->zbuf, LAYER_BUF);
        while (n < 0 && errno == EINTR);
        if (n < 0) {
                sym_archive_set_error(a, errno, "cannot read the layer: %s", strerror(errno));
                return -1;
        }
        oci_sha256_update(&r->zhash, r->zbuf, (size_t)n);
        r->blob_bytes += (uint64_t)n;
        *buf = r->zbuf;
        return n;
}

static la_ssize_t inner_read(struct archive *a, void *userdata, const void **buf)
{
        struct oci_layer_reader *r = userdata;
        la_ssize_t n;

        if (r->outer_eof)
                return 0;
        n = sym_archive_read_data(r->outer, r->tbuf, LAYER_BUF);
        if (n < 0) {
                save_archive_error(r, r->outer);
                sym_archive_set_error(a, EIO, "%s", r->errmsg);
                return -1;
        }
        if (n == 0)
                r->outer_eof = true;
        oci_sha256_update(&r->thash, r->tbuf, (size_t)n);
        r->tar_bytes += (uint64_t)n;
        *buf = r->tbuf;
        return n;
}

void oci_layer_free(struct oci_layer_reader *r)
{
        if (!r)
                return;
        if (r->inner)
                sym_archive_read_free(r->inner);
        if (r->outer)
                sym_archive_read_free(r->outer);
        oci_sha256_free(&r->zhash);
        oci_sha256_free(&r->thash);
        free(r->zbuf);
        free(r->tbuf);
        free(r->map);
        free(r);
}

int oci_layer_open(int fd, const void *mem, size_t mem_len, const char *expected_digest,
                   const struct oci_limits *limits, struct oci_layer_reader **ret,
                   struct oci_err *e)
{
        _cleanup_(oci_layer_freep) struct oci_layer_reader *r = NULL;
        struct archive_entry *ae;
        int ar;

        ar = oci_dl_archive(e);
        if (ar < 0)
                return ar;
        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->fd = fd;
        r->mem = mem;
        r->mem_len = mem_len;
        if (limits)
                r->limits = *limits;
        else
                oci_limits_default(&r->limits);
        if (expected_digest) {
                r->check_digest = true;
                snprintf(r->expected, sizeof(r->expected), "%s", expected_digest);
        }
        r->zbuf = malloc(LAYER_BUF);
        r->tbuf = malloc(LAYER_BUF);
        if (!r->zbuf || !r->tbuf || oci_sha256_init(&r->zhash) < 0 ||
            oci_sha256_init(&r->thash) < 0)
                return -ENOMEM;

        r->outer = new_decompressor();
        r->inner = sym_archive_read_new();
        if (!r->outer || !r->inner)
                return -ENOMEM;
        if (sym_archive_read_support_format_tar(r->inner) != ARCHIVE_OK)
                return -EOPNOTSUPP;
        ar = sym_archive_read_open2(r->outer, r, NULL, outer_read, NULL, NULL);
        if (ar == ARCHIVE_OK)
                ar = sym_archive_read_next_header(r->outer, &ae);
        if (ar == ARCHIVE_EOF || (ar != ARCHIVE_OK && r->blob_bytes == 0)) {
                r->outer_eof = r->empty = true; /* an empty blob: no entries */
        } else if (ar < ARCHIVE_WARN) {
                save_archive_error(r, r->outer);
                return oci_err_set(e, -EBADMSG, "%s", r->errmsg);
        } else if (sym_archive_read_open2(r->inner, r, NULL, inner_read, NULL, NULL) !=
                   ARCHIVE_OK) {
                save_archive_error(r, r->inner);
                return oci_err_set(e, -EBADMSG, "%s", r->errmsg);
        }
        *ret = TAKE_PTR(r);
        return 0;
}

/* Lexically cleans an archive path into out ("/a/b", "/" for the root).
 * -EXDEV when ".." climbs above the root, -ENAMETOOLONG, -EINVAL for an
 * empty path. */
static int clean_path(const char *in, char *out, size_t size)
{
        size_t len = 0;

        if (!*in)
                return -EINVAL;
        while (*in) {
                const char *end = strchr(in, '/');
                size_t n = end ? (size_t)(end - in) : strlen(in);

                if (n == 0 || (n == 1 && in[0] == '.')) {
                        /* skip */
                } else if (n == 2 && in[0] == '.' && in[1] == '.') {
                        if (len == 0)
                                return -EXDEV;
                        while (len > 0 && out[len - 1] != '/')
                                len--;
                        len--; /* the slash */
                } else {
                        if (len + 1 + n >= size)
                                return -ENAMETOOLONG;
                        out[len++] = '/';
                        memcpy(out + len, in, n);
                        len += n;
                }
                in += n;
                if (*in == '/')
                        in++;
        }
        if (len == 0)
                out[len++] = '/';
        out[len] = '\0';
        return 0;
}

static int64_t time_ns(int64_t sec, long nsec)
{
        const int64_t max_sec = INT64_MAX / 1000000000 - 1;

        if (sec > max_sec)
                return max_sec * 1000000000;
        if (sec < -max_sec)
                return -max_sec * 1000000000;
        if (nsec < 0 || nsec > 999999999)
                nsec = 0;
        return sec * 1000000000 + nsec;
}

static ssize_t read_plain(void *ctx, void *buf, size_t n)
{
        struct oci_layer_reader *r = ctx;
        la_ssize_t k = sym_archive_read_data(r->inner, buf, n);

        if (k < 0) {
                save_archive_error(r, r->inner);
                return -EBADMSG;
        }
        return k;
}

/* The bytes of the data map's regions, one after the other, from the data
 * blocks libarchive hands out with their offsets; a region's bytes that no
 * block covers are zeros. */
static ssize_t read_sparse(void *ctx, void *buf, size_t n)
{
        struct oci_layer_reader *r = ctx;

        while (r->map_idx < r->n_map) {
                const struct img_extent *x = &r->map[r->map_idx];
                uint64_t end = x->offset + x->length, stop;
                size_t k;

                if (r->pos < x->offset)
                        r->pos = x->offset;
                if (r->pos >= end) {
                        r->map_idx++;
                        continue;
                }
                while (!r->blk_eof && (!r->blk || r->blk_off + r->blk_len <= r->pos)) {
                        const void *b;
                        size_t len;
                        la_int64_t off;
                        int ar = sym_archive_read_data_block(r->inner, &b, &len, &off);

                        if (ar == ARCHIVE_EOF) {
                                r->blk_eof = true;
                                r->blk = NULL;
                                break;
                        }
                        if (ar < ARCHIVE_WARN || off < 0) {
                                save_archive_error(r, r->inner);
                                return -EBADMSG;
                        }
                        r->blk = b;
                        r->blk_len = len;
                        r->blk_off = (uint64_t)off;
                }
                if (r->blk && r->blk_off <= r->pos) {
                        size_t in = (size_t)(r->pos - r->blk_off);

                        k = (size_t)MIN((uint64_t)MIN(n, r->blk_len - in), end - r->pos);
                        memcpy(buf, r->blk + in, k);
                } else {
                        stop = r->blk && r->blk_off < end ? r->blk_off : end;
                        k = (size_t)MIN((uint64_t)n, stop - r->pos);
                        memset(buf, 0, k);
                }
                r->pos += k;
                return (ssize_t)k;
        }
        return 0;
}

static int load_sparse_map(struct oci_layer_reader *r, struct archive_entry *ae, uint64_t size,
                           uint64_t *ret_data)
{
        la_int64_t off, len;
        uint64_t prev_end = 0, data = 0;
        int count = sym_archive_entry_sparse_reset(ae);

        r->n_map = 0;
        if (count <= 0) {
                *ret_data = size;
                return 0;
        }
        if ((size_t)count > IMG_DATA_MAP_MAX)
                return -E2BIG;
        if ((size_t)count > r->map_cap) {
                struct img_extent *m = realloc(r->map, (size_t)count * sizeof(*m));

                if (!m)
                        return -ENOMEM;
                r->map = m;
                r->map_cap = (size_t)count;
        }
        while (sym_archive_entry_sparse_next(ae, &off, &len) == ARCHIVE_OK) {
                if (off < 0 || len < 0 || (uint64_t)off < prev_end || (uint64_t)len > size ||
                    (uint64_t)off > size - (uint64_t)len || r->n_map >= r->map_cap)
                        return -EBADMSG;
                if (len == 0)
                        continue;
                r->map[r->n_map++] = (struct img_extent){(uint64_t)off, (uint64_t)len};
                prev_end = (uint64_t)off + (uint64_t)len;
                data += (uint64_t)len;
        }
        *ret_data = data;
        return 0;
}

static const char *entry_kind_name(int r)
{
        switch (r) {
        case -EXDEV:
                return "escapes the image";
        case -ENAMETOOLONG:
                return "name too long";
        default:
                return "malformed";
        }
}

/* Fills it from ae; 1 for an item, 0 for an entry to skip. */
static int translate(struct oci_layer_reader *r, struct archive_entry *ae, struct oci_tar_item *it,
                     struct oci_err *e)
{
        struct img_entry *en = &it->entry;
        const char *raw = sym_archive_entry_pathname(ae), *link, *name;
        char *base;
        size_t n_x = 0;
        la_int64_t uid = sym_archive_entry_uid(ae), gid = sym_archive_entry_gid(ae);
        int r2;

        *it = (struct oci_tar_item){.kind = OCI_TAR_ENTRY};
        if (!raw)
                return oci_err_set(e, -EBADMSG, "an entry has no name");
        r2 = clean_path(raw, r->path, sizeof(r->path));
        if (r2 < 0)
                return oci_err_set(e, r2 == -EXDEV ? -EXDEV : r2, "entry '%.200s': path %s", raw,
                                   entry_kind_name(r2));
        en->path = r->path;
        base = strrchr(r->path, '/') + 1;
        if (startswith(base, ".wh.")) {
                if (streq(base, ".wh..wh..opq")) {
                        it->kind = OCI_TAR_OPAQUE;
                        base[-1] = '\0'; /* cut "/.wh..wh..opq" */
                        if (!r->path[0])
                                strcpy(r->path, "/");
                        return 1;
                }
                if (startswith(base, ".wh..wh."))
                        return 0;
                name = base + 4;
                if (!*name || streq(name, ".") || streq(name, ".."))
                        return oci_err_set(e, -EINVAL, "entry '%.200s': malformed whiteout", raw);
                memmove(base, name, strlen(name) + 1);
                it->kind = OCI_TAR_WHITEOUT;
                return 1;
        }

        if (uid < 0 || uid >= UINT32_MAX || gid < 0 || gid >= UINT32_MAX)
                return oci_err_set(e, -EINVAL, "entry '%.200s': owner %lld:%lld out of range", raw,
                                   (long long)uid, (long long)gid);
        en->uid = (uid_t)uid;
        en->gid = (gid_t)gid;
        en->mode = sym_archive_entry_mode(ae) & 07777;
        en->mtime_ns = time_ns(sym_archive_entry_mtime(ae), sym_archive_entry_mtime_nsec(ae));
        en->atime_ns =
                sym_archive_entry_atime_is_set(ae)
                        ? time_ns(sym_archive_entry_atime(ae), sym_archive_entry_atime_nsec(ae))
                        : en->mtime_ns;
        en->ctime_ns =
                sym_archive_entry_ctime_is_set(ae)
                        ? time_ns(sym_archive_entry_ctime(ae), sym_archive_entry_ctime_nsec(ae))
                        : en->mtime_ns;

        link = sym_archive_entry_hardlink(ae);
        if (link) {
                r2 = clean_path(link, r->target, sizeof(r->target));
                if (r2 < 0)
                        return oci_err_set(e, r2, "entry '%.200s': hard link target '%.200s' %s",
                                           raw, link, entry_kind_name(r2));
                en->type = IMG_ENTRY_HARDLINK;
                en->target = r->target;
                return 1;
        }
        switch (sym_archive_entry_filetype(ae)) {
        case AE_IFREG:
                en->type = IMG_ENTRY_REG;
                break;
        case AE_IFDIR:
                en->type = IMG_ENTRY_DIR;
                break;
        case AE_IFLNK:
                en->type = IMG_ENTRY_SYMLINK;
                link = sym_archive_entry_symlink(ae);
                if (!link || !*link)
                        return oci_err_set(e, -EINVAL, "entry '%.200s': empty symlink target", raw);
                if (strlen(link) > IMG_SYMLINK_MAX)
                        return oci_err_set(e, -ENAMETOOLONG,
                                           "entry '%.200s': symlink target too long", raw);
                en->target = link;
                break;
        case AE_IFCHR:
                en->type = IMG_ENTRY_CHR;
                break;
        case AE_IFBLK:
                en->type = IMG_ENTRY_BLK;
                break;
        case AE_IFIFO:
                en->type = IMG_ENTRY_FIFO;
                break;
        case AE_IFSOCK:
                en->type = IMG_ENTRY_SOCK;
                break;
        default:
                return oci_err_set(e, -EINVAL, "entry '%.200s': unsupported file type", raw);
        }
        if (en->type == IMG_ENTRY_CHR || en->type == IMG_ENTRY_BLK) {
                en->rdev_major = (uint32_t)sym_archive_entry_rdevmajor(ae);
                en->rdev_minor = (uint32_t)sym_archive_entry_rdevminor(ae);
        }

        sym_archive_entry_xattr_reset(ae);
        for (;;) {
                const char *xname;
                const void *value;
                size_t size;

                if (sym_archive_entry_xattr_next(ae, &xname, &value, &size) != ARCHIVE_OK)
                        break;
                if (!xname || !img_ext4_xattr_supported(xname) ||
                    startswith(xname, "trusted.overlay."))
                        continue;
                /* libarchive reports an attribute twice when the archive
                 * carries both the SCHILY and the LIBARCHIVE pax form */
                size_t j = 0;
                while (j < n_x && !streq(r->xattrs[j].name, xname))
                        j++;
                if (j == IMG_XATTRS_MAX)
                        return oci_err_set(e, -E2BIG, "entry '%.200s': too many xattrs", raw);
                r->xattrs[j] = (struct img_xattr){xname, value, size};
                if (j == n_x)
                        n_x++;
        }
        en->xattrs = r->xattrs;
        en->n_xattrs = n_x;

        if (en->type == IMG_ENTRY_REG) {
                la_int64_t size =
                        sym_archive_entry_size_is_set(ae) ? sym_archive_entry_size(ae) : 0;
                uint64_t data;

                if (size < 0)
                        return oci_err_set(e, -EBADMSG, "entry '%.200s': negative size", raw);
                r2 = load_sparse_map(r, ae, (uint64_t)size, &data);
                if (r2 < 0)
                        return oci_err_set(e, r2, "entry '%.200s': malformed sparse map", raw);
                if (data > r->limits.max_file_bytes)
                        return oci_err_set(e, -EFBIG,
                                           "entry '%.200s': %llu bytes, over the limit of %llu",
                                           raw, (unsigned long long)data,
                                           (unsigned long long)r->limits.max_file_bytes);
                en->size = (uint64_t)size;
                en->read_ctx = r;
                if (r->n_map > 0) {
                        en->data_map = r->map;
                        en->n_data_map = r->n_map;
                        en->read = read_sparse;
                        r->map_idx = 0;
                        r->pos = 0;
                        r->blk = NULL;
                        r->blk_eof = false;
                } else {
                        en->read = read_plain;
                }
        }
        return 1;
}

int oci_layer_next(struct oci_layer_reader *r, struct oci_tar_item *ret, struct oci_err *e)
{
        for (;;) {
                struct archive_entry *ae;
                int ar, k;

                if (r->empty)
                        return 0;
                ar = sym_archive_read_next_header(r->inner, &ae);
                if (ar == ARCHIVE_EOF)
                        return 0;
                if (ar < ARCHIVE_WARN) {
                        save_archive_error(r, r->inner);
                        return oci_err_set(e, -EBADMSG, "%s", r->errmsg);
                }
                if (++r->n_entries > r->limits.max_entries)
                        return oci_err_set(e, -E2BIG, "more than %llu entries",
                                           (unsigned long long)r->limits.max_entries);
                k = translate(r, ae, ret, e);
                if (k != 0)
                        return k;
        }
}

int oci_layer_finish(struct oci_layer_reader *r, char ret_diff_id[OCI_DIGEST_SIZE],
                     uint64_t *ret_tar_size, struct oci_err *e)
{
        char got[OCI_DIGEST_SIZE];

        while (!r->outer_eof) {
                la_ssize_t n = sym_archive_read_data(r->outer, r->tbuf, LAYER_BUF);

                if (n < 0) {
                        save_archive_error(r, r->outer);
                        return oci_err_set(e, -EBADMSG, "%s", r->errmsg);
                }
                if (n == 0)
                        r->outer_eof = true;
                oci_sha256_update(&r->thash, r->tbuf, (size_t)n);
                r->tar_bytes += (uint64_t)n;
        }
        for (;;) {
                const void *buf;
                la_ssize_t n = outer_read(r->outer, r, &buf);

                if (n < 0)
                        return oci_err_set(e, -EIO, "%s", sym_archive_error_string(r->outer));
                if (n == 0)
                        break;
        }
        oci_sha256_final(&r->zhash, got);
        if (r->check_digest && !streq(got, r->expected))
                return oci_err_set(e, -EBADMSG, "digest mismatch: expected %s, got %s", r->expected,
                                   got);
        if (ret_diff_id)
                oci_sha256_final(&r->thash, ret_diff_id);
        if (ret_tar_size)
                *ret_tar_size = r->tar_bytes;
        return 0;
}

struct oci_unpack {
        struct archive *a;
        bool eof;
};

void oci_unpack_free(struct oci_unpack *u)
{
        if (!u)
                return;
        if (u->a)
                sym_archive_read_free(u->a);
        free(u);
}

int oci_unpack_open(int fd, struct oci_unpack **ret, struct oci_err *e)
{
        _cleanup_(oci_unpack_freep) struct oci_unpack *u = NULL;
        struct archive_entry *ae;
        int ar;

        ar = oci_dl_archive(e);
        if (ar < 0)
                return ar;
        u = calloc(1, sizeof(*u));
        if (!u)
                return -ENOMEM;
        u->a = new_decompressor();
        if (!u->a)
                return -ENOMEM;
        ar = sym_archive_read_open_fd(u->a, fd, LAYER_BUF);
        if (ar == ARCHIVE_OK)
                ar = sym_archive_read_next_header(u->a, &ae);
        if (ar == ARCHIVE_EOF)
                u->eof = true;
        else if (ar < ARCHIVE_WARN)
                return oci_err_set(e, -EBADMSG, "%s", sym_archive_error_string(u->a));
        *ret = TAKE_PTR(u);
        return 0;
}

ssize_t oci_unpack_read(struct oci_unpack *u, void *buf, size_t n, struct oci_err *e)
{
        la_ssize_t k;

        if (u->eof)
                return 0;
        k = sym_archive_read_data(u->a, buf, n);
        if (k < 0)
                return oci_err_set(e, -EBADMSG, "%s", sym_archive_error_string(u->a));
        if (k == 0)
                u->eof = true;
        return k;
}

void oci_layer_meta_free(struct oci_layer_meta *m)
{
        if (!m)
                return;
        for (size_t i = 0; i < m->n_whiteouts; i++)
                free(m->whiteouts[i]);
        for (size_t i = 0; i < m->n_opaques; i++)
                free(m->opaques[i]);
        free(m->whiteouts);
        free(m->opaques);
        free(m);
}

/* The directories one layer creates, explicitly or as missing parents, so
 * that the scan counts every inode the writer will make. */
struct dir_set {
        char **slots;
        size_t cap, n;
};

static uint64_t path_hash(const char *s, size_t n)
{
        uint64_t h = 1469598103934665603ULL;

        for (size_t i = 0; i < n; i++)
                h = (h ^ (uint8_t)s[i]) * 1099511628211ULL;
        return h;
}

static void dir_set_free(struct dir_set *d)
{
        for (size_t i = 0; i < d->cap; i++)
                free(d->slots[i]);
        free(d->slots);
}

/* Adds the first n bytes of s: 1 when new, 0 when present, -ENOMEM. */
static int dir_set_add(struct dir_set *d, const char *s, size_t n)
{
        size_t i;

        if (d->n * 2 >= d->cap) {
                struct dir_set bigger = {.cap = d->cap ? d->cap * 2 : 256};

                bigger.slots = calloc(bigger.cap, sizeof(char *));
                if (!bigger.slots)
                        return -ENOMEM;
                for (size_t j = 0; j < d->cap; j++) {
                        char *x = d->slots[j];

                        if (!x)
                                continue;
                        i = path_hash(x, strlen(x)) & (bigger.cap - 1);
                        while (bigger.slots[i])
                                i = (i + 1) & (bigger.cap - 1);
                        bigger.slots[i] = x;
                }
                free(d->slots);
                bigger.n = d->n;
                *d = bigger;
        }
        i = path_hash(s, n) & (d->cap - 1);
        while (d->slots[i]) {
                if (strlen(d->slots[i]) == n && memcmp(d->slots[i], s, n) == 0)
                        return 0;
                i = (i + 1) & (d->cap - 1);
        }
        d->slots[i] = strndup(s, n);
        if (!d->slots[i])
                return -ENOMEM;
        d->n++;
        return 1;
}

/* Counts the parents of path that this layer has not seen yet (the writer
 * creates them) and, for a directory, the path itself. */
static int count_dirs(struct dir_set *d, const char *path, bool is_dir, struct img_ext4_usage *u)
{
        size_t n = strlen(path);
        int k;

        if (!is_dir)
                n = (size_t)(strrchr(path, '/') - path);
        else if ((k = dir_set_add(d, path, n)) <= 0)
                return k; /* a directory seen before: its parents were too */
        else
                n = (size_t)(strrchr(path, '/') - path);
        while (n > 0) {
                const char *slash;

                k = dir_set_add(d, path, n);
                if (k <= 0)
                        return k;
                slash = memrchr(path, '/', n);
                u->entries++;
                u->dirs++;
                u->name_bytes += n - (size_t)(slash - path) - 1;
                n = (size_t)(slash - path);
        }
        return 0;
}

static int strv_push(char ***v, size_t *n, const char *s)
{
        char **nv;

        if ((*n & (*n - 1)) == 0 || *n == 0) {
                size_t cap = *n ? *n * 2 : 16;

                nv = realloc(*v, cap * sizeof(**v));
                if (!nv)
                        return -ENOMEM;
                *v = nv;
        }
        (*v)[*n] = strdup(s);
        if (!(*v)[*n])
                return -ENOMEM;
        (*n)++;
        return 0;
}

int oci_layer_scan(int fd, const void *mem, size_t mem_len, const char *expected_digest,
                   const struct oci_limits *limits, struct oci_layer_meta **ret, struct oci_err *e)
{
        _cleanup_(oci_layer_freep) struct oci_layer_reader *r = NULL;
        _cleanup_(oci_layer_meta_freep) struct oci_layer_meta *m = NULL;
        _cleanup_(dir_set_free) struct dir_set dirs = {0};
        struct oci_tar_item it;
        int k;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        k = oci_layer_open(fd, mem, mem_len, expected_digest, limits, &r, e);
        if (k < 0)
                return k;
        while ((k = oci_layer_next(r, &it, e)) > 0) {
                struct img_ext4_usage *u = &m->usage;
                const struct img_entry *en = &it.entry;

                if (it.kind == OCI_TAR_WHITEOUT) {
                        k = strv_push(&m->whiteouts, &m->n_whiteouts, en->path);
                } else if (it.kind == OCI_TAR_OPAQUE) {
                        k = strv_push(&m->opaques, &m->n_opaques, en->path);
                } else {
                        k = count_dirs(&dirs, en->path, en->type == IMG_ENTRY_DIR, u);
                        if (k < 0)
                                return k;
                        u->entries++;
                        u->name_bytes += strlen(strrchr(en->path, '/') + 1);
                        if (en->n_xattrs)
                                u->xattr_inodes++;
                        if (en->type == IMG_ENTRY_DIR) {
                                u->dirs++;
                        } else if (en->type == IMG_ENTRY_REG) {
                                uint64_t data = en->size;

                                if (en->n_data_map) {
                                        data = 0;
                                        for (size_t i = 0; i < en->n_data_map; i++)
                                                data += en->data_map[i].length;
                                }
                                u->files++;
                                u->data_bytes += data;
                        } else if (en->type == IMG_ENTRY_SYMLINK &&
                                   strlen(en->target) >= IMG_SYMLINK_INLINE) {
                                u->files++;
                                u->data_bytes += strlen(en->target);
                        }
                        if (u->data_bytes > r->limits.max_total_bytes)
                                return oci_err_set(e, -EFBIG, "more than %llu bytes of file data",
                                                   (unsigned long long)r->limits.max_total_bytes);
                }
                if (k < 0)
                        return k;
        }
        if (k < 0)
                return k;
        k = oci_layer_finish(r, m->diff_id, &m->tar_size, e);
        if (k < 0)
                return k;
        *ret = TAKE_PTR(m);
        return 0;
}

#define META_MAGIC "msb-layer 1"

int oci_layer_meta_serialize(const struct oci_layer_meta *m, char **ret, size_t *ret_len)
{
        _cleanup_free_ char *head = NULL;
        char *buf, *p;
        size_t len;

        head = strdup_printf(
                META_MAGIC " %s %llu %llu %llu %llu %llu %llu %llu %zu %zu\n", m->diff_id,
                (unsigned long long)m->tar_size, (unsigned long long)m->usage.entries,
                (unsigned long long)m->usage.dirs, (unsigned long long)m->usage.files,
                (unsigned long long)m->usage.data_bytes, (unsigned long long)m->usage.name_bytes,
                (unsigned long long)m->usage.xattr_inodes, m->n_whiteouts, m->n_opaques);
        if (!head)
                return -ENOMEM;
        len = strlen(head);
        for (size_t i = 0; i < m->n_whiteouts; i++)
                len += strlen(m->whiteouts[i]) + 1;
        for (size_t i = 0; i < m->n_opaques; i++)
                len += strlen(m->opaques[i]) + 1;
        buf = malloc(len + 1);
        if (!buf)
                return -ENOMEM;
        p = stpcpy(buf, head);
        for (size_t i = 0; i < m->n_whiteouts; i++)
                p = stpcpy(p, m->whiteouts[i]) + 1;
        for (size_t i = 0; i < m->n_opaques; i++)
                p = stpcpy(p, m->opaques[i]) + 1;
        *p = '\0';
        *ret = buf;
        *ret_len = len;
        return 0;
}

int oci_layer_meta_parse(const char *data, size_t len, struct oci_layer_meta **ret)
{
        _cleanup_(oci_layer_meta_freep) struct oci_layer_meta *m = NULL;
        unsigned long long v[7];
        size_t n_wh, n_op, off;
        const char *nl = memchr(data, '\n', MIN(len, (size_t)512));
        char head[512], digest[OCI_DIGEST_SIZE + 1];
        int used = 0;

        if (!nl)
                return -EBADMSG;
        memcpy(head, data, (size_t)(nl - data));
        head[nl - data] = '\0';
        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        if (sscanf(head, META_MAGIC " %72s %llu %llu %llu %llu %llu %llu %llu %zu %zu%n", digest,
                   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &n_wh, &n_op, &used) != 10 ||
            (size_t)used != (size_t)(nl - data) || !oci_digest_valid(digest))
                return -EBADMSG;
        memcpy(m->diff_id, digest, OCI_DIGEST_SIZE);
        m->tar_size = v[0];
        m->usage = (struct img_ext4_usage){v[1], v[2], v[3], v[4], v[5], v[6]};
        off = (size_t)(nl - data) + 1;
        if (n_wh > len - off || n_op > len - off - n_wh)
                return -EBADMSG; /* each path takes at least its NUL */
        for (size_t i = 0; i < n_wh + n_op; i++) {
                const char *s = data + off;
                const char *end = memchr(s, '\0', len - off);
                int r;

                if (!end || s[0] != '/')
                        return -EBADMSG;
                if (i < n_wh)
                        r = strv_push(&m->whiteouts, &m->n_whiteouts, s);
                else
                        r = strv_push(&m->opaques, &m->n_opaques, s);
                if (r < 0)
                        return r;
                off = (size_t)(end - data) + 1;
        }
        if (off != len)
                return -EBADMSG;
        *ret = TAKE_PTR(m);
        return 0;
}
