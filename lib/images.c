/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Images section of the public API over lib/oci (cache, registry,
 * flattening, archives) and lib/store/images (the index).
 *
 * Theory of operation: every call opens the cache of $MSB_HOME (a shared
 * flock, held for the whole call so that a sweep never runs under it) and
 * the state store, does its work with lib/oci, records the outcome in the
 * index, and turns the lib/oci error detail into the one API message:
 * "<what> <reference>: <cause>". Removal and prune sweep the cache under
 * the exclusive lock: what the index reaches from a reference or from a
 * sandbox stays, everything else goes.
 *
 * A sandbox uses an image when its recorded image (sandboxes.image) names
 * the same reference or the same manifest digest (see image_users()); such
 * an image is not removed without force, and its blobs and root disk
 * survive a prune even when no tag points at it any more.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "lib/core/json.h"
#include "lib/core/util.h"
#include "lib/oci/archives.h"
#include "lib/oci/auth.h"
#include "lib/oci/image.h"
#include "lib/oci/import.h"
#include "lib/oci/rootfs.h"
#include "lib/store/images.h"
#include "microsandbox.h"
#include "paths.h"
#include "internal.h"
#include "state.h"

struct msb_pull_options {
        msb_pull_policy policy;
        msb_pull_progress_fn progress;
        void *userdata;
        int insecure;
        char *ca_certs;
        uint64_t timeout_ms;
        char *username;
        char *password;
        int cancel_fd;
        struct oci_limits limits;
};

msb_pull_options *msb_pull_options_new(void)
{
        msb_pull_options *o = calloc(1, sizeof(*o));

        if (!o)
                return NULL;
        o->cancel_fd = -1;
        oci_limits_default(&o->limits);
        return o;
}

void msb_pull_options_free(msb_pull_options *o)
{
        if (!o)
                return;
        free(o->ca_certs);
        free(o->username);
        if (o->password)
                explicit_bzero(o->password, strlen(o->password));
        free(o->password);
        free(o);
}

int msb_pull_options_set_policy(msb_pull_options *o, msb_pull_policy policy)
{
        if (!o || (policy != MSB_PULL_IF_MISSING && policy != MSB_PULL_ALWAYS &&
                   policy != MSB_PULL_NEVER))
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL, "invalid pull policy");
        o->policy = policy;
        return 0;
}

int msb_pull_options_set_progress(msb_pull_options *o, msb_pull_progress_fn fn, void *userdata)
{
        if (!o)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL, "no options");
        o->progress = fn;
        o->userdata = userdata;
        return 0;
}

int msb_pull_options_set_insecure(msb_pull_options *o, int insecure)
{
        if (!o)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL, "no options");
        o->insecure = !!insecure;
        return 0;
}

static int replace(char **slot, const char *value)
{
        char *copy = value ? strdup(value) : NULL;

        if (value && !copy)
                return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
        free(*slot);
        *slot = copy;
        return 0;
}

int msb_pull_options_set_ca_certs(msb_pull_options *o, const char *pem_path)
{
        if (!o)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL, "no options");
        if (pem_path && access(pem_path, R_OK) < 0)
                return error_set(MSB_ERR_INVALID_ARGUMENT, negative_errno(), "--ca-certs %s: %m",
                                 pem_path);
        return replace(&o->ca_certs, pem_path);
}

int msb_pull_options_set_timeout_ms(msb_pull_options *o, uint64_t ms)
{
        if (!o || ms == 0 || ms > 24ULL * 3600 * 1000)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL,
                                 "the registry timeout must be from 1 ms to 24 h");
        o->timeout_ms = ms;
        return 0;
}

int msb_pull_options_set_credentials(msb_pull_options *o, const char *username,
                                     const char *password)
{
        if (!o || (username && (!*username || strchr(username, ':'))))
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL,
                                 "a user name must be non-empty, without ':'");
        if (replace(&o->username, username) < 0)
                return -ENOMEM;
        if (o->password)
                explicit_bzero(o->password, strlen(o->password));
        return replace(&o->password, username ? (password ? password : "") : NULL);
}

int msb_pull_options_set_cancel_fd(msb_pull_options *o, int fd)
{
        if (!o)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL, "no options");
        o->cancel_fd = fd;
        return 0;
}

int msb_pull_options_set_limits(msb_pull_options *o, uint64_t max_entries, uint64_t max_file_bytes,
                                uint64_t max_total_bytes)
{
        struct oci_limits def;

        if (!o)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL, "no options");
        oci_limits_default(&def);
        o->limits.max_entries = max_entries ? max_entries : def.max_entries;
        o->limits.max_file_bytes = max_file_bytes ? max_file_bytes : def.max_file_bytes;
        o->limits.max_total_bytes = max_total_bytes ? max_total_bytes : def.max_total_bytes;
        return 0;
}

void msb_strv_free(char **v)
{
        if (!v)
                return;
        for (char **p = v; *p; p++)
                free(*p);
        free(v);
}

static void strv_freep(char ***v)
{
        msb_strv_free(*v);
}

/* ---- shared plumbing ---------------------------------------------------- */

