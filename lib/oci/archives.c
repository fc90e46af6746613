/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: see archives.h. Saving streams each member straight
 * from the cache into a libarchive pax writer on the caller's fd; a docker
 * layer is decompressed on the fly and checked against its diff_id as it
 * goes (the size in its tar header comes from the layer's cached scan).
 * Loading reads the archive with libarchive's tar reader (gzip or zstd
 * outside allowed), sends every regular file into an anonymous blob
 * writer, remembers path → digest, resolves links at the end, then builds
 * the image list from manifest.json (preferred, as Docker does) or from
 * index.json.
 */
#include "archives.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dl.h"
#include "image.h"
#include "lib/core/json.h"
#include "lib/core/util.h"
#include "manifest.h"
#include "ref.h"
#include "rootfs.h"

#define COPY_BUF        (1 << 20)
#define LOAD_FILES_MAX  65536
#define LOAD_IMAGES_MAX 1024
#define LOAD_JSON_MAX   (4u << 20)
#define LOAD_PATH_MAX   1024

void oci_archive_images_free(struct oci_archive_image *imgs, size_t n)
{
        if (!imgs)
                return;
        for (size_t i = 0; i < n; i++)
                free(imgs[i].ref);
        free(imgs);
}

/* ---- save --------------------------------------------------------------- */

struct saver {
        const struct oci_cache *c;
        const struct oci_limits *limits;
        struct archive *a;
        char **written; /* member names already in the archive */
        size_t n_written;
        uint8_t *buf;
        struct oci_err *e;
};

static int archive_fail(struct saver *sv, const char *what)
{
        int err = sym_archive_errno(sv->a);

        return oci_err_set(sv->e, err > 0 ? -err : -EIO, "writing the archive (%s): %s", what,
                           sym_archive_error_string(sv->a) ? sym_archive_error_string(sv->a) : "?");
}

/* Whether name was written already; records it otherwise. */
static int seen(struct saver *sv, const char *name, bool *ret)
{
        char **w;

        for (size_t i = 0; i < sv->n_written; i++) {
                if (streq(sv->written[i], name)) {
                        *ret = true;
                        return 0;
                }
        }
        w = realloc(sv->written, (sv->n_written + 1) * sizeof(*w));
        if (!w)
                return -ENOMEM;
        sv->written = w;
        sv->written[sv->n_written] = strdup(name);
        if (!sv->written[sv->n_written])
                return -ENOMEM;
        sv->n_written++;
        *ret = false;
        return 0;
}

static int put_header(struct saver *sv, const char *name, uint64_t size)
{
        struct archive_entry *ae = sym_archive_entry_new();
        int ar;

        if (!ae)
                return -ENOMEM;
        sym_archive_entry_set_pathname(ae, name);
        sym_archive_entry_set_filetype(ae, AE_IFREG);
        sym_archive_entry_set_perm(ae, 0644);
        sym_archive_entry_set_size(ae, (la_int64_t)size);
        sym_archive_entry_set_mtime(ae, 0, 0);
        ar = sym_archive_write_header(sv->a, ae);
        sym_archive_entry_free(ae);
        return ar < ARCHIVE_WARN ? archive_fail(sv, name) : 0;
}

static int put_data(struct saver *sv, const void *data, size_t n, const char *name)
{
        if (n && sym_archive_write_data(sv->a, data, n) != (la_ssize_t)n)
                return archive_fail(sv, name);
        return 0;
}

static int put_bytes(struct saver *sv, const char *name, const void *data, size_t len)
{
        int r = put_header(sv, name, len);

        return r < 0 ? r : put_data(sv, data, len, name);
}

