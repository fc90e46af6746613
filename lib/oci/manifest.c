/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: each document is parsed with the bounded JSON parser
 * into a tree, then copied field by field into plain structs, so that
 * nothing downstream holds on to the tree. Every string we keep must be a
 * JSON string without an embedded NUL; digests must be sha256; sizes must
 * be non-negative integers; counts are capped before anything is allocated.
 * A field of the wrong type is an error, an unknown field is ignored.
 */
#include "manifest.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/core/json.h"
#include "lib/core/util.h"

static int parse_json(const char *body, size_t len, size_t max, struct json_doc **ret_doc,
                      const struct json_value **ret_root, const char *what, struct oci_err *e)
{
        int r;

        if (len > max)
                return oci_err_set(e, -E2BIG, "%s is too large (%zu bytes, at most %zu)", what, len,
                                   max);
        r = json_parse(body, len, ret_doc, ret_root);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return oci_err_set(e, -EBADMSG, "%s is not valid JSON", what);
        if ((*ret_root)->type != JSON_OBJECT) {
                json_doc_free(*ret_doc);
                *ret_doc = NULL;
                return oci_err_set(e, -EBADMSG, "%s is not a JSON object", what);
        }
        return 0;
}

/* A string field: 0 with *ret NULL when absent or null, -EBADMSG when of
 * another type or holding a NUL. */
static int dup_string(const struct json_value *v, char **ret)
{
        *ret = NULL;
        if (!v || v->type == JSON_NULL)
                return 0;
        if (v->type != JSON_STRING || strlen(v->str.s) != v->str.len)
                return -EBADMSG;
        *ret = strdup(v->str.s);
        return *ret ? 0 : -ENOMEM;
}

static void strv_free(char **v, size_t n)
{
        if (!v)
                return;
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

/* An array of strings: NULL when absent or null. */
static int dup_strv(const struct json_value *v, char ***ret, size_t *ret_n)
{
        char **out;
        size_t n;

        *ret = NULL;
        *ret_n = 0;
        if (!v || v->type == JSON_NULL)
                return 0;
        if (v->type != JSON_ARRAY)
                return -EBADMSG;
        n = json_count(v);
        if (n > OCI_CONFIG_STRS)
                return -E2BIG;
        out = calloc(n + 1, sizeof(*out));
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                int r = dup_string(json_at(v, i), &out[i]);

                if (r >= 0 && !out[i])
                        r = -EBADMSG;
                if (r < 0) {
                        strv_free(out, i);
                        return r;
                }
        }
        *ret = out;
        *ret_n = n;
        return 0;
}

void oci_descriptor_clear(struct oci_descriptor *d)
{
        free(d->media_type);
        free(d->platform.os);
        free(d->platform.architecture);
        free(d->platform.variant);
        free(d->ref_name);
        *d = (struct oci_descriptor){0};
}

static int parse_descriptor(const struct json_value *v, bool platform, struct oci_descriptor *d,
                            const char *what, struct oci_err *e)
{
        const char *digest = json_string(json_get(v, "digest"), NULL);
        int64_t size = json_int(json_get(v, "size"), 0, INT64_MAX, -1);
        int r;

        *d = (struct oci_descriptor){0};
        if (!v || v->type != JSON_OBJECT)
                return oci_err_set(e, -EBADMSG, "%s is not an object", what);
        if (!digest)
                return oci_err_set(e, -EBADMSG, "%s has no digest", what);
        if (!oci_digest_valid(digest)) {
                if (!startswith(digest, "sha256:") && strchr(digest, ':'))
                        return oci_err_set(e, -EOPNOTSUPP,
                                           "%s: unsupported digest algorithm in '%.80s'", what,
                                           digest);
                return oci_err_set(e, -EBADMSG, "%s: malformed digest '%.80s'", what, digest);
        }
        if (size < 0)
                return oci_err_set(e, -EBADMSG, "%s %.19s has no valid size", what, digest);
        memcpy(d->digest, digest, OCI_DIGEST_SIZE);
        d->size = (uint64_t)size;
        r = dup_string(json_get(v, "mediaType"), &d->media_type);
        if (r >= 0) {
                const struct json_value *ann = json_get(v, "annotations");
                const struct json_value *name = json_get(ann, OCI_ANNOTATION_CONTAINERD);

                r = dup_string(name ? name : json_get(ann, OCI_ANNOTATION_REF), &d->ref_name);
        }
        if (r >= 0 && platform) {
                const struct json_value *p = json_get(v, "platform");

                r = dup_string(json_get(p, "os"), &d->platform.os);
                if (r >= 0)
                        r = dup_string(json_get(p, "architecture"), &d->platform.architecture);
                if (r >= 0)
                        r = dup_string(json_get(p, "variant"), &d->platform.variant);
        }
        if (r < 0) {
                oci_descriptor_clear(d);
                if (r == -ENOMEM)
                        return r;
                return oci_err_set(e, r, "%s %.19s has a malformed field", what, digest);
        }
        return 0;
}