/* The API error for a lib/oci failure. */
static int fail(int r, const char *what, const char *ref, const struct oci_err *e)
{
        msb_error_kind kind;

        switch (r) {
        case -EINVAL:
                kind = MSB_ERR_INVALID_ARGUMENT;
                break;
        case -ENOENT:
        case -ENOEXEC:
                kind = MSB_ERR_IMAGE_NOT_FOUND;
                break;
        case -EACCES:
        case -ECONNREFUSED:
        case -ECONNRESET:
        case -EHOSTUNREACH:
        case -ENETUNREACH:
        case -ETIMEDOUT:
        case -EPROTO:
        case -EIO:
                kind = MSB_ERR_REGISTRY;
                break;
        case -EBADMSG:
        case -EXDEV:
        case -ENOTDIR:
        case -E2BIG:
        case -EFBIG:
        case -EPERM:
        case -EMLINK:
        case -EOPNOTSUPP:
        case -ENAMETOOLONG:
                kind = MSB_ERR_IMAGE_INVALID;
                break;
        case -ECANCELED:
                kind = MSB_ERR_CANCELLED;
                break;
        case -EBUSY:
                kind = MSB_ERR_CONFLICT;
                break;
        default:
                kind = MSB_ERR_SYSTEM;
                break;
        }
        return error_set(kind, r, "%s%s%s: %s", what, ref ? " " : "", ref ? ref : "",
                         !oci_err_empty(e) ? e->msg : strerror(-r));
}

struct ctx {
        char *home;
        struct oci_cache *cache;
        struct store *store;
};

static void ctx_close(struct ctx *c)
{
        store_close(c->store);
        oci_cache_close(c->cache);
        free(c->home);
}

/* Opens the cache (shared or exclusive lock) and the store. */
static int ctx_open(struct ctx *c, bool exclusive)
{
        int r;

        *c = (struct ctx){0};
        r = paths_home(&c->home);
        if (r < 0)
                return error_set(MSB_ERR_SYSTEM, r, "cannot find a home for msb: set MSB_HOME");
        r = oci_cache_open(c->home, exclusive, &c->cache);
        if (r < 0) {
                ctx_close(c);
                return error_set(MSB_ERR_SYSTEM, r, "cannot open the image cache in %s/cache: %s",
                                 c->home, strerror(-r));
        }
        r = state_open(&c->store);
        if (r < 0)
                ctx_close(c);
        return r;
}

/* Parses ref into its canonical string. */
static int canonical(const char *ref, struct oci_ref *ret_ref, char **ret)
{
        int r;

        if (!ref)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL, "no image reference");
        r = oci_ref_parse(ref, ret_ref);
        if (r == -ENOMEM)
                return error_set(MSB_ERR_SYSTEM, r, "out of memory");
        if (r < 0)
                return error_set(MSB_ERR_INVALID_ARGUMENT, r,
                                 "invalid image reference '%s': use NAME[:TAG] or NAME@sha256:...",
                                 ref);
        *ret = oci_ref_string(ret_ref);
        if (!*ret) {
                oci_ref_clear(ret_ref);
                return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
        }
        return 0;
}

static char *json_strv(char *const *v, size_t n)
{
        struct json_writer w;

        if (!v)
                return NULL;
        json_writer_init(&w);
        json_begin_array(&w);
        for (size_t i = 0; i < n; i++)
                json_put_string(&w, v[i]);
        json_end_array(&w);
        return json_writer_steal(&w);
}

/* Records img in the index under ref (may be NULL). */
static int record(struct ctx *c, const char *ref, const struct oci_image *img)
{
        const struct oci_manifest *m = img->manifest;
        const struct oci_image_config *cfg = img->config;
        _cleanup_free_ struct store_image_layer *layers = calloc(m->n_layers + 1, sizeof(*layers));
        _cleanup_free_ char *env = json_strv(cfg->env, cfg->n_env);
        _cleanup_free_ char *ep = json_strv(cfg->entrypoint, cfg->n_entrypoint);
        _cleanup_free_ char *cmd = json_strv(cfg->cmd, cfg->n_cmd);
        int r;

        if (!layers)
                return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
        for (size_t i = 0; i < m->n_layers; i++)
                layers[i] = (struct store_image_layer){
                        .digest = m->layers[i].digest,
                        .media_type = m->layers[i].media_type,
                        .size = m->layers[i].size,
                        .diff_id = i < cfg->n_diff_ids ? cfg->diff_ids[i] : NULL,
                };
        r = store_image_put(
                c->store, ref,
                &(struct store_image_manifest){
                        .digest = img->manifest_digest,
                        .media_type = m->media_type ? m->media_type : OCI_MT_OCI_MANIFEST,
                        .size = img->size,
                        .config_digest = m->config.digest,
                        .os = cfg->os,
                        .architecture = cfg->architecture,
                        .created = cfg->created,
                        .env_json = env,
                        .entrypoint_json = ep,
                        .cmd_json = cmd,
                        .working_dir = cfg->working_dir,
                        .user = cfg->user,
                        .layers = layers,
                        .n_layers = m->n_layers,
                });
        if (r < 0)
                return error_set(MSB_ERR_SYSTEM, r, "cannot record image %s: %s",
                                 ref ? ref : img->manifest_digest, strerror(-r));
        return 0;
}

struct progress {
        const msb_pull_options *o;
        const char *ref;
};

static void on_event(void *userdata, const struct oci_pull_event *ev)
{
        struct progress *p = userdata;
        static const msb_pull_phase phases[] = {
                [OCI_PULL_RESOLVED] = MSB_PULL_RESOLVED,
                [OCI_PULL_LAYER] = MSB_PULL_LAYER,
                [OCI_PULL_LAYER_DONE] = MSB_PULL_LAYER_DONE,
                [OCI_PULL_MATERIALIZE] = MSB_PULL_MATERIALIZE,
                [OCI_PULL_COMPLETE] = MSB_PULL_COMPLETE,
        };

        if (!p->o || !p->o->progress)
                return;
        p->o->progress(&(msb_pull_event){.phase = phases[ev->phase],
                                         .ref = p->ref,
                                         .digest = ev->digest,
                                         .layer = ev->layer,
                                         .n_layers = ev->n_layers,
                                         .done = ev->done,
                                         .total = ev->total,
                                         .cached = ev->cached},
                       p->o->userdata);
}