/* A blob as it is in the cache. */
static int put_blob(struct saver *sv, const char *name, const char *digest)
{
        _cleanup_close_ int fd = -1;
        struct stat st;
        uint64_t left;
        bool dup;
        int r;

        r = seen(sv, name, &dup);
        if (r < 0 || dup)
                return r;
        r = oci_cache_blob_open(sv->c, digest, &fd);
        if (r < 0)
                return oci_err_set(sv->e, r, "blob %.19s: %s", digest,
                                   r == -ENOENT ? "not in the cache" : strerror(-r));
        if (fstat(fd, &st) < 0)
                return negative_errno();
        r = put_header(sv, name, (uint64_t)st.st_size);
        for (left = (uint64_t)st.st_size; r >= 0 && left > 0;) {
                ssize_t n = read_full(fd, sv->buf, (size_t)MIN(left, (uint64_t)COPY_BUF));

                if (n <= 0)
                        return oci_err_set(sv->e, n < 0 ? (int)n : -EIO, "blob %.19s: short read",
                                           digest);
                r = put_data(sv, sv->buf, (size_t)n, name);
                left -= (uint64_t)n;
        }
        return r;
}

/* A layer decompressed, checked against its diff_id. */
static int put_layer_tar(struct saver *sv, const char *name, const struct oci_descriptor *d,
                         const struct oci_layer_meta *meta)
{
        _cleanup_(oci_unpack_freep) struct oci_unpack *u = NULL;
        _cleanup_close_ int fd = -1;
        struct oci_sha256 h;
        char got[OCI_DIGEST_SIZE];
        uint64_t done = 0;
        bool dup;
        int r;

        r = seen(sv, name, &dup);
        if (r < 0 || dup)
                return r;
        r = oci_cache_blob_open(sv->c, d->digest, &fd);
        if (r < 0)
                return oci_err_set(sv->e, r, "layer %.19s: %s", d->digest, strerror(-r));
        r = oci_unpack_open(fd, &u, sv->e);
        if (r < 0)
                return oci_err_prefix(sv->e, r, "layer %.19s", d->digest);
        r = put_header(sv, name, meta->tar_size);
        if (r < 0)
                return r;
        r = oci_sha256_init(&h);
        if (r < 0)
                return r;
        for (;;) {
                ssize_t n = oci_unpack_read(u, sv->buf, COPY_BUF, sv->e);

                if (n < 0) {
                        r = oci_err_prefix(sv->e, (int)n, "layer %.19s", d->digest);
                        break;
                }
                if (n == 0)
                        break;
                if ((uint64_t)n > meta->tar_size - done) {
                        r = oci_err_set(sv->e, -EBADMSG, "layer %.19s changed in the cache",
                                        d->digest);
                        break;
                }
                oci_sha256_update(&h, sv->buf, (size_t)n);
                done += (uint64_t)n;
                r = put_data(sv, sv->buf, (size_t)n, name);
                if (r < 0)
                        break;
        }
        oci_sha256_final(&h, got);
        oci_sha256_free(&h);
        if (r >= 0 && (done != meta->tar_size || !streq(got, meta->diff_id)))
                r = oci_err_set(sv->e, -EBADMSG, "layer %.19s changed in the cache", d->digest);
        return r;
}

static int save_docker(struct saver *sv, const char *const *refs, struct oci_image **imgs, size_t n)
{
        struct json_writer w;
        _cleanup_free_ char *json = NULL;
        int r = 0;

        json_writer_init(&w);
        json_begin_array(&w);
        for (size_t i = 0; i < n && r >= 0; i++) {
                const struct oci_manifest *m = imgs[i]->manifest;
                _cleanup_free_ char *cfg_name =
                        strdup_printf("%s.json", oci_digest_hex(m->config.digest));
                struct oci_ref ref = {0};

                if (!cfg_name) {
                        r = -ENOMEM;
                        break;
                }
                r = put_blob(sv, cfg_name, m->config.digest);
                json_begin_object(&w);
                json_kv_string(&w, "Config", cfg_name);
                json_key(&w, "RepoTags");
                json_begin_array(&w);
                if (refs[i] && oci_ref_parse(refs[i], &ref) >= 0 && ref.tag) {
                        _cleanup_free_ char *name = oci_ref_name(&ref);
                        _cleanup_free_ char *tag =
                                name ? strdup_printf("%s:%s", name, ref.tag) : NULL;

                        json_put_string(&w, tag);
                }
                oci_ref_clear(&ref);
                json_end_array(&w);
                json_key(&w, "Layers");
                json_begin_array(&w);
                for (size_t l = 0; l < m->n_layers && r >= 0; l++) {
                        _cleanup_(oci_layer_meta_freep) struct oci_layer_meta *meta = NULL;
                        _cleanup_free_ char *name = NULL;

                        r = oci_layer_meta_get(sv->c, m->layers[l].digest, m->layers[l].size,
                                               sv->limits, &meta, sv->e);
                        if (r < 0) {
                                oci_err_prefix(sv->e, r, "layer %.19s", m->layers[l].digest);
                                break;
                        }
                        name = strdup_printf("%s.tar", oci_digest_hex(meta->diff_id));
                        if (!name) {
                                r = -ENOMEM;
                                break;
                        }
                        r = put_layer_tar(sv, name, &m->layers[l], meta);
                        json_put_string(&w, name);
                }
                json_end_array(&w);
                json_end_object(&w);
        }
        json_end_array(&w);
        json = json_writer_steal(&w);
        if (r < 0)
                return r;
        if (!json)
                return -ENOMEM;
        return put_bytes(sv, "manifest.json", json, strlen(json));
}