static bool is_one_of(const char *s, const char *const *list)
{
        for (; *list; list++)
                if (streq(s, *list))
                        return true;
        return false;
}

int oci_doc_kind(const char *body, size_t len, const char *content_type, enum oci_doc_kind *ret,
                 struct oci_err *e)
{
        static const char *const manifests[] = {OCI_MT_OCI_MANIFEST, OCI_MT_DOCKER_MANIFEST, NULL};
        static const char *const indexes[] = {OCI_MT_OCI_INDEX, OCI_MT_DOCKER_LIST, NULL};
        _cleanup_(json_doc_freep) struct json_doc *doc = NULL;
        const struct json_value *root;
        const char *mt;
        int r;

        r = parse_json(body, len, OCI_MANIFEST_MAX, &doc, &root, "the manifest", e);
        if (r < 0)
                return r;
        mt = json_string(json_get(root, "mediaType"), NULL);
        if (!mt && content_type && !startswith(content_type, "application/json"))
                mt = content_type;
        if (mt) {
                if (is_one_of(mt, manifests)) {
                        *ret = OCI_DOC_MANIFEST;
                        return 0;
                }
                if (is_one_of(mt, indexes)) {
                        *ret = OCI_DOC_INDEX;
                        return 0;
                }
                if (startswith(mt, "application/vnd.docker.distribution.manifest.v1"))
                        return oci_err_set(e, -EBADMSG,
                                           "schema 1 manifests are not supported (%.100s)", mt);
                return oci_err_set(e, -EBADMSG, "not an image manifest (media type %.100s)", mt);
        }
        if (json_int(json_get(root, "schemaVersion"), 0, 100, 0) == 1)
                return oci_err_set(e, -EBADMSG, "schema 1 manifests are not supported");
        if (json_get(root, "manifests")) {
                *ret = OCI_DOC_INDEX;
                return 0;
        }
        if (json_get(root, "layers") && json_get(root, "config")) {
                *ret = OCI_DOC_MANIFEST;
                return 0;
        }
        return oci_err_set(e, -EBADMSG, "neither an image manifest nor an index");
}

void oci_manifest_free(struct oci_manifest *m)
{
        if (!m)
                return;
        free(m->media_type);
        oci_descriptor_clear(&m->config);
        for (size_t i = 0; i < m->n_layers; i++)
                oci_descriptor_clear(&m->layers[i]);
        free(m->layers);
        free(m);
}

