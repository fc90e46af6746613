/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Manifests, indexes and image configs: the Docker v2 and OCI forms we
 * must read, platform selection, and documents that must be refused.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/oci/manifest.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"

static const char docker_manifest[] =
        "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_DOCKER_MANIFEST "\","
        "\"config\":{\"mediaType\":\"" OCI_MT_DOCKER_CONFIG "\",\"size\":1469,\"digest\":\"" D1
        "\"},"
        "\"layers\":[{\"mediaType\":\"" OCI_MT_DOCKER_LAYER "\",\"size\":2818413,\"digest\":\"" D2
        "\"},{\"mediaType\":\"" OCI_MT_OCI_LAYER_ZSTD "\",\"size\":10,\"digest\":\"" D3 "\"}]}";

static const char oci_index[] =
        "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_OCI_INDEX "\",\"manifests\":["
        "{\"mediaType\":\"" OCI_MT_OCI_MANIFEST "\",\"digest\":\"" D1 "\",\"size\":7,"
        "\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}},"
        "{\"mediaType\":\"" OCI_MT_OCI_MANIFEST "\",\"digest\":\"" D3 "\",\"size\":9,"
        "\"platform\":{\"architecture\":\"unknown\",\"os\":\"unknown\"}},"
        "{\"mediaType\":\"" OCI_MT_OCI_MANIFEST "\",\"digest\":\"" D2 "\",\"size\":8,"
        "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"},"
        "\"annotations\":{\"org.opencontainers.image.ref.name\":\"v1\"}}]}";

static void test_manifest(void **state)
{
        struct oci_manifest *m = NULL;
        enum oci_doc_kind kind;
        enum oci_compression c;
        struct oci_err e = {0};
        char *json;

        assert_int_equal(oci_doc_kind(docker_manifest, strlen(docker_manifest), NULL, &kind, &e),
                         0);
        assert_int_equal(kind, OCI_DOC_MANIFEST);
        assert_int_equal(oci_manifest_parse(docker_manifest, strlen(docker_manifest), &m, &e), 0);
        assert_string_equal(m->config.digest, D1);
        assert_int_equal(m->config.size, 1469);
        assert_int_equal(m->n_layers, 2);
        assert_string_equal(m->layers[0].digest, D2);
        assert_int_equal(m->layers[0].size, 2818413);
        assert_int_equal(oci_layer_compression(m->layers[0].media_type, &c), 0);
        assert_int_equal(c, OCI_COMPRESSION_GZIP);
        assert_int_equal(oci_layer_compression(m->layers[1].media_type, &c), 0);
        assert_int_equal(c, OCI_COMPRESSION_ZSTD);

        /* written back and read again: the same descriptors */
        json = oci_manifest_to_json(m);
        assert_non_null(json);
        oci_manifest_free(m);
        assert_int_equal(oci_manifest_parse(json, strlen(json), &m, &e), 0);
        assert_int_equal(m->n_layers, 2);
        assert_string_equal(m->layers[1].digest, D3);
        free(json);
        oci_manifest_free(m);
}

static void test_index(void **state)
{
        struct oci_index *idx = NULL;
        const struct oci_descriptor *d;
        enum oci_doc_kind kind;
        struct oci_err e = {0};
        char *p;

        assert_int_equal(oci_doc_kind(oci_index, strlen(oci_index), NULL, &kind, &e), 0);
        assert_int_equal(kind, OCI_DOC_INDEX);
        assert_int_equal(oci_index_parse(oci_index, strlen(oci_index), &idx, &e), 0);
        assert_int_equal(idx->n_manifests, 3);
        d = oci_index_select(idx, "linux", "amd64", NULL);
        assert_non_null(d);
        assert_string_equal(d->digest, D2);
        assert_string_equal(d->ref_name, "v1");
        d = oci_index_select(idx, "linux", "arm64", "v8");
        assert_non_null(d);
        assert_string_equal(d->digest, D1);
        assert_null(oci_index_select(idx, "linux", "arm64", "v7"));
        assert_null(oci_index_select(idx, "linux", "s390x", NULL));
        p = oci_index_platforms(idx);
        assert_string_equal(p, "linux/arm64/v8, unknown/unknown, linux/amd64");
        free(p);
        oci_index_free(idx);
}