static int save_oci(struct saver *sv, const char *const *refs, struct oci_image **imgs, size_t n)
{
        static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
        struct json_writer w;
        _cleanup_free_ char *json = NULL;
        int r;

        r = put_bytes(sv, "oci-layout", layout, strlen(layout));
        json_writer_init(&w);
        json_begin_object(&w);
        json_kv_int(&w, "schemaVersion", 2);
        json_kv_string(&w, "mediaType", OCI_MT_OCI_INDEX);
        json_key(&w, "manifests");
        json_begin_array(&w);
        for (size_t i = 0; i < n && r >= 0; i++) {
                const struct oci_manifest *m = imgs[i]->manifest;
                const char *digest = imgs[i]->manifest_digest;
                _cleanup_free_ char *name =
                        strdup_printf("blobs/sha256/%s", oci_digest_hex(digest));
                struct oci_ref ref = {0};
                struct stat st;
                _cleanup_free_ char *rel = oci_cache_blob_rel(digest);

                if (!name || !rel) {
                        r = -ENOMEM;
                        break;
                }
                if (fstatat(sv->c->dir_fd, rel, &st, 0) < 0) {
                        r = negative_errno();
                        break;
                }
                r = put_blob(sv, name, digest);
                free(name);
                name = strdup_printf("blobs/sha256/%s", oci_digest_hex(m->config.digest));
                if (r >= 0)
                        r = name ? put_blob(sv, name, m->config.digest) : -ENOMEM;
                for (size_t l = 0; l < m->n_layers && r >= 0; l++) {
                        free(name);
                        name = strdup_printf("blobs/sha256/%s",
                                             oci_digest_hex(m->layers[l].digest));
                        r = name ? put_blob(sv, name, m->layers[l].digest) : -ENOMEM;
                }
                json_begin_object(&w);
                json_kv_string(&w, "mediaType",
                               m->media_type ? m->media_type : OCI_MT_OCI_MANIFEST);
                json_kv_string(&w, "digest", digest);
                json_kv_uint(&w, "size", (uint64_t)st.st_size);
                if (refs[i] && oci_ref_parse(refs[i], &ref) >= 0 && ref.tag) {
                        _cleanup_free_ char *full = oci_ref_string(&ref);

                        json_key(&w, "annotations");
                        json_begin_object(&w);
                        json_kv_string(&w, OCI_ANNOTATION_CONTAINERD, full);
                        json_kv_string(&w, OCI_ANNOTATION_REF, ref.tag);
                        json_end_object(&w);
                }
                oci_ref_clear(&ref);
                json_end_object(&w);
        }
        json_end_array(&w);
        json_end_object(&w);
        json = json_writer_steal(&w);
        if (r < 0)
                return r;
        if (!json)
                return -ENOMEM;
        return put_bytes(sv, "index.json", json, strlen(json));
}