static void pull_opts(struct ctx *c, const msb_pull_options *o, struct progress *p,
                      struct oci_pull_opts *ret)
{
        *ret = (struct oci_pull_opts){
                .registry = {.home = c->home, .cancel_fd = -1},
                .materialize = true,
                .event = on_event,
                .userdata = p,
        };
        oci_limits_default(&ret->limits);
        if (!o)
                return;
        ret->registry.insecure = o->insecure;
        ret->registry.ca_certs = o->ca_certs;
        ret->registry.timeout_ms = o->timeout_ms;
        ret->registry.username = o->username;
        ret->registry.password = o->password;
        ret->registry.cancel_fd = o->cancel_fd;
        ret->limits = o->limits;
}

/* Pulls ref (canonical string name) and records it; the image to ret. */
static int pull(struct ctx *c, const struct oci_ref *ref, const char *name,
                const msb_pull_options *o, struct oci_image **ret)
{
        struct progress p = {o, name};
        struct oci_pull_opts po;
        struct oci_err e = {0};
        int r;

        pull_opts(c, o, &p, &po);
        r = oci_pull(c->cache, ref, &po, ret, &e);
        if (r < 0)
                return fail(r, "pull", name, &e);
        r = record(c, name, *ret);
        if (r < 0) {
                oci_image_free(*ret);
                *ret = NULL;
        }
        return r;
}

int msb_image_pull(const char *ref, const msb_pull_options *opts, char **ret_digest)
{
        _cleanup_(oci_image_freep) struct oci_image *img = NULL;
        _cleanup_free_ char *name = NULL;
        struct oci_ref parsed = {0};
        struct ctx c;
        int r;

        r = canonical(ref, &parsed, &name);
        if (r < 0)
                return r;
        r = ctx_open(&c, false);
        if (r >= 0) {
                r = pull(&c, &parsed, name, opts, &img);
                if (r >= 0 && ret_digest) {
                        *ret_digest = strdup(img->manifest_digest);
                        if (!*ret_digest)
                                r = error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
                }
                ctx_close(&c);
        }
        oci_ref_clear(&parsed);
        return r;
}

/* The manifest a local reference names: by its digest when pinned, else
 * through the index. -ENOENT without an API error when absent. */
static int local_manifest(struct ctx *c, const struct oci_ref *ref, const char *name, char **ret)
{
        if (ref->digest) {
                if (!oci_cache_has_blob(c->cache, ref->digest, UINT64_MAX))
                        return -ENOENT;
                *ret = strdup(ref->digest);
                return *ret ? 0 : error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
        }
        return store_image_resolve(c->store, name, ret);
}

static int copy_strv(char *const *v, size_t n, char ***ret, size_t *ret_n)
{
        char **out;

        *ret = NULL;
        *ret_n = 0;
        if (!v)
                return 0;
        out = calloc(n + 1, sizeof(*out));
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                out[i] = strdup(v[i]);
                if (!out[i]) {
                        msb_strv_free(out);
                        return -ENOMEM;
                }
        }
        *ret = out;
        *ret_n = n;
        return 0;
}

void msb_image_config_free(msb_image_config *cfg)
{
        if (!cfg)
                return;
        free(cfg->ref);
        free(cfg->digest);
        free(cfg->pinned_ref);
        msb_strv_free(cfg->env);
        msb_strv_free(cfg->entrypoint);
        msb_strv_free(cfg->cmd);
        free(cfg->working_dir);
        free(cfg->user);
        free(cfg);
}

static int make_config(const struct oci_ref *ref, const char *name, const struct oci_image *img,
                       msb_image_config **ret)
{
        const struct oci_image_config *ic = img->config;
        msb_image_config *cfg = calloc(1, sizeof(*cfg));
        _cleanup_free_ char *repo = oci_ref_name(ref);
        int r = 0;

        if (!cfg || !repo)
                r = -ENOMEM;
        if (r >= 0) {
                cfg->ref = strdup(name);
                cfg->digest = strdup(img->manifest_digest);
                cfg->pinned_ref = strdup_printf("%s@%s", repo, img->manifest_digest);
                cfg->working_dir = ic->working_dir ? strdup(ic->working_dir) : NULL;
                cfg->user = ic->user ? strdup(ic->user) : NULL;
                if (!cfg->ref || !cfg->digest || !cfg->pinned_ref ||
                    (ic->working_dir && !cfg->working_dir) || (ic->user && !cfg->user))
                        r = -ENOMEM;
        }
        if (r >= 0)
                r = copy_strv(ic->env, ic->n_env, &cfg->env, &cfg->n_env);
        if (r >= 0)
                r = copy_strv(ic->entrypoint, ic->n_entrypoint, &cfg->entrypoint,
                              &cfg->n_entrypoint);
        if (r >= 0)
                r = copy_strv(ic->cmd, ic->n_cmd, &cfg->cmd, &cfg->n_cmd);
        if (r < 0) {
                msb_image_config_free(cfg);
                return error_set(MSB_ERR_SYSTEM, r, "out of memory");
        }
        *ret = cfg;
        return 0;
}