int oci_layer_compression(const char *media_type, enum oci_compression *ret)
{
        static const struct {
                const char *mt;
                enum oci_compression c;
        } known[] = {
                {OCI_MT_OCI_LAYER, OCI_COMPRESSION_NONE},
                {OCI_MT_OCI_LAYER_GZIP, OCI_COMPRESSION_GZIP},
                {OCI_MT_OCI_LAYER_ZSTD, OCI_COMPRESSION_ZSTD},
                {OCI_MT_DOCKER_LAYER, OCI_COMPRESSION_GZIP},
                {"application/vnd.oci.image.layer.nondistributable.v1.tar", OCI_COMPRESSION_NONE},
                {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                 OCI_COMPRESSION_GZIP},
                {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
                 OCI_COMPRESSION_ZSTD},
                {"application/vnd.docker.image.rootfs.diff.tar", OCI_COMPRESSION_NONE},
        };

        for (size_t i = 0; i < ARRAY_SIZE(known); i++) {
                if (streq(media_type, known[i].mt)) {
                        *ret = known[i].c;
                        return 0;
                }
        }
        return -EOPNOTSUPP;
}

int oci_manifest_parse(const char *body, size_t len, struct oci_manifest **ret, struct oci_err *e)
{
        static const char *const configs[] = {OCI_MT_OCI_CONFIG, OCI_MT_DOCKER_CONFIG, NULL};
        _cleanup_(json_doc_freep) struct json_doc *doc = NULL;
        _cleanup_(oci_manifest_freep) struct oci_manifest *m = NULL;
        const struct json_value *root, *layers;
        enum oci_compression c;
        int r;

        r = parse_json(body, len, OCI_MANIFEST_MAX, &doc, &root, "the manifest", e);
        if (r < 0)
                return r;
        if (json_int(json_get(root, "schemaVersion"), 0, 100, -1) != 2)
                return oci_err_set(e, -EBADMSG, "the manifest is not schema version 2");
        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        r = dup_string(json_get(root, "mediaType"), &m->media_type);
        if (r < 0)
                return r == -ENOMEM ? r
                                    : oci_err_set(e, r, "the manifest's mediaType is malformed");
        r = parse_descriptor(json_get(root, "config"), false, &m->config, "the config", e);
        if (r < 0)
                return r;
        if (m->config.media_type && !is_one_of(m->config.media_type, configs))
                return oci_err_set(e, -EBADMSG, "not a container image: config media type %.100s",
                                   m->config.media_type);
        if (m->config.size > OCI_CONFIG_MAX)
                return oci_err_set(e, -E2BIG, "the image config is too large (%llu bytes)",
                                   (unsigned long long)m->config.size);
        layers = json_get(root, "layers");
        if (!layers || layers->type != JSON_ARRAY)
                return oci_err_set(e, -EBADMSG, "the manifest has no layers array");
        if (json_count(layers) > OCI_LAYERS_MAX)
                return oci_err_set(e, -E2BIG, "the image has %zu layers, at most %d are allowed",
                                   json_count(layers), OCI_LAYERS_MAX);
        m->layers = calloc(json_count(layers) + 1, sizeof(*m->layers));
        if (!m->layers)
                return -ENOMEM;
        for (size_t i = 0; i < json_count(layers); i++) {
                char what[48];

                snprintf(what, sizeof(what), "layer %zu", i + 1);
                r = parse_descriptor(json_at(layers, i), false, &m->layers[i], what, e);
                if (r < 0)
                        return r;
                m->n_layers++;
                if (!m->layers[i].media_type)
                        return oci_err_set(e, -EBADMSG, "layer %zu has no media type", i + 1);
                if (oci_layer_compression(m->layers[i].media_type, &c) < 0)
                        return oci_err_set(e, -EOPNOTSUPP,
                                           "layer %zu has unsupported media type %.100s", i + 1,
                                           m->layers[i].media_type);
        }
        *ret = TAKE_PTR(m);
        return 0;
}

void oci_index_free(struct oci_index *idx)
{
        if (!idx)
                return;
        free(idx->media_type);
        for (size_t i = 0; i < idx->n_manifests; i++)
                oci_descriptor_clear(&idx->manifests[i]);
        free(idx->manifests);
        free(idx);
}