int oci_archive_save(const struct oci_cache *c, const char *const *refs,
                     const char *const *manifests, size_t n, enum oci_archive_format format,
                     const struct oci_limits *limits, int fd, struct oci_err *e)
{
        struct saver sv = {.c = c, .limits = limits, .e = e};
        struct oci_image **imgs;
        int r;

        r = oci_dl_archive(e);
        if (r < 0)
                return r;
        imgs = calloc(n + 1, sizeof(*imgs));
        sv.buf = malloc(COPY_BUF);
        sv.a = sym_archive_write_new();
        if (!imgs || !sv.buf || !sv.a) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < n && r >= 0; i++) {
                r = oci_image_open(c, manifests[i], false, limits, NULL, NULL, &imgs[i], e);
                if (r < 0)
                        oci_err_prefix(e, r, "%s", refs[i] ? refs[i] : manifests[i]);
        }
        if (r < 0)
                goto out;
        if (sym_archive_write_set_format_pax_restricted(sv.a) != ARCHIVE_OK ||
            sym_archive_write_set_bytes_in_last_block(sv.a, 1) != ARCHIVE_OK ||
            sym_archive_write_open_fd(sv.a, fd) != ARCHIVE_OK) {
                r = archive_fail(&sv, "open");
                goto out;
        }
        r = format == OCI_ARCHIVE_DOCKER ? save_docker(&sv, refs, imgs, n)
                                         : save_oci(&sv, refs, imgs, n);
        if (r >= 0 && sym_archive_write_close(sv.a) != ARCHIVE_OK)
                r = archive_fail(&sv, "close");
out:
        if (sv.a)
                sym_archive_write_free(sv.a);
        for (size_t i = 0; i < n && imgs; i++)
                oci_image_free(imgs[i]);
        free(imgs);
        for (size_t i = 0; i < sv.n_written; i++)
                free(sv.written[i]);
        free(sv.written);
        free(sv.buf);
        return r;
}

/* ---- load --------------------------------------------------------------- */

struct member {
        char *path;
        char *link; /* a link's target path (resolved at the end), else NULL */
        char digest[OCI_DIGEST_SIZE];
        uint64_t size;
};

struct loader {
        const struct oci_cache *c;
        struct member *members;
        size_t n_members;
        char *manifest_json, *index_json;
        size_t manifest_json_len, index_json_len;
        char **created; /* blobs this load added to the cache */
        size_t n_created;
        struct oci_archive_image *imgs;
        size_t n_imgs;
        struct oci_err *e;
};

static void loader_free(struct loader *ld)
{
        for (size_t i = 0; i < ld->n_members; i++) {
                free(ld->members[i].path);
                free(ld->members[i].link);
        }
        free(ld->members);
        free(ld->manifest_json);
        free(ld->index_json);
        for (size_t i = 0; i < ld->n_created; i++)
                free(ld->created[i]);
        free(ld->created);
        oci_archive_images_free(ld->imgs, ld->n_imgs);
}

/* Archive paths: "./a//b" → "a/b". With pop, ".." removes the previous
 * component (for link targets), else it is refused; climbing above the top
 * is always refused. */
static int clean_member(const char *in, char *out, size_t size, bool pop)
{
        size_t len = 0;

        while (*in) {
                size_t n = strcspn(in, "/");

                if (n == 2 && in[0] == '.' && in[1] == '.') {
                        if (!pop || len == 0)
                                return -EINVAL;
                        while (len > 0 && out[len - 1] != '/')
                                len--;
                        if (len > 0)
                                len--;
                } else if (n > 0 && !(n == 1 && in[0] == '.')) {
                        if (len + n + 2 > size)
                                return -ENAMETOOLONG;
                        if (len)
                                out[len++] = '/';
                        memcpy(out + len, in, n);
                        len += n;
                }
                in += n;
                while (*in == '/')
                        in++;
        }
        out[len] = '\0';
        return len ? 0 : -EINVAL;
}

static struct member *find_member(struct loader *ld, const char *path)
{
        for (size_t i = 0; i < ld->n_members; i++)
                if (streq(ld->members[i].path, path))
                        return &ld->members[i];
        return NULL;
}

static struct member *add_member(struct loader *ld, const char *path)
{
        struct member *m;

        if (ld->n_members >= LOAD_FILES_MAX)
                return NULL;
        m = realloc(ld->members, (ld->n_members + 1) * sizeof(*m));
        if (!m)
                return NULL;
        ld->members = m;
        m = &ld->members[ld->n_members];
        *m = (struct member){.path = strdup(path)};
        if (!m->path)
                return NULL;
        ld->n_members++;
        return m;
}