int msb_image_resolve(const char *ref, const msb_pull_options *opts, char **ret_disk_path,
                      msb_image_config **ret_config)
{
        _cleanup_(oci_image_freep) struct oci_image *img = NULL;
        _cleanup_free_ char *name = NULL, *digest = NULL;
        msb_pull_policy policy = opts ? opts->policy : MSB_PULL_IF_MISSING;
        struct oci_ref parsed = {0};
        struct oci_err e = {0};
        struct ctx c;
        int r;

        if (!ret_disk_path)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL, "no place for the disk path");
        r = canonical(ref, &parsed, &name);
        if (r < 0)
                return r;
        r = ctx_open(&c, false);
        if (r < 0) {
                oci_ref_clear(&parsed);
                return r;
        }
        if (policy != MSB_PULL_ALWAYS) {
                r = local_manifest(&c, &parsed, name, &digest);
                if (r == -ENOENT && policy == MSB_PULL_NEVER)
                        r = error_set(MSB_ERR_IMAGE_NOT_FOUND, r,
                                      "image %s is not here and the pull policy is never "
                                      "(msb pull %s)",
                                      name, ref);
                else if (r < 0 && r != -ENOENT)
                        r = error_set(MSB_ERR_SYSTEM, r, "image %s: %s", name, strerror(-r));
        }
        if (digest) {
                struct progress p = {opts, name};

                r = oci_image_open(c.cache, digest, true, opts ? &opts->limits : NULL, on_event, &p,
                                   &img, &e);
                if (r == -ENOENT && policy != MSB_PULL_NEVER) {
                        /* its blobs were removed behind the index's back: fetch them */
                        img = NULL;
                } else if (r < 0) {
                        r = fail(r, "image", name, &e);
                }
        }
        if (!img && (r >= 0 || r == -ENOENT) && policy != MSB_PULL_NEVER)
                r = pull(&c, &parsed, name, opts, &img);
        if (r >= 0 && ret_config)
                r = make_config(&parsed, name, img, ret_config);
        if (r >= 0) {
                *ret_disk_path = strdup(img->rootfs);
                if (!*ret_disk_path) {
                        if (ret_config) {
                                msb_image_config_free(*ret_config);
                                *ret_config = NULL;
                        }
                        r = error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
                }
        }
        ctx_close(&c);
        oci_ref_clear(&parsed);
        return r;
}

/* ---- list, inspect ------------------------------------------------------ */

