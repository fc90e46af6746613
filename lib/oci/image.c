/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: a pull resolves the reference to one manifest
 * (through an index when the registry has several platforms), stores the
 * manifest and config blobs, downloads the layers the cache lacks, and
 * hands over to oci_image_open(), which is also what an offline start
 * uses: read the manifest and config back (verified), check that every
 * layer is there, build the rootfs.
 *
 * Each fresh download is also scanned as it arrives: the blob writer copies
 * the stream to a socket that a thread reads with oci_layer_scan(), so the
 * layer's description (lib/oci/rootfs.h) is ready when the download ends
 * and the flattening does not have to decompress every layer twice. The
 * copy applies back-pressure (a slow scan slows its download); a scan that
 * fails or a download that restarts merely loses the copy, and the layer is
 * scanned again from the cache later (where a hostile layer's error is
 * reported with its context).
 *
 * Several processes may pull overlapping images at once. A layer whose
 * lock another process holds is skipped at first (it is being downloaded
 * there); once our own downloads are done and their locks released, we
 * wait for each skipped one in turn, holding no other lock, and download it
 * only if the other process did not publish it. Waiting while holding
 * nothing is what rules out a deadlock between two pulls that take the
 * same layers in a different order.
 */
#include "image.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/core/util.h"
#include "rootfs.h"

#define DEFAULT_PARALLEL 4

void oci_image_free(struct oci_image *img)
{
        if (!img)
                return;
        oci_manifest_free(img->manifest);
        oci_image_config_free(img->config);
        free(img->rootfs);
        free(img);
}

static void emit(oci_pull_event_fn fn, void *userdata, const struct oci_pull_event *ev)
{
        if (fn)
                fn(userdata, ev);
}

struct materialize_ctx {
        oci_pull_event_fn fn;
        void *userdata;
        const struct oci_manifest *m;
};

static void on_materialize(void *userdata, size_t layer, size_t n_layers, uint64_t done,
                           uint64_t total)
{
        struct materialize_ctx *ctx = userdata;

        emit(ctx->fn, ctx->userdata,
             &(struct oci_pull_event){.phase = OCI_PULL_MATERIALIZE,
                                      .layer = layer,
                                      .n_layers = n_layers,
                                      .digest = ctx->m->layers[layer].digest,
                                      .done = done,
                                      .total = total});
}

int oci_image_open(const struct oci_cache *c, const char *manifest_digest, bool materialize,
                   const struct oci_limits *limits, oci_pull_event_fn event, void *userdata,
                   struct oci_image **ret, struct oci_err *e)
{
        _cleanup_(oci_image_freep) struct oci_image *img = NULL;
        _cleanup_free_ char *body = NULL;
        size_t len;
        int r;