static int read_small(struct archive *a, size_t size, char **ret, size_t *ret_len)
{
        char *buf;
        la_ssize_t n;

        if (size > LOAD_JSON_MAX)
                return -E2BIG;
        buf = malloc(size + 1);
        if (!buf)
                return -ENOMEM;
        n = sym_archive_read_data(a, buf, size);
        if (n < 0 || (size_t)n != size) {
                free(buf);
                return -EBADMSG;
        }
        buf[size] = '\0';
        free(*ret);
        *ret = buf;
        *ret_len = size;
        return 0;
}

/* Streams the current member into the cache. */
static int store_member(struct loader *ld, struct archive *a, struct member *m, uint8_t *buf)
{
        _cleanup_(oci_blob_writer_freep) struct oci_blob_writer *w = NULL;
        int r;

        r = oci_blob_writer_open(ld->c, NULL, UINT64_MAX, false, &w);
        if (r < 0)
                return r;
        for (;;) {
                la_ssize_t n = sym_archive_read_data(a, buf, COPY_BUF);

                if (n < 0)
                        return oci_err_set(ld->e, -EBADMSG, "%s: %s", m->path,
                                           sym_archive_error_string(a));
                if (n == 0)
                        break;
                r = oci_blob_writer_write(w, buf, (size_t)n);
                if (r < 0)
                        return oci_err_set(ld->e, r, "%s: %s", m->path, strerror(-r));
                m->size += (uint64_t)n;
        }
        r = oci_blob_writer_commit(w, m->digest);
        if (r < 0)
                return oci_err_set(ld->e, r, "%s: cannot store it: %s", m->path, strerror(-r));
        if (!oci_blob_writer_existed(w)) {
                char **c = realloc(ld->created, (ld->n_created + 1) * sizeof(*c));

                if (!c)
                        return -ENOMEM;
                ld->created = c;
                ld->created[ld->n_created] = strdup(m->digest);
                if (!ld->created[ld->n_created])
                        return -ENOMEM;
                ld->n_created++;
        }
        /* blobs/sha256/<hex> must be what its name says */
        {
                const char *hex = startswith(m->path, "blobs/sha256/");

                if (hex && !streq(hex, oci_digest_hex(m->digest)))
                        return oci_err_set(ld->e, -EBADMSG,
                                           "%s: digest mismatch (the content is %s)", m->path,
                                           m->digest);
        }
        return 0;
}