static void test_kind_by_shape(void **state)
{
        static const char list[] = "{\"schemaVersion\":2,\"manifests\":[]}";
        static const char man[] = "{\"schemaVersion\":2,\"config\":{},\"layers\":[]}";
        static const char v1[] = "{\"schemaVersion\":1,\"fsLayers\":[]}";
        static const char art[] = "{\"schemaVersion\":2,\"mediaType\":\"application/x-helm\"}";
        enum oci_doc_kind kind;
        struct oci_err e = {0};

        assert_int_equal(oci_doc_kind(list, strlen(list), NULL, &kind, &e), 0);
        assert_int_equal(kind, OCI_DOC_INDEX);
        assert_int_equal(oci_doc_kind(man, strlen(man), NULL, &kind, &e), 0);
        assert_int_equal(kind, OCI_DOC_MANIFEST);
        assert_int_equal(oci_doc_kind(man, strlen(man), OCI_MT_DOCKER_LIST, &kind, &e), 0);
        assert_int_equal(kind, OCI_DOC_INDEX);
        assert_int_equal(oci_doc_kind(v1, strlen(v1), NULL, &kind, &e), -EBADMSG);
        assert_non_null(strstr(e.msg, "schema 1"));
        assert_int_equal(oci_doc_kind(art, strlen(art), NULL, &kind, &e), -EBADMSG);
        assert_int_equal(oci_doc_kind("[1]", 3, NULL, &kind, &e), -EBADMSG);
        assert_int_equal(oci_doc_kind("{", 1, NULL, &kind, &e), -EBADMSG);
}

static void test_bad_manifests(void **state)
{
        static const char *const bad[] = {
                /* no schema version */
                "{\"config\":{\"digest\":\"" D1 "\",\"size\":1},\"layers\":[]}",
                /* malformed digest */
                "{\"schemaVersion\":2,\"config\":{\"digest\":\"sha256:12\",\"size\":1},"
                "\"layers\":[]}",
                /* negative size */
                "{\"schemaVersion\":2,\"config\":{\"digest\":\"" D1 "\",\"size\":-1},"
                "\"layers\":[]}",
                /* layers not an array */
                "{\"schemaVersion\":2,\"config\":{\"digest\":\"" D1 "\",\"size\":1},"
                "\"layers\":{}}",
                /* a layer of an unknown media type */
                "{\"schemaVersion\":2,\"config\":{\"digest\":\"" D1 "\",\"size\":1},"
                "\"layers\":[{\"mediaType\":\"application/x-foo\",\"digest\":\"" D2
                "\",\"size\":1}]}",
                /* a Windows foreign layer */
                "{\"schemaVersion\":2,\"config\":{\"digest\":\"" D1 "\",\"size\":1},"
                "\"layers\":[{\"mediaType\":"
                "\"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip\",\"digest\":\"" D2
                "\",\"size\":1}]}",
                /* an artifact's config */
                "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/x-art\","
                "\"digest\":\"" D1 "\",\"size\":1},\"layers\":[]}",
                /* a string with a NUL */
                "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a\\u0000b\",\"digest\":\"" D1
                "\",\"size\":1},\"layers\":[]}",
                /* sha512 */
                "{\"schemaVersion\":2,\"config\":{\"digest\":\"sha512:abcd\",\"size\":1},"
                "\"layers\":[]}",
        };
        struct oci_manifest *m;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                struct oci_err e = {0};
                int r = oci_manifest_parse(bad[i], strlen(bad[i]), &m, &e);

                if (r >= 0)
                        fail_msg("accepted manifest %zu", i);
                assert_true(e.msg[0] != '\0');
        }
}