        img = calloc(1, sizeof(*img));
        if (!img)
                return -ENOMEM;
        memcpy(img->manifest_digest, manifest_digest, OCI_DIGEST_SIZE);
        r = oci_cache_blob_read(c, manifest_digest, OCI_MANIFEST_MAX, &body, &len);
        if (r < 0)
                return oci_err_set(e, r, "manifest %.19s: %s", manifest_digest,
                                   r == -ENOENT    ? "not in the cache"
                                   : r == -EBADMSG ? "corrupt in the cache (removed)"
                                                   : strerror(-r));
        r = oci_manifest_parse(body, len, &img->manifest, e);
        if (r < 0)
                return oci_err_prefix(e, r, "manifest %.19s", manifest_digest);
        img->size = len + img->manifest->config.size;
        free(body);
        body = NULL;
        r = oci_cache_blob_read(c, img->manifest->config.digest, OCI_CONFIG_MAX, &body, &len);
        if (r < 0)
                return oci_err_set(e, r, "config %.19s: %s", img->manifest->config.digest,
                                   r == -ENOENT    ? "not in the cache"
                                   : r == -EBADMSG ? "corrupt in the cache (removed)"
                                                   : strerror(-r));
        r = oci_config_parse(body, len, &img->config, e);
        if (r < 0)
                return r;
        for (size_t i = 0; i < img->manifest->n_layers; i++)
                img->size += img->manifest->layers[i].size;
        if (materialize) {
                struct materialize_ctx ctx = {event, userdata, img->manifest};

                r = oci_rootfs_build(c, manifest_digest, img->manifest, img->config, limits,
                                     on_materialize, &ctx, &img->rootfs, e);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(img);
        return 0;
}

/* Fetches the manifest for ref and, through an index, the linux/amd64 one;
 * stores both; the chosen manifest's digest goes to ret_digest. */
static int resolve(const struct oci_cache *c, struct oci_registry *reg, const struct oci_ref *ref,
                   char ret_digest[OCI_DIGEST_SIZE], struct oci_err *e)
{
        _cleanup_free_ char *body = NULL, *ctype = NULL;
        _cleanup_(oci_index_freep) struct oci_index *idx = NULL;
        const struct oci_descriptor *d;
        char digest[OCI_DIGEST_SIZE];
        enum oci_doc_kind kind;
        size_t len;
        int r;

        r = oci_registry_get_manifest(reg, ref->digest ? ref->digest : ref->tag, &body, &len,
                                      &ctype, digest, e);
        if (r < 0)
                return r;
        r = oci_doc_kind(body, len, ctype, &kind, e);
        if (r < 0)
                return r;
        if (kind == OCI_DOC_INDEX) {
                _cleanup_free_ char *platforms = NULL;

                r = oci_index_parse(body, len, &idx, e);
                if (r < 0)
                        return r;
                r = oci_cache_blob_put(c, body, len, NULL);
                if (r < 0)
                        return oci_err_set(e, r, "cannot store the index: %s", strerror(-r));
                d = oci_index_select(idx, OCI_OS, OCI_ARCH, NULL);
                if (!d) {
                        platforms = oci_index_platforms(idx);
                        return oci_err_set(e, -ENOEXEC,
                                           "no " OCI_OS "/" OCI_ARCH
                                           " image in the index (it has: %.300s)",
                                           platforms ? platforms : "?");
                }
                if (d->size > OCI_MANIFEST_MAX)
                        return oci_err_set(e, -E2BIG, "the manifest is too large");
                free(body);
                free(ctype);
                body = ctype = NULL;
                r = oci_registry_get_manifest(reg, d->digest, &body, &len, &ctype, digest, e);
                if (r < 0)
                        return r;
                if (len != d->size)
                        return oci_err_set(e, -EBADMSG,
                                           "manifest %.19s: %zu bytes, the index says %llu",
                                           d->digest, len, (unsigned long long)d->size);
                r = oci_doc_kind(body, len, ctype, &kind, e);
                if (r < 0)
                        return r;
                if (kind != OCI_DOC_MANIFEST)
                        return oci_err_set(e, -EBADMSG, "an index inside an index");
        }
        r = oci_cache_blob_put(c, body, len, NULL);
        if (r < 0)
                return oci_err_set(e, r, "cannot store the manifest: %s", strerror(-r));
        memcpy(ret_digest, digest, OCI_DIGEST_SIZE);
        return 0;
}

struct pull_ctx {
        const struct oci_pull_opts *o;
        const struct oci_manifest *m;
        const size_t *layer_of; /* request index → layer index */
};

static void on_blob_progress(void *userdata, size_t i, uint64_t done, uint64_t total)
{
        struct pull_ctx *ctx = userdata;
        size_t layer = ctx->layer_of[i];

        emit(ctx->o->event, ctx->o->userdata,
             &(struct oci_pull_event){.phase = OCI_PULL_LAYER,
                                      .layer = layer,
                                      .n_layers = ctx->m->n_layers,
                                      .digest = ctx->m->layers[layer].digest,
                                      .done = done,
                                      .total = total});
}

static void layer_done(const struct oci_pull_opts *o, const struct oci_manifest *m, size_t i,
                       bool cached)
{
        emit(o->event, o->userdata,
             &(struct oci_pull_event){.phase = OCI_PULL_LAYER_DONE,
                                      .layer = i,
                                      .n_layers = m->n_layers,
                                      .digest = m->layers[i].digest,
                                      .done = m->layers[i].size,
                                      .total = m->layers[i].size,
                                      .cached = cached});
}

struct scan_job {
        pthread_t thread;
        bool running;
        int fds[2]; /* [0] the writer's end, [1] the scanner's */
        const char *digest;
        const struct oci_limits *limits;
        struct oci_layer_meta *meta;
        int result;
};

static void *scan_main(void *p)
{
        struct scan_job *job = p;
        char buf[65536];

        job->result =
                oci_layer_scan(job->fds[1], NULL, 0, job->digest, job->limits, &job->meta, NULL);
        /* whatever the scan thought, keep reading: the download must not block */
        while (read(job->fds[1], buf, sizeof(buf)) > 0)
                ;
        return NULL;
}

/* Starts scanning what w will receive; false when it cannot (no harm). */
static bool scan_start(struct scan_job *job, struct oci_blob_writer *w, const char *digest,
                       const struct oci_limits *limits)
{
        *job = (struct scan_job){.fds = {-1, -1}, .digest = digest, .limits = limits};
        if (oci_blob_writer_offset(w) != 0 ||
            socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, job->fds) < 0)
                return false;
        if (pthread_create(&job->thread, NULL, scan_main, job) != 0) {
                job->fds[0] = safe_close(job->fds[0]);
                job->fds[1] = safe_close(job->fds[1]);
                return false;
        }
        job->running = true;
        oci_blob_writer_tee(w, job->fds[0]);
        return true;
}