int oci_index_parse(const char *body, size_t len, struct oci_index **ret, struct oci_err *e)
{
        _cleanup_(json_doc_freep) struct json_doc *doc = NULL;
        _cleanup_(oci_index_freep) struct oci_index *idx = NULL;
        const struct json_value *root, *list;
        int r;

        r = parse_json(body, len, OCI_MANIFEST_MAX, &doc, &root, "the index", e);
        if (r < 0)
                return r;
        if (json_int(json_get(root, "schemaVersion"), 0, 100, -1) != 2)
                return oci_err_set(e, -EBADMSG, "the index is not schema version 2");
        idx = calloc(1, sizeof(*idx));
        if (!idx)
                return -ENOMEM;
        r = dup_string(json_get(root, "mediaType"), &idx->media_type);
        if (r < 0)
                return r == -ENOMEM ? r : oci_err_set(e, r, "the index's mediaType is malformed");
        list = json_get(root, "manifests");
        if (!list || list->type != JSON_ARRAY)
                return oci_err_set(e, -EBADMSG, "the index has no manifests array");
        if (json_count(list) > OCI_INDEX_MAX)
                return oci_err_set(e, -E2BIG, "the index lists %zu manifests, at most %d",
                                   json_count(list), OCI_INDEX_MAX);
        idx->manifests = calloc(json_count(list) + 1, sizeof(*idx->manifests));
        if (!idx->manifests)
                return -ENOMEM;
        for (size_t i = 0; i < json_count(list); i++) {
                char what[48];

                snprintf(what, sizeof(what), "index entry %zu", i + 1);
                r = parse_descriptor(json_at(list, i), true, &idx->manifests[i], what, e);
                if (r < 0)
                        return r;
                idx->n_manifests++;
        }
        *ret = TAKE_PTR(idx);
        return 0;
}

const struct oci_descriptor *oci_index_select(const struct oci_index *idx, const char *os,
                                              const char *architecture, const char *variant)
{
        for (size_t i = 0; i < idx->n_manifests; i++) {
                const struct oci_descriptor *d = &idx->manifests[i];

                if (d->media_type && !streq(d->media_type, OCI_MT_OCI_MANIFEST) &&
                    !streq(d->media_type, OCI_MT_DOCKER_MANIFEST))
                        continue;
                if (!streq_ptr(d->platform.os, os) ||
                    !streq_ptr(d->platform.architecture, architecture))
                        continue;
                if (variant && d->platform.variant && !streq(variant, d->platform.variant))
                        continue;
                return d;
        }
        return NULL;
}

char *oci_index_platforms(const struct oci_index *idx)
{
        char *out = NULL;

        for (size_t i = 0; i < idx->n_manifests && (!out || strlen(out) < 400); i++) {
                const struct oci_platform *p = &idx->manifests[i].platform;
                char *next =
                        strdup_printf("%s%s%s/%s%s%s", out ? out : "", out ? ", " : "",
                                      p->os ? p->os : "?", p->architecture ? p->architecture : "?",
                                      p->variant ? "/" : "", p->variant ? p->variant : "");

                free(out);
                if (!next)
                        return NULL;
                out = next;
        }
        return out ? out : strdup("none");
}

void oci_image_config_free(struct oci_image_config *c)
{
        if (!c)
                return;
        free(c->architecture);
        free(c->os);
        free(c->variant);
        free(c->created);
        strv_free(c->env, c->n_env);
        strv_free(c->entrypoint, c->n_entrypoint);
        strv_free(c->cmd, c->n_cmd);
        free(c->working_dir);
        free(c->user);
        free(c->stop_signal);
        strv_free(c->diff_ids, c->n_diff_ids);
        free(c);
}