static uint64_t rootfs_disk_usage(const struct oci_cache *cache, const char *digest)
{
        _cleanup_free_ char *rel = oci_rootfs_rel(digest);
        struct stat st;

        if (!rel || fstatat(cache->dir_fd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return 0;
        return (uint64_t)st.st_blocks * 512;
}

void msb_image_list_free(msb_image_info *list, size_t n)
{
        if (!list)
                return;
        for (size_t i = 0; i < n; i++) {
                free(list[i].ref);
                free(list[i].repository);
                free(list[i].tag);
                free(list[i].digest);
        }
        free(list);
}

int msb_image_list(msb_image_info **ret, size_t *ret_n)
{
        struct store_image *rows = NULL;
        msb_image_info *out = NULL;
        size_t n = 0;
        struct ctx c;
        int r;

        if (!ret || !ret_n)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL, "no place for the list");
        r = ctx_open(&c, false);
        if (r < 0)
                return r;
        r = store_image_list(c.store, &rows, &n);
        if (r < 0) {
                ctx_close(&c);
                return error_set(MSB_ERR_SYSTEM, r, "cannot list images: %s", strerror(-r));
        }
        out = calloc(n + 1, sizeof(*out));
        for (size_t i = 0; out && i < n; i++) {
                struct oci_ref parsed = {0};
                msb_image_info *info = &out[i];

                info->digest = strdup(rows[i].manifest_digest);
                info->size = rows[i].size;
                info->added_ms = rows[i].updated_at;
                info->disk_size = rootfs_disk_usage(c.cache, rows[i].manifest_digest);
                if (rows[i].created)
                        (void)parse_time_iso(rows[i].created, &info->created_ms);
                if (rows[i].ref && oci_ref_parse(rows[i].ref, &parsed) >= 0) {
                        info->ref = strdup(rows[i].ref);
                        info->repository = oci_ref_name(&parsed);
                        info->tag = parsed.tag ? strdup(parsed.tag) : NULL;
                        if (!info->ref || !info->repository || (parsed.tag && !info->tag))
                                r = -ENOMEM;
                        oci_ref_clear(&parsed);
                }
                if (!info->digest)
                        r = -ENOMEM;
        }
        store_image_list_free(rows, n);
        ctx_close(&c);
        if (!out || r < 0) {
                msb_image_list_free(out, n);
                return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
        }
        *ret = out;
        *ret_n = n;
        return 0;
}

/* A local image by reference, or by a bare "sha256:..." digest. */
static int find_local(struct ctx *c, const char *ref, char **ret_name, char **ret_digest)
{
        struct oci_ref parsed = {0};
        int r;

        if (oci_digest_valid(ref)) {
                *ret_name = strdup(ref);
                *ret_digest = strdup(ref);
                if (!*ret_name || !*ret_digest)
                        return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
                if (!oci_cache_has_blob(c->cache, ref, UINT64_MAX))
                        return error_set(MSB_ERR_IMAGE_NOT_FOUND, -ENOENT, "no image %s", ref);
                return 0;
        }
        r = canonical(ref, &parsed, ret_name);
        if (r < 0)
                return r;
        r = local_manifest(c, &parsed, *ret_name, ret_digest);
        oci_ref_clear(&parsed);
        if (r == -ENOENT)
                return error_set(MSB_ERR_IMAGE_NOT_FOUND, r, "no image %s here (msb pull %s)",
                                 *ret_name, ref);
        if (r < 0)
                return error_set(MSB_ERR_SYSTEM, r, "image %s: %s", *ret_name, strerror(-r));
        return 0;
}

static void put_strv(struct json_writer *w, const char *key, char *const *v, size_t n)
{
        json_key(w, key);
        if (!v) {
                json_put_null(w);
                return;
        }
        json_begin_array(w);
        for (size_t i = 0; i < n; i++)
                json_put_string(w, v[i]);
        json_end_array(w);
}

int msb_image_inspect(const char *ref, char **ret_json)
{
        _cleanup_free_ char *name = NULL, *digest = NULL, *manifest = NULL, *config = NULL,
                            *rel = NULL, *rootfs = NULL;
        _cleanup_(oci_image_freep) struct oci_image *img = NULL;
        _cleanup_(strv_freep) char **refs = NULL;
        struct json_writer w;
        struct oci_err e = {0};
        size_t n_refs = 0, len;
        struct stat st;
        struct ctx c;
        int r;

        if (!ret_json)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL, "no place for the JSON");
        r = ctx_open(&c, false);
        if (r < 0)
                return r;
        r = find_local(&c, ref, &name, &digest);
        if (r >= 0) {
                r = oci_image_open(c.cache, digest, false, NULL, NULL, NULL, &img, &e);
                if (r < 0)
                        r = fail(r, "inspect", name, &e);
        }
        if (r >= 0 &&
            (oci_cache_blob_read(c.cache, digest, OCI_MANIFEST_MAX, &manifest, &len) < 0 ||
             oci_cache_blob_read(c.cache, img->manifest->config.digest, OCI_CONFIG_MAX, &config,
                                 &len) < 0))
                r = error_set(MSB_ERR_IMAGE_INVALID, -EBADMSG, "image %s is damaged", name);
        if (r >= 0 && store_image_refs_of(c.store, digest, &refs, &n_refs) < 0)
                n_refs = 0;
        if (r < 0) {
                ctx_close(&c);
                return r;
        }
        rel = oci_rootfs_rel(digest);
        if (rel && fstatat(c.cache->dir_fd, rel, &st, 0) == 0)
                rootfs = oci_cache_abs(c.cache, rel);

        json_writer_init(&w);
        json_begin_object(&w);
        json_kv_string(&w, "Digest", digest);
        json_key(&w, "RepoTags");
        json_begin_array(&w);
        for (size_t i = 0; i < n_refs; i++)
                json_put_string(&w, refs[i]);
        json_end_array(&w);
        json_kv_uint(&w, "Size", img->size);
        json_kv_uint(&w, "DiskSize", rootfs_disk_usage(c.cache, digest));
        json_kv_string(&w, "Created", img->config->created);
        json_kv_string(&w, "Os", img->config->os);
        json_kv_string(&w, "Architecture", img->config->architecture);
        json_key(&w, "Config");
        json_begin_object(&w);
        put_strv(&w, "Env", img->config->env, img->config->n_env);
        put_strv(&w, "Entrypoint", img->config->entrypoint, img->config->n_entrypoint);
        put_strv(&w, "Cmd", img->config->cmd, img->config->n_cmd);
        json_kv_string(&w, "WorkingDir", img->config->working_dir);
        json_kv_string(&w, "User", img->config->user);
        json_kv_string(&w, "StopSignal", img->config->stop_signal);
        json_end_object(&w);
        json_key(&w, "Layers");
        json_begin_array(&w);
        for (size_t i = 0; i < img->manifest->n_layers; i++) {
                const struct oci_descriptor *d = &img->manifest->layers[i];

                json_begin_object(&w);
                json_kv_string(&w, "Digest", d->digest);
                json_kv_string(&w, "MediaType", d->media_type);
                json_kv_uint(&w, "Size", d->size);
                if (i < img->config->n_diff_ids)
                        json_kv_string(&w, "DiffID", img->config->diff_ids[i]);
                json_end_object(&w);
        }
        json_end_array(&w);
        json_kv_string(&w, "RootDisk", rootfs);
        json_key(&w, "Manifest");
        json_put_raw(&w, manifest);
        json_key(&w, "ImageConfig");
        json_put_raw(&w, config);
        json_end_object(&w);
        ctx_close(&c);
        *ret_json = json_writer_steal(&w);
        return *ret_json ? 0 : error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
}

/* ---- remove, prune ------------------------------------------------------- */

/* Whether a sandbox's recorded image names ref or the manifest digest. */
static bool sandbox_uses(const char *image, const char *name, const char *digest)
{
        _cleanup_free_ char *canon = NULL;
        struct oci_ref parsed = {0};

        if (!image)
                return false;
        if (strstr(image, digest))
                return true;
        if (oci_ref_parse(image, &parsed) < 0)
                return false;
        canon = oci_ref_string(&parsed);
        oci_ref_clear(&parsed);
        return canon && name && streq(canon, name);
}

/*
 * The hook behind "refused while a sandbox uses it": the names of the
 * sandboxes whose recorded image is ref (canonical name, may be NULL) or
 * pins digest, as one "a, b" string (malloc'd; NULL when none).
 */
static char *image_users(struct ctx *c, const char *name, const char *digest)
{
        struct store_sandbox *list = NULL;
        size_t n = 0;
        char *out = NULL;

        if (store_sandbox_list(c->store, NULL, 0, &list, &n) < 0)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                char *next;

                if (!sandbox_uses(list[i].image, name, digest))
                        continue;
                next = strdup_printf("%s%s%s", out ? out : "", out ? ", " : "", list[i].name);
                free(out);
                out = next;
                if (!out)
                        break;
        }
        store_sandbox_list_free(list, n);
        return out;
}

