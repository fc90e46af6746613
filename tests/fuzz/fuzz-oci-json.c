/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for what registries and archives send us as text: image
 * manifests, indexes and configs, the cached layer descriptions, and
 * WWW-Authenticate challenges. Every parser runs on every input; what one
 * accepts must hold its invariants:
 *  - digests are well formed, counts within their caps;
 *  - a manifest written back by oci_manifest_to_json() parses again to the
 *    same descriptors;
 *  - a layer description serialised again parses to the same paths;
 *  - platform selection returns an entry of the index or NULL.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/oci/auth.h"
#include "lib/oci/layer.h"
#include "lib/oci/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_manifest(const char *text, size_t len)
{
        struct oci_manifest *m = NULL, *again = NULL;
        struct oci_err e = {0};
        char *json;

        if (oci_manifest_parse(text, len, &m, &e) < 0)
                return;
        assert(m->n_layers <= OCI_LAYERS_MAX);
        assert(oci_digest_valid(m->config.digest));
        json = oci_manifest_to_json(m);
        if (json) {
                int r = oci_manifest_parse(json, strlen(json), &again, &e);

                assert(r == 0);
                assert(again->n_layers == m->n_layers);
                assert(strcmp(again->config.digest, m->config.digest) == 0);
                for (size_t i = 0; i < m->n_layers; i++) {
                        assert(strcmp(again->layers[i].digest, m->layers[i].digest) == 0);
                        assert(again->layers[i].size == m->layers[i].size);
                }
                oci_manifest_free(again);
                free(json);
        }
        oci_manifest_free(m);
}

static void check_index(const char *text, size_t len)
{
        struct oci_index *idx = NULL;
        const struct oci_descriptor *d;
        struct oci_err e = {0};
        char *p;

        if (oci_index_parse(text, len, &idx, &e) < 0)
                return;
        assert(idx->n_manifests <= OCI_INDEX_MAX);
        d = oci_index_select(idx, "linux", "amd64", NULL);
        assert(!d || (d >= idx->manifests && d < idx->manifests + idx->n_manifests));
        p = oci_index_platforms(idx);
        free(p);
        oci_index_free(idx);
}

static void check_config(const char *text, size_t len)
{
        struct oci_image_config *c = NULL;
        struct oci_err e = {0};

        if (oci_config_parse(text, len, &c, &e) < 0)
                return;
        for (size_t i = 0; i < c->n_env; i++)
                assert(strchr(c->env[i], '=') && c->env[i][0] != '=');
        for (size_t i = 0; i < c->n_diff_ids; i++)
                assert(oci_digest_valid(c->diff_ids[i]));
        oci_image_config_free(c);
}

static void check_meta(const char *text, size_t len)
{
        struct oci_layer_meta *m = NULL, *again = NULL;
        char *ser;
        size_t ser_len;

        if (oci_layer_meta_parse(text, len, &m) < 0)
                return;
        assert(oci_digest_valid(m->diff_id));
        if (oci_layer_meta_serialize(m, &ser, &ser_len) == 0) {
                assert(oci_layer_meta_parse(ser, ser_len, &again) == 0);
                assert(again->n_whiteouts == m->n_whiteouts);
                assert(again->n_opaques == m->n_opaques);
                for (size_t i = 0; i < m->n_whiteouts; i++)
                        assert(strcmp(again->whiteouts[i], m->whiteouts[i]) == 0);
                oci_layer_meta_free(again);
                free(ser);
        }
        oci_layer_meta_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *text = malloc(size + 1);
        struct oci_challenge ch;
        enum oci_doc_kind kind;
        struct oci_err e = {0};

        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = '\0';
        (void)oci_doc_kind(text, size, NULL, &kind, &e);
        check_manifest(text, size);
        check_index(text, size);
        check_config(text, size);
        check_meta(text, size);
        if (oci_challenge_parse(text, &ch) == 0) {
                assert(ch.scheme == OCI_AUTH_BASIC || ch.realm);
                oci_challenge_clear(&ch);
        }
        free(text);
        return 0;
}