/* Ends a scan; records its result when the download was complete. */
static void scan_finish(const struct oci_cache *c, struct scan_job *job, struct oci_blob_writer *w,
                        bool downloaded)
{
        bool whole = w && oci_blob_writer_tee_complete(w);

        if (!job->running)
                return;
        job->fds[0] = safe_close(job->fds[0]); /* end of stream for the scanner */
        pthread_join(job->thread, NULL);
        job->fds[1] = safe_close(job->fds[1]);
        job->running = false;
        if (downloaded && whole && job->result == 0)
                (void)oci_layer_meta_put(c, job->digest, job->meta);
        oci_layer_meta_free(job->meta);
        job->meta = NULL;
}

/* Downloads the layers the cache lacks (see the theory of operation). */
static int fetch_layers(const struct oci_cache *c, struct oci_registry *reg,
                        const struct oci_manifest *m, const struct oci_pull_opts *o,
                        struct oci_err *e)
{
        size_t n = m->n_layers, n_reqs = 0, n_later = 0;
        _cleanup_free_ struct oci_blob_req *reqs = calloc(n + 1, sizeof(*reqs));
        _cleanup_free_ size_t *layer_of = calloc(n + 1, sizeof(size_t));
        _cleanup_free_ size_t *later = calloc(n + 1, sizeof(size_t));
        _cleanup_free_ struct scan_job *jobs = calloc(n + 1, sizeof(*jobs));
        struct pull_ctx ctx = {o, m, layer_of};
        int r = 0;

        if (!reqs || !layer_of || !later || !jobs)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const struct oci_descriptor *d = &m->layers[i];
                struct oci_blob_writer *w = NULL;
                bool dup = false;

                for (size_t j = 0; j < i; j++)
                        dup |= streq(m->layers[j].digest, d->digest);
                if (dup || oci_cache_has_blob(c, d->digest, d->size)) {
                        if (!dup)
                                layer_done(o, m, i, true);
                        continue;
                }
                r = oci_blob_writer_open(c, d->digest, d->size, true, &w);
                if (r == -EAGAIN) {
                        later[n_later++] = i;
                        continue;
                }
                if (r < 0)
                        goto out;
                if (!w) {
                        layer_done(o, m, i, true);
                        continue;
                }
                layer_of[n_reqs] = i;
                reqs[n_reqs++] =
                        (struct oci_blob_req){.digest = d->digest, .size = d->size, .w = w};
        }
        r = oci_registry_get_blobs(reg, reqs, n_reqs, o->parallel ? o->parallel : DEFAULT_PARALLEL,
                                   on_blob_progress, &ctx, e);
        for (size_t k = 0; k < n_reqs; k++) {
                if (reqs[k].result == 0)
                        layer_done(o, m, layer_of[k], false);
                else if (r < 0 && reqs[k].result != -ECANCELED && reqs[k].result != -EINPROGRESS)
                        oci_err_prefix(e, r, "layer %zu/%zu %.19s", layer_of[k] + 1, n,
                                       reqs[k].digest);
                scan_finish(c, &jobs[k], reqs[k].w, reqs[k].result == 0);
                oci_blob_writer_free(reqs[k].w);
                reqs[k].w = NULL;
        }
        if (r < 0)
                goto out;

        /* the layers another process was downloading: wait for each */
        for (size_t k = 0; k < n_later; k++) {
                size_t i = later[k];
                const struct oci_descriptor *d = &m->layers[i];
                struct oci_blob_writer *w = NULL;

                r = oci_blob_writer_open(c, d->digest, d->size, false, &w);
                if (r < 0)
                        goto out;
                if (!w) {
                        layer_done(o, m, i, true);
                        continue;
                }
                layer_of[0] = i;
                scan_start(&jobs[0], w, d->digest, &o->limits);
                reqs[0] = (struct oci_blob_req){.digest = d->digest, .size = d->size, .w = w};
                r = oci_registry_get_blobs(reg, reqs, 1, 1, on_blob_progress, &ctx, e);
                scan_finish(c, &jobs[0], w, r == 0);
                oci_blob_writer_free(w);
                reqs[0].w = NULL;
                if (r < 0) {
                        oci_err_prefix(e, r, "layer %zu/%zu %.19s", i + 1, n, d->digest);
                        goto out;
                }
                layer_done(o, m, i, false);
        }