static bool in_list(char *const *v, size_t n, const char *s)
{
        for (size_t i = 0; i < n; i++)
                if (streq(v[i], s))
                        return true;
        return false;
}

/* Deletes the files of a cache directory, except those named after a live
 * digest (their hex, then suffix); with live NULL (nothing is live), every
 * file. Adds the bytes freed. */
static void sweep_dir(struct ctx *c, const char *dir, const char *suffix, char *const *live,
                      size_t n_live, uint64_t *freed)
{
        _cleanup_close_ int fd = openat(c->cache->dir_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        size_t sl = suffix ? strlen(suffix) : 0;
        struct dirent *de;
        DIR *d;

        if (fd < 0)
                return;
        d = fdopendir(fd);
        if (!d)
                return;
        fd = -1;
        while ((de = readdir(d))) {
                size_t len = strlen(de->d_name);
                struct stat st;

                if (de->d_name[0] == '.')
                        continue;
                if (live && len == OCI_DIGEST_HEX + sl &&
                    (!suffix || streq(de->d_name + OCI_DIGEST_HEX, suffix))) {
                        char digest[OCI_DIGEST_SIZE];

                        snprintf(digest, sizeof(digest), "sha256:%.*s", OCI_DIGEST_HEX, de->d_name);
                        if (in_list(live, n_live, digest))
                                continue;
                }
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                    S_ISDIR(st.st_mode))
                        continue;
                if (unlinkat(dirfd(d), de->d_name, 0) == 0)
                        *freed += (uint64_t)st.st_blocks * 512;
        }
        closedir(d);
}

/* Drops untagged manifests no sandbox uses from the index, then deletes
 * from the cache everything the index no longer reaches. The cache must be
 * open exclusively. */
static int sweep(struct ctx *c, uint64_t *ret_freed)
{
        struct store_image *rows = NULL;
        struct store_sandbox *sbs = NULL;
        char **live = NULL;
        size_t n = 0, n_sbs = 0, n_live = 0, cap = 0;
        uint64_t freed = 0;
        int r;

        r = store_image_list(c->store, &rows, &n);
        if (r >= 0)
                r = store_sandbox_list(c->store, NULL, 0, &sbs, &n_sbs);
        if (r < 0)
                goto out;
        for (size_t i = 0; i < n && r >= 0; i++) {
                _cleanup_(strv_freep) char **blobs = NULL;
                size_t n_blobs = 0;
                bool keep = rows[i].ref != NULL;

                for (size_t k = 0; k < n_sbs && !keep; k++)
                        keep = sandbox_uses(sbs[k].image, NULL, rows[i].manifest_digest);
                if (!keep) {
                        r = store_image_forget(c->store, rows[i].manifest_digest);
                        if (r == -EBUSY || r == -ENOENT)
                                r = 0; /* tagged meanwhile, or listed twice */
                        continue;
                }
                r = store_image_blobs_of(c->store, rows[i].manifest_digest, &blobs, &n_blobs);
                if (r < 0)
                        break;
                if (n_live + n_blobs + 1 >= cap) {
                        char **bigger;

                        cap = (n_live + n_blobs + 1) * 2;
                        bigger = realloc(live, cap * sizeof(*live));
                        if (!bigger) {
                                r = -ENOMEM;
                                break;
                        }
                        live = bigger;
                }
                live[n_live++] = TAKE_PTR(rows[i].manifest_digest);
                for (size_t b = 0; b < n_blobs; b++)
                        live[n_live++] = TAKE_PTR(blobs[b]);
        }
        if (r < 0)
                goto out;
        sweep_dir(c, "blobs/sha256", NULL, live, n_live, &freed);
        sweep_dir(c, "layers", NULL, live, n_live, &freed);
        sweep_dir(c, "rootfs", ".ext4", live, n_live, &freed);
        sweep_dir(c, "tmp", NULL, NULL, 0, &freed); /* nothing is live in tmp/ */
        sweep_dir(c, "locks", NULL, NULL, 0, &freed);
        if (ret_freed)
                *ret_freed = freed;
out:
        for (size_t i = 0; i < n_live; i++)
                free(live[i]);
        free(live);
        store_image_list_free(rows, n);
        store_sandbox_list_free(sbs, n_sbs);
        return r;
}

int msb_image_remove(const char *ref, int force)
{
        _cleanup_free_ char *name = NULL, *digest = NULL, *users = NULL;
        _cleanup_(strv_freep) char **refs = NULL;
        size_t n_refs = 0;
        struct ctx c;
        int r;

        if (!ref)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL, "no image reference");
        r = ctx_open(&c, true);
        if (r < 0)
                return r;
        r = find_local(&c, ref, &name, &digest);
        if (r < 0)
                goto out;
        users = image_users(&c, oci_digest_valid(ref) ? NULL : name, digest);
        if (users && !force) {
                r = error_set(MSB_ERR_CONFLICT, -EBUSY,
                              "image %s is used by sandbox %s: remove the sandbox first, or use "
                              "--force",
                              name, users);
                goto out;
        }
        if (oci_digest_valid(ref)) {
                /* a bare digest: every reference of that manifest */
                r = store_image_refs_of(c.store, digest, &refs, &n_refs);
                for (size_t i = 0; r >= 0 && i < n_refs; i++)
                        r = store_image_untag(c.store, refs[i]);
        } else {
                r = store_image_untag(c.store, name);
        }
        if (r < 0 && r != -ENOENT) {
                r = error_set(MSB_ERR_SYSTEM, r, "cannot remove %s: %s", name, strerror(-r));
                goto out;
        }
        r = sweep(&c, NULL);
        if (r < 0)
                r = error_set(MSB_ERR_SYSTEM, r, "cannot clean the image cache: %s", strerror(-r));