int oci_config_parse(const char *body, size_t len, struct oci_image_config **ret, struct oci_err *e)
{
        _cleanup_(json_doc_freep) struct json_doc *doc = NULL;
        _cleanup_(oci_image_config_freep) struct oci_image_config *c = NULL;
        const struct json_value *root, *cfg, *rootfs;
        int r;

        r = parse_json(body, len, OCI_CONFIG_MAX, &doc, &root, "the image config", e);
        if (r < 0)
                return r;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        cfg = json_get(root, "config");
        if (cfg && cfg->type != JSON_OBJECT && cfg->type != JSON_NULL)
                return oci_err_set(e, -EBADMSG, "the image config's \"config\" is not an object");
        rootfs = json_get(root, "rootfs");
        r = dup_string(json_get(root, "architecture"), &c->architecture);
        if (r >= 0)
                r = dup_string(json_get(root, "os"), &c->os);
        if (r >= 0)
                r = dup_string(json_get(root, "variant"), &c->variant);
        if (r >= 0)
                r = dup_string(json_get(root, "created"), &c->created);
        if (r >= 0)
                r = dup_strv(json_get(cfg, "Env"), &c->env, &c->n_env);
        if (r >= 0)
                r = dup_strv(json_get(cfg, "Entrypoint"), &c->entrypoint, &c->n_entrypoint);
        if (r >= 0)
                r = dup_strv(json_get(cfg, "Cmd"), &c->cmd, &c->n_cmd);
        if (r >= 0)
                r = dup_string(json_get(cfg, "WorkingDir"), &c->working_dir);
        if (r >= 0)
                r = dup_string(json_get(cfg, "User"), &c->user);
        if (r >= 0)
                r = dup_string(json_get(cfg, "StopSignal"), &c->stop_signal);
        if (r >= 0)
                r = dup_strv(json_get(rootfs, "diff_ids"), &c->diff_ids, &c->n_diff_ids);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return oci_err_set(e, r, "the image config has a malformed field");
        if (c->n_diff_ids > OCI_LAYERS_MAX)
                return oci_err_set(e, -E2BIG, "the image config lists too many layers");
        for (size_t i = 0; i < c->n_diff_ids; i++)
                if (!oci_digest_valid(c->diff_ids[i]))
                        return oci_err_set(e, -EBADMSG, "the image config has a malformed diff_id");
        for (size_t i = 0; i < c->n_env; i++)
                if (!strchr(c->env[i], '=') || c->env[i][0] == '=')
                        return oci_err_set(e, -EBADMSG,
                                           "the image config has a malformed Env entry");
        *ret = TAKE_PTR(c);
        return 0;
}

static void put_descriptor(struct json_writer *w, const struct oci_descriptor *d)
{
        json_begin_object(w);
        json_kv_string(w, "mediaType", d->media_type);
        json_kv_string(w, "digest", d->digest);
        json_kv_uint(w, "size", d->size);
        json_end_object(w);
}

char *oci_manifest_to_json(const struct oci_manifest *m)
{
        struct json_writer w;

        json_writer_init(&w);
        json_begin_object(&w);
        json_kv_int(&w, "schemaVersion", 2);
        json_kv_string(&w, "mediaType", m->media_type ? m->media_type : OCI_MT_OCI_MANIFEST);
        json_key(&w, "config");
        put_descriptor(&w, &m->config);
        json_key(&w, "layers");
        json_begin_array(&w);
        for (size_t i = 0; i < m->n_layers; i++)
                put_descriptor(&w, &m->layers[i]);
        json_end_array(&w);
        json_end_object(&w);
        return json_writer_steal(&w);
}

char *oci_config_new_json(const char *diff_id, const char *created)
{
        struct json_writer w;

        json_writer_init(&w);
        json_begin_object(&w);
        json_kv_string(&w, "architecture", "amd64");
        json_kv_string(&w, "os", "linux");
        json_kv_string(&w, "created", created);
        json_key(&w, "config");
        json_begin_object(&w);
        json_end_object(&w);
        json_key(&w, "rootfs");
        json_begin_object(&w);
        json_kv_string(&w, "type", "layers");
        json_key(&w, "diff_ids");
        json_begin_array(&w);
        json_put_string(&w, diff_id);
        json_end_array(&w);
        json_end_object(&w);
        json_end_object(&w);
        return json_writer_steal(&w);
}