out:
        /* a failure while opening writers leaves some open */
        for (size_t k = 0; k < n_reqs; k++) {
                if (!reqs[k].w)
                        continue;
                scan_finish(c, &jobs[k], reqs[k].w, false);
                oci_blob_writer_free(reqs[k].w);
        }
        return r;
}

int oci_pull(const struct oci_cache *c, const struct oci_ref *ref, const struct oci_pull_opts *o,
             struct oci_image **ret, struct oci_err *e)
{
        _cleanup_(oci_registry_freep) struct oci_registry *reg = NULL;
        _cleanup_(oci_manifest_freep) struct oci_manifest *m = NULL;
        _cleanup_(oci_image_config_freep) struct oci_image_config *cfg = NULL;
        _cleanup_free_ char *body = NULL;
        char digest[OCI_DIGEST_SIZE];
        size_t len;
        int r;

        r = oci_registry_new(ref, &o->registry, &reg, e);
        if (r < 0)
                return r;
        r = resolve(c, reg, ref, digest, e);
        if (r < 0)
                return r;
        r = oci_cache_blob_read(c, digest, OCI_MANIFEST_MAX, &body, &len);
        if (r >= 0)
                r = oci_manifest_parse(body, len, &m, e);
        if (r < 0)
                return oci_err_default(e, r, "cannot read back the manifest: %s", strerror(-r));
        emit(o->event, o->userdata,
             &(struct oci_pull_event){
                     .phase = OCI_PULL_RESOLVED, .n_layers = m->n_layers, .digest = digest});
        free(body);
        body = NULL;

        /* the config: small, fetched into memory and checked */
        if (!oci_cache_has_blob(c, m->config.digest, m->config.size)) {
                if (m->config.size > OCI_CONFIG_MAX)
                        return oci_err_set(e, -E2BIG, "the image config is too large");
                r = oci_registry_get_small_blob(reg, m->config.digest, OCI_CONFIG_MAX, &body, &len,
                                                e);
                if (r < 0)
                        return oci_err_prefix(e, r, "config %.19s", m->config.digest);
                if (len != m->config.size)
                        return oci_err_set(
                                e, -EBADMSG, "config %.19s: %zu bytes, the manifest says %llu",
                                m->config.digest, len, (unsigned long long)m->config.size);
                r = oci_cache_blob_put(c, body, len, NULL);
                if (r < 0)
                        return oci_err_set(e, r, "cannot store the config: %s", strerror(-r));
                free(body);
                body = NULL;
        }
        r = oci_cache_blob_read(c, m->config.digest, OCI_CONFIG_MAX, &body, &len);
        if (r >= 0)
                r = oci_config_parse(body, len, &cfg, e);
        if (r < 0)
                return oci_err_default(e, r, "cannot read the config: %s", strerror(-r));
        if ((cfg->os && !streq(cfg->os, OCI_OS)) ||
            (cfg->architecture && !streq(cfg->architecture, OCI_ARCH)))
                return oci_err_set(
                        e, -ENOEXEC, "the image is for %.40s/%.40s, not " OCI_OS "/" OCI_ARCH,
                        cfg->os ? cfg->os : "?", cfg->architecture ? cfg->architecture : "?");

        r = fetch_layers(c, reg, m, o, e);
        if (r < 0)
                return r;
        r = oci_image_open(c, digest, o->materialize, &o->limits, o->event, o->userdata, ret, e);
        if (r < 0)
                return r;
        emit(o->event, o->userdata,
             &(struct oci_pull_event){
                     .phase = OCI_PULL_COMPLETE, .n_layers = m->n_layers, .digest = digest});
        return 0;
}