out:
        ctx_close(&c);
        return r;
}

int msb_image_prune(uint64_t *ret_freed)
{
        struct ctx c;
        int r = ctx_open(&c, true);

        if (r < 0)
                return r;
        r = sweep(&c, ret_freed);
        if (r < 0)
                r = error_set(MSB_ERR_SYSTEM, r, "cannot clean the image cache: %s", strerror(-r));
        ctx_close(&c);
        return r;
}

/* ---- import, save, load --------------------------------------------------- */

/* Builds the root disk of a manifest now in the cache and records it. */
static int finish_local(struct ctx *c, const char *ref, const char *digest, const char *what)
{
        _cleanup_(oci_image_freep) struct oci_image *img = NULL;
        struct oci_err e = {0};
        int r;

        r = oci_image_open(c->cache, digest, true, NULL, NULL, NULL, &img, &e);
        if (r < 0)
                return fail(r, what, ref ? ref : digest, &e);
        return record(c, ref, img);
}

int msb_image_import(const char *path, const char *tag, char **ret_digest)
{
        _cleanup_free_ char *name = NULL;
        struct oci_ref parsed = {0};
        struct oci_err e = {0};
        char digest[OCI_DIGEST_SIZE];
        struct ctx c;
        int r;

        if (!path)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL, "import needs a path");
        r = canonical(tag, &parsed, &name);
        if (r < 0)
                return r;
        oci_ref_clear(&parsed);
        if (strchr(name, '@'))
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL,
                                 "--tag takes NAME[:TAG], not a digest");
        r = ctx_open(&c, false);
        if (r < 0)
                return r;
        r = oci_import(c.cache, path, true, NULL, digest, &e);
        if (r < 0)
                r = fail(r, "import", path, &e);
        if (r >= 0)
                r = finish_local(&c, name, digest, "import");
        if (r >= 0 && ret_digest && !(*ret_digest = strdup(digest)))
                r = error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
        ctx_close(&c);
        return r;
}

int msb_image_save(const char *const *refs, size_t n, msb_archive_format format, int fd)
{
        _cleanup_free_ char **names = calloc(n + 1, sizeof(char *));
        _cleanup_free_ char **digests = calloc(n + 1, sizeof(char *));
        struct oci_err e = {0};
        struct ctx c;
        int r;

        if (!refs || n == 0 || fd < 0)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL, "save needs images and a file");
        if (format != MSB_ARCHIVE_DOCKER && format != MSB_ARCHIVE_OCI)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL, "unknown archive format");
        if (!names || !digests)
                return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
        r = ctx_open(&c, false);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n && r >= 0; i++)
                r = find_local(&c, refs[i], &names[i], &digests[i]);
        if (r >= 0) {
                /* a bare digest names no reference */
                for (size_t i = 0; i < n; i++)
                        if (oci_digest_valid(names[i])) {
                                free(names[i]);
                                names[i] = NULL;
                        }
                r = oci_archive_save(
                        c.cache, (const char *const *)names, (const char *const *)digests, n,
                        format == MSB_ARCHIVE_OCI ? OCI_ARCHIVE_OCI : OCI_ARCHIVE_DOCKER, NULL, fd,
                        &e);
                if (r < 0)
                        r = fail(r, "save", NULL, &e);
        }
        for (size_t i = 0; i < n; i++) {
                free(names[i]);
                free(digests[i]);
        }
        ctx_close(&c);
        return r;
}

int msb_image_load(int fd, char ***ret_refs, size_t *ret_n)
{
        struct oci_archive_image *imgs = NULL;
        _cleanup_(strv_freep) char **out = NULL;
        struct oci_err e = {0};
        size_t n = 0;
        struct ctx c;
        int r;

        if (fd < 0)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL, "load needs a file");
        r = ctx_open(&c, false);
        if (r < 0)
                return r;
        r = oci_archive_load(c.cache, fd, &imgs, &n, &e);
        if (r < 0)
                r = fail(r, "load", NULL, &e);
        if (r >= 0 && !(out = calloc(n + 1, sizeof(*out))))
                r = error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
        for (size_t i = 0; r >= 0 && i < n; i++) {
                r = finish_local(&c, imgs[i].ref, imgs[i].manifest_digest, "load");
                if (r >= 0 &&
                    !(out[i] = strdup(imgs[i].ref ? imgs[i].ref : imgs[i].manifest_digest)))
                        r = error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
        }
        oci_archive_images_free(imgs, n);
        ctx_close(&c);
        if (r < 0)
                return r;
        if (ret_refs)
                *ret_refs = TAKE_PTR(out);
        if (ret_n)
                *ret_n = n;
        return 0;
}

/* ---- registry credentials ---------------------------------------------- */

static int registry_name(const char *registry, char **ret)
{
        struct oci_ref parsed = {0};
        _cleanup_free_ char *probe = NULL;
        int r;

        /* validate and normalise through a reference on that registry */
        probe = registry ? strdup_printf("%s/x", registry) : NULL;
        if (!probe)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL, "no registry");
        r = oci_ref_parse(probe, &parsed);
        if (r < 0 ||
            (!strchr(registry, '.') && !strchr(registry, ':') && !streq(registry, "localhost")))
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL,
                                 "invalid registry '%s': use a host name such as docker.io, "
                                 "ghcr.io or localhost:5000",
                                 registry);
        *ret = strdup(parsed.registry);
        oci_ref_clear(&parsed);
        return *ret ? 0 : error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
}