static void test_too_many_layers(void **state)
{
        size_t cap = 100 + (OCI_LAYERS_MAX + 1) * 200;
        char *s = malloc(cap), *p = s;
        struct oci_manifest *m;
        struct oci_err e = {0};

        p += sprintf(p, "{\"schemaVersion\":2,\"config\":{\"digest\":\"" D1 "\",\"size\":1},"
                        "\"layers\":[");
        for (int i = 0; i <= OCI_LAYERS_MAX; i++)
                p += sprintf(p,
                             "%s{\"mediaType\":\"" OCI_MT_OCI_LAYER "\",\"digest\":\"" D2
                             "\",\"size\":1}",
                             i ? "," : "");
        strcpy(p, "]}");
        assert_int_equal(oci_manifest_parse(s, strlen(s), &m, &e), -E2BIG);
        free(s);
}

static void test_config(void **state)
{
        static const char cfg[] =
                "{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"2024-01-02T03:04:05Z\","
                "\"config\":{\"Env\":[\"PATH=/usr/bin\",\"A=b=c\"],\"Entrypoint\":[\"/ep\",\"x\"],"
                "\"Cmd\":[\"run\"],\"WorkingDir\":\"/srv\",\"User\":\"1000:1000\","
                "\"StopSignal\":\"SIGTERM\",\"Labels\":{\"a\":\"b\"}},"
                "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D1 "\",\"" D2 "\"]},"
                "\"history\":[{}]}";
        static const char minimal[] = "{\"architecture\":\"amd64\",\"os\":\"linux\"}";
        struct oci_image_config *c;
        struct oci_err e = {0};
        char *json;

        assert_int_equal(oci_config_parse(cfg, strlen(cfg), &c, &e), 0);
        assert_string_equal(c->architecture, "amd64");
        assert_string_equal(c->os, "linux");
        assert_int_equal(c->n_env, 2);
        assert_string_equal(c->env[1], "A=b=c");
        assert_int_equal(c->n_entrypoint, 2);
        assert_string_equal(c->entrypoint[0], "/ep");
        assert_int_equal(c->n_cmd, 1);
        assert_string_equal(c->cmd[0], "run");
        assert_string_equal(c->working_dir, "/srv");
        assert_string_equal(c->user, "1000:1000");
        assert_string_equal(c->stop_signal, "SIGTERM");
        assert_int_equal(c->n_diff_ids, 2);
        assert_string_equal(c->diff_ids[1], D2);
        oci_image_config_free(c);

        assert_int_equal(oci_config_parse(minimal, strlen(minimal), &c, &e), 0);
        assert_null(c->env);
        assert_null(c->cmd);
        assert_null(c->entrypoint);
        assert_null(c->working_dir);
        oci_image_config_free(c);

        json = oci_config_new_json(D3, "2024-05-06T07:08:09Z");
        assert_int_equal(oci_config_parse(json, strlen(json), &c, &e), 0);
        assert_int_equal(c->n_diff_ids, 1);
        assert_string_equal(c->diff_ids[0], D3);
        assert_string_equal(c->created, "2024-05-06T07:08:09Z");
        oci_image_config_free(c);
        free(json);
}

static void test_bad_configs(void **state)
{
        static const char *const bad[] = {
                "{\"config\":{\"Env\":\"PATH=/x\"}}",
                "{\"config\":{\"Env\":[\"NOEQUALS\"]}}",
                "{\"config\":{\"Env\":[\"=x\"]}}",
                "{\"config\":{\"Cmd\":[1]}}",
                "{\"config\":{\"User\":7}}",
                "{\"config\":[]}",
                "{\"rootfs\":{\"diff_ids\":[\"sha256:zz\"]}}",
                "{\"config\":{\"WorkingDir\":\"/a\\u0000b\"}}",
                "[]",
        };
        struct oci_image_config *c;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                struct oci_err e = {0};

                if (oci_config_parse(bad[i], strlen(bad[i]), &c, &e) >= 0)
                        fail_msg("accepted config %zu", i);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_manifest),        cmocka_unit_test(test_index),
                cmocka_unit_test(test_kind_by_shape),   cmocka_unit_test(test_bad_manifests),
                cmocka_unit_test(test_too_many_layers), cmocka_unit_test(test_config),
                cmocka_unit_test(test_bad_configs),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