static int read_stream(struct loader *ld, int fd)
{
        struct archive *a = sym_archive_read_new();
        _cleanup_free_ uint8_t *buf = malloc(COPY_BUF);
        char path[LOAD_PATH_MAX];
        int r = 0, ar;

        if (!a || !buf) {
                if (a)
                        sym_archive_read_free(a);
                return -ENOMEM;
        }
        if (sym_archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
            sym_archive_read_support_filter_zstd(a) != ARCHIVE_OK ||
            sym_archive_read_support_format_tar(a) != ARCHIVE_OK ||
            sym_archive_read_open_fd(a, fd, COPY_BUF) != ARCHIVE_OK) {
                r = oci_err_set(ld->e, -EBADMSG, "not a tar archive: %s",
                                sym_archive_error_string(a) ? sym_archive_error_string(a) : "?");
                goto out;
        }
        for (;;) {
                struct archive_entry *ae;
                struct member *m;
                const char *link;

                ar = sym_archive_read_next_header(a, &ae);
                if (ar == ARCHIVE_EOF)
                        break;
                if (ar < ARCHIVE_WARN) {
                        r = oci_err_set(ld->e, -EBADMSG, "not a valid image archive: %s",
                                        sym_archive_error_string(a));
                        goto out;
                }
                if (!sym_archive_entry_pathname(ae) ||
                    clean_member(sym_archive_entry_pathname(ae), path, sizeof(path), false) < 0) {
                        if (sym_archive_entry_filetype(ae) == AE_IFDIR)
                                continue; /* "./" */
                        r = oci_err_set(ld->e, -EBADMSG, "bad member name '%.200s'",
                                        sym_archive_entry_pathname(ae)
                                                ? sym_archive_entry_pathname(ae)
                                                : "");
                        goto out;
                }
                if (streq(path, "manifest.json") || streq(path, "index.json")) {
                        bool mj = streq(path, "manifest.json");

                        r = read_small(a,
                                       (size_t)MIN((uint64_t)sym_archive_entry_size(ae),
                                                   (uint64_t)LOAD_JSON_MAX + 1),
                                       mj ? &ld->manifest_json : &ld->index_json,
                                       mj ? &ld->manifest_json_len : &ld->index_json_len);
                        if (r < 0) {
                                r = oci_err_set(ld->e, r, "%s: unreadable or too large", path);
                                goto out;
                        }
                        continue;
                }
                link = sym_archive_entry_hardlink(ae);
                if (!link && sym_archive_entry_filetype(ae) == AE_IFLNK)
                        link = sym_archive_entry_symlink(ae);
                if (!link && sym_archive_entry_filetype(ae) != AE_IFREG)
                        continue;
                m = find_member(ld, path);
                if (!m)
                        m = add_member(ld, path);
                if (!m) {
                        r = oci_err_set(ld->e, -E2BIG, "too many files in the archive");
                        goto out;
                }
                if (link) {
                        char target[LOAD_PATH_MAX], joined[2 * LOAD_PATH_MAX + 2];
                        const char *slash = strrchr(path, '/');

                        if (sym_archive_entry_filetype(ae) == AE_IFLNK && link[0] != '/' && slash)
                                snprintf(joined, sizeof(joined), "%.*s/%s", (int)(slash - path),
                                         path, link);
                        else
                                snprintf(joined, sizeof(joined), "%s", link);
                        if (clean_member(joined, target, sizeof(target), true) < 0) {
                                r = oci_err_set(ld->e, -EBADMSG, "bad link in the archive: %.200s",
                                                path);
                                goto out;
                        }
                        free(m->link);
                        m->link = strdup(target);
                        if (!m->link) {
                                r = -ENOMEM;
                                goto out;
                        }
                        continue;
                }
                r = store_member(ld, a, m, buf);
                if (r < 0)
                        goto out;
        }
        /* links point at members stored under another name */
        for (size_t i = 0; i < ld->n_members; i++) {
                struct member *m = &ld->members[i];

                for (int hops = 0; m->link && hops < 8; hops++) {
                        struct member *t = find_member(ld, m->link);

                        if (!t)
                                break;
                        if (!t->link) {
                                memcpy(ld->members[i].digest, t->digest, OCI_DIGEST_SIZE);
                                ld->members[i].size = t->size;
                                free(ld->members[i].link);
                                ld->members[i].link = NULL;
                                break;
                        }
                        m = t;
                }
        }
out:
        sym_archive_read_free(a);
        return r;
}

static const struct member *lookup(struct loader *ld, const char *path)
{
        char clean[LOAD_PATH_MAX];
        const struct member *m;

        if (!path || clean_member(path, clean, sizeof(clean), false) < 0)
                return NULL;
        m = find_member(ld, clean);
        return m && !m->link ? m : NULL;
}

static int add_image(struct loader *ld, const char *ref, const char *digest)
{
        struct oci_archive_image *imgs;
        struct oci_ref parsed = {0};
        char *canonical = NULL;

        if (ld->n_imgs >= LOAD_IMAGES_MAX)
                return oci_err_set(ld->e, -E2BIG, "too many images in the archive");
        if (ref) {
                if (oci_ref_parse(ref, &parsed) < 0)
                        return oci_err_set(ld->e, -EBADMSG, "invalid image name '%.200s'", ref);
                canonical = oci_ref_string(&parsed);
                oci_ref_clear(&parsed);
                if (!canonical)
                        return -ENOMEM;
        }
        imgs = realloc(ld->imgs, (ld->n_imgs + 1) * sizeof(*imgs));
        if (!imgs) {
                free(canonical);
                return -ENOMEM;
        }
        ld->imgs = imgs;
        imgs[ld->n_imgs].ref = canonical;
        memcpy(imgs[ld->n_imgs].manifest_digest, digest, OCI_DIGEST_SIZE);
        ld->n_imgs++;
        return 0;
}