int msb_registry_login(const char *registry, const char *username, const char *password,
                       const msb_pull_options *verify)
{
        _cleanup_free_ char *host = NULL, *home = NULL;
        int r;

        r = registry_name(registry, &host);
        if (r < 0)
                return r;
        if (!username || !*username || strchr(username, ':') || !password)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL,
                                 "login needs a user name (without ':') and a password");
        r = paths_home(&home);
        if (r < 0)
                return error_set(MSB_ERR_SYSTEM, r, "cannot find a home for msb: set MSB_HOME");
        if (verify) {
                _cleanup_(oci_registry_freep) struct oci_registry *reg = NULL;
                struct oci_ref probe = {.registry = host, .repository = ""};
                struct oci_err e = {0};

                r = oci_registry_new(&probe,
                                     &(struct oci_registry_opts){
                                             .insecure = verify->insecure,
                                             .ca_certs = verify->ca_certs,
                                             .timeout_ms = verify->timeout_ms,
                                             .username = username,
                                             .password = password,
                                             .cancel_fd = verify->cancel_fd,
                                     },
                                     &reg, &e);
                if (r >= 0)
                        r = oci_registry_ping(reg, &e);
                if (r == -EACCES)
                        return error_set(MSB_ERR_INVALID_ARGUMENT, r,
                                         "login to %s failed: wrong user name or password", host);
                if (r < 0)
                        return fail(r, "login to", host, &e);
        }
        r = oci_auth_login(home, host, username, password);
        if (r < 0)
                return error_set(MSB_ERR_SYSTEM, r, "cannot store the credentials in %s/%s: %s",
                                 home, OCI_AUTH_FILE, strerror(-r));
        return 0;
}

int msb_registry_logout(const char *registry)
{
        _cleanup_free_ char *host = NULL, *home = NULL;
        int r;

        r = registry_name(registry, &host);
        if (r < 0)
                return r;
        r = paths_home(&home);
        if (r < 0)
                return error_set(MSB_ERR_SYSTEM, r, "cannot find a home for msb: set MSB_HOME");
        r = oci_auth_logout(home, host);
        if (r == -ENOENT)
                return error_set(MSB_ERR_NOT_FOUND, r, "not logged in to %s", host);
        if (r < 0)
                return error_set(MSB_ERR_SYSTEM, r, "cannot update %s/%s: %s", home, OCI_AUTH_FILE,
                                 strerror(-r));
        return 0;
}

int msb_registry_list(char ***ret_registries, char ***ret_users, size_t *ret_n)
{
        _cleanup_free_ char *home = NULL;
        int r;

        if (!ret_registries || !ret_users || !ret_n)
                return error_set(MSB_ERR_INVALID_ARGUMENT, -EINVAL, "no place for the list");
        r = paths_home(&home);
        if (r < 0)
                return error_set(MSB_ERR_SYSTEM, r, "cannot find a home for msb: set MSB_HOME");
        r = oci_auth_list(home, ret_registries, ret_users, ret_n);
        if (r < 0)
                return error_set(MSB_ERR_SYSTEM, r, "cannot read %s/%s: %s", home, OCI_AUTH_FILE,
                                 strerror(-r));
        return 0;
}

/* ---- the built-in base image ---------------------------------------------- */

/* "<size> <mtime ns>" of the built-in tar, to notice a rebuilt one. */
static int builtin_stamp(const char *tar, char *buf, size_t size)
{
        struct stat st;

        if (stat(tar, &st) < 0)
                return negative_errno();
        snprintf(buf, size, "%lld %lld%09ld\n", (long long)st.st_size, (long long)st.st_mtim.tv_sec,
                 st.st_mtim.tv_nsec);
        return 0;
}

int images_resolve_builtin_base(char **ret_disk_path, msb_image_config **ret_config)
{
        _cleanup_free_ char *tar = NULL, *home = NULL, *stamp_path = NULL, *old = NULL;
        msb_pull_options never = {.policy = MSB_PULL_NEVER, .cancel_fd = -1};
        char stamp[64];
        int r;

        oci_limits_default(&never.limits);
        r = paths_asset(ASSET_BASE_IMAGE, &tar);
        if (r < 0)
                return error_set(MSB_ERR_HOST_MISSING, r,
                                 "the built-in base image is missing: %s (run 'make')",
                                 tar ? tar : "?");
        r = paths_home(&home);
        if (r < 0)
                return error_set(MSB_ERR_SYSTEM, r, "cannot find a home for msb: set MSB_HOME");
        stamp_path = strdup_printf("%s/cache/base.stamp", home);
        if (!stamp_path)
                return error_set(MSB_ERR_SYSTEM, -ENOMEM, "out of memory");
        r = builtin_stamp(tar, stamp, sizeof(stamp));
        if (r < 0)
                return error_set(MSB_ERR_HOST_MISSING, r, "the built-in base image %s: %s", tar,
                                 strerror(-r));
        /* The common case: imported from this very tar, and still in the
         * store. Otherwise (the tar changed, or the image was removed) import
         * it again, which is idempotent, and resolve once more. */
        if (read_file(stamp_path, 256, &old, NULL) >= 0 && streq(old, stamp)) {
                r = msb_image_resolve(BUILTIN_BASE_REF, &never, ret_disk_path, ret_config);
                if (r >= 0)
                        return r;
        }
        r = msb_image_import(tar, BUILTIN_BASE_REF, NULL);
        if (r < 0)
                return r;
        /* only an optimisation: a failure imports again next time */
        (void)write_file_replace(stamp_path, stamp, 0600);
        return msb_image_resolve(BUILTIN_BASE_REF, &never, ret_disk_path, ret_config);
}