/* The media type of a layer blob, by its first bytes. */
static int sniff_layer(const struct oci_cache *c, const char *digest, const char **ret)
{
        _cleanup_close_ int fd = -1;
        uint8_t head[4] = {0};
        int r = oci_cache_blob_open(c, digest, &fd);

        if (r < 0)
                return r;
        if (read_full(fd, head, sizeof(head)) < 0)
                return negative_errno();
        if (head[0] == 0x1f && head[1] == 0x8b)
                *ret = OCI_MT_OCI_LAYER_GZIP;
        else if (head[0] == 0x28 && head[1] == 0xb5 && head[2] == 0x2f && head[3] == 0xfd)
                *ret = OCI_MT_OCI_LAYER_ZSTD;
        else
                *ret = OCI_MT_OCI_LAYER;
        return 0;
}

static int assemble_docker(struct loader *ld)
{
        _cleanup_(json_doc_freep) struct json_doc *doc = NULL;
        const struct json_value *root;

        if (json_parse(ld->manifest_json, ld->manifest_json_len, &doc, &root) < 0 ||
            root->type != JSON_ARRAY)
                return oci_err_set(ld->e, -EBADMSG, "manifest.json is not a JSON array");
        if (json_count(root) > LOAD_IMAGES_MAX)
                return oci_err_set(ld->e, -E2BIG, "manifest.json lists too many images");
        for (size_t i = 0; i < json_count(root); i++) {
                const struct json_value *item = json_at(root, i);
                const struct json_value *layers = json_get(item, "Layers");
                const struct json_value *tags = json_get(item, "RepoTags");
                const struct member *cfg = lookup(ld, json_string(json_get(item, "Config"), NULL));
                struct oci_manifest m = {.media_type = OCI_MT_OCI_MANIFEST};
                _cleanup_free_ struct oci_descriptor *descs = NULL;
                _cleanup_free_ char *json = NULL;
                char digest[OCI_DIGEST_SIZE];
                int r;

                if (!cfg)
                        return oci_err_set(ld->e, -EBADMSG,
                                           "manifest.json entry %zu: its Config is missing", i + 1);
                if (!layers || layers->type != JSON_ARRAY || json_count(layers) > OCI_LAYERS_MAX)
                        return oci_err_set(ld->e, -EBADMSG, "manifest.json entry %zu: bad Layers",
                                           i + 1);
                descs = calloc(json_count(layers) + 1, sizeof(*descs));
                if (!descs)
                        return -ENOMEM;
                m.config =
                        (struct oci_descriptor){.media_type = OCI_MT_OCI_CONFIG, .size = cfg->size};
                memcpy(m.config.digest, cfg->digest, OCI_DIGEST_SIZE);
                m.layers = descs;
                m.n_layers = json_count(layers);
                for (size_t l = 0; l < m.n_layers; l++) {
                        const char *p = json_string(json_at(layers, l), NULL);
                        const struct member *lm = lookup(ld, p);
                        const char *mt;

                        if (!lm)
                                return oci_err_set(ld->e, -EBADMSG,
                                                   "manifest.json entry %zu: layer '%.200s' is "
                                                   "missing",
                                                   i + 1, p ? p : "?");
                        r = sniff_layer(ld->c, lm->digest, &mt);
                        if (r < 0)
                                return r;
                        descs[l] =
                                (struct oci_descriptor){.media_type = (char *)mt, .size = lm->size};
                        memcpy(descs[l].digest, lm->digest, OCI_DIGEST_SIZE);
                }
                json = oci_manifest_to_json(&m);
                if (!json)
                        return -ENOMEM;
                r = oci_cache_blob_put(ld->c, json, strlen(json), digest);
                if (r < 0)
                        return r;
                if (json_count(tags) == 0) {
                        r = add_image(ld, NULL, digest);
                        if (r < 0)
                                return r;
                }
                for (size_t t = 0; t < json_count(tags); t++) {
                        r = add_image(ld, json_string(json_at(tags, t), NULL), digest);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int assemble_oci(struct loader *ld)
{
        _cleanup_(oci_index_freep) struct oci_index *idx = NULL;
        int r;

        r = oci_index_parse(ld->index_json, ld->index_json_len, &idx, ld->e);
        if (r < 0)
                return oci_err_prefix(ld->e, r, "index.json");
        for (size_t i = 0; i < idx->n_manifests; i++) {
                const struct oci_descriptor *d = &idx->manifests[i];
                _cleanup_free_ char *body = NULL;
                _cleanup_(oci_index_freep) struct oci_index *sub = NULL;
                const char *digest = d->digest, *name = d->ref_name;
                enum oci_doc_kind kind;
                size_t len;

                r = oci_cache_blob_read(ld->c, digest, OCI_MANIFEST_MAX, &body, &len);
                if (r < 0)
                        return oci_err_set(ld->e, r, "index.json entry %zu (%.19s): %s", i + 1,
                                           digest,
                                           r == -ENOENT ? "not in the archive" : strerror(-r));
                r = oci_doc_kind(body, len, d->media_type, &kind, ld->e);
                if (r < 0)
                        return r;
                if (kind == OCI_DOC_INDEX) {
                        r = oci_index_parse(body, len, &sub, ld->e);
                        if (r < 0)
                                return r;
                        d = oci_index_select(sub, OCI_OS, OCI_ARCH, NULL);
                        if (!d)
                                return oci_err_set(ld->e, -ENOEXEC,
                                                   "index.json entry %zu has no " OCI_OS
                                                   "/" OCI_ARCH " image",
                                                   i + 1);
                        digest = d->digest;
                }
                /* a bare tag names no repository: the image stays untagged */
                if (name && !strpbrk(name, "/:"))
                        name = NULL;
                r = add_image(ld, name, digest);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Drops the blobs this load added that no loaded image uses (all of them
 * when the load failed). */
static void drop_unused(struct loader *ld, bool failed)
{
        _cleanup_free_ char **used = NULL;
        struct oci_image **imgs = calloc(ld->n_imgs + 1, sizeof(*imgs));
        size_t n_used = 0, cap = 0;

        if (!imgs)
                return;
        for (size_t k = 0; k < ld->n_imgs && !failed; k++) {
                if (oci_image_open(ld->c, ld->imgs[k].manifest_digest, false, NULL, NULL, NULL,
                                   &imgs[k], NULL) < 0)
                        continue;
                cap += 2 + imgs[k]->manifest->n_layers;
        }
        used = calloc(cap + 1, sizeof(*used));
        for (size_t k = 0; used && k < ld->n_imgs; k++) {
                if (!imgs[k])
                        continue;
                used[n_used++] = imgs[k]->manifest_digest;
                used[n_used++] = imgs[k]->manifest->config.digest;
                for (size_t l = 0; l < imgs[k]->manifest->n_layers; l++)
                        used[n_used++] = imgs[k]->manifest->layers[l].digest;
        }
        for (size_t i = 0; (used || failed) && i < ld->n_created; i++) {
                bool keep = false;

                for (size_t k = 0; k < n_used && !keep; k++)
                        keep = streq(used[k], ld->created[i]);
                if (!keep)
                        oci_cache_blob_remove(ld->c, ld->created[i]);
        }
        for (size_t k = 0; k < ld->n_imgs; k++)
                oci_image_free(imgs[k]);
        free(imgs);
}

int oci_archive_load(const struct oci_cache *c, int fd, struct oci_archive_image **ret,
                     size_t *ret_n, struct oci_err *e)
{
        struct loader ld = {.c = c, .e = e};
        int r;

        r = oci_dl_archive(e);
        if (r < 0)
                return r;
        r = read_stream(&ld, fd);
        if (r >= 0) {
                if (ld.manifest_json)
                        r = assemble_docker(&ld);
                else if (ld.index_json)
                        r = assemble_oci(&ld);
                else
                        r = oci_err_set(e, -EBADMSG,
                                        "not an image archive: no manifest.json or index.json");
        }
        if (r >= 0 && ld.n_imgs == 0)
                r = oci_err_set(e, -EBADMSG, "the archive holds no image");
        drop_unused(&ld, r < 0);
        if (r >= 0) {
                *ret = TAKE_PTR(ld.imgs);
                *ret_n = ld.n_imgs;
                ld.n_imgs = 0;
        }
        loader_free(&ld);
        return r;
}
