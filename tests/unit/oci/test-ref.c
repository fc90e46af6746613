/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image references: normalisation of short names, registries with ports,
 * tags and digests, and the malformed references that must be refused.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/oci/ref.h"

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void check(const char *in, const char *registry, const char *repo, const char *tag,
                  const char *digest, const char *canonical)
{
        struct oci_ref r;
        char *s;

        assert_int_equal(oci_ref_parse(in, &r), 0);
        assert_string_equal(r.registry, registry);
        assert_string_equal(r.repository, repo);
        if (tag)
                assert_string_equal(r.tag, tag);
        else
                assert_null(r.tag);
        if (digest)
                assert_string_equal(r.digest, digest);
        else
                assert_null(r.digest);
        s = oci_ref_string(&r);
        assert_string_equal(s, canonical);
        free(s);
        oci_ref_clear(&r);
}

static void test_normalise(void **state)
{
        check("alpine", "docker.io", "library/alpine", "latest", NULL,
              "docker.io/library/alpine:latest");
        check("alpine:3.19", "docker.io", "library/alpine", "3.19", NULL,
              "docker.io/library/alpine:3.19");
        check("user/app", "docker.io", "user/app", "latest", NULL, "docker.io/user/app:latest");
        check("docker.io/alpine", "docker.io", "library/alpine", "latest", NULL,
              "docker.io/library/alpine:latest");
        check("index.docker.io/library/alpine:edge", "docker.io", "library/alpine", "edge", NULL,
              "docker.io/library/alpine:edge");
        check("ghcr.io/org/team/img:v1.2-rc_3", "ghcr.io", "org/team/img", "v1.2-rc_3", NULL,
              "ghcr.io/org/team/img:v1.2-rc_3");
        check("localhost:5000/x", "localhost:5000", "x", "latest", NULL, "localhost:5000/x:latest");
        check("localhost/x", "localhost", "x", "latest", NULL, "localhost/x:latest");
        check("127.0.0.1:41234/a/b:t", "127.0.0.1:41234", "a/b", "t", NULL,
              "127.0.0.1:41234/a/b:t");
        check("[::1]:5000/img", "[::1]:5000", "img", "latest", NULL, "[::1]:5000/img:latest");
        check("alpine@sha256:" D64, "docker.io", "library/alpine", NULL, "sha256:" D64,
              "docker.io/library/alpine@sha256:" D64);
        check("r.io/a:t@sha256:" D64, "r.io", "a", "t", "sha256:" D64, "r.io/a:t@sha256:" D64);
        check("a__b/c-d--e/f.g", "docker.io", "a__b/c-d--e/f.g", "latest", NULL,
              "docker.io/a__b/c-d--e/f.g:latest");
}

static void test_invalid(void **state)
{
        static const char *const bad[] = {
                "",
                "Alpine",
                "alpine:",
                ":tag",
                "alpine:-x",
                "a//b",
                "a/",
                "/a",
                "a_/b",
                "a___b",
                "-a",
                "a.",
                "alpine@sha256:abc",
                "alpine@md5:" D64,
                "alpine@sha256:" D64 "0",
                "alpine@sha256:"
                "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
                "bad_host.io:5000/x",
                "host:99999x/x",
                "host.io:/x",
                "[::1/x",
                "a b",
                "a\nb",
        };
        struct oci_ref r;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                if (oci_ref_parse(bad[i], &r) != -EINVAL)
                        fail_msg("accepted '%s'", bad[i]);
        }
        char long_tag[200];
        memset(long_tag, 'a', sizeof(long_tag));
        memcpy(long_tag, "img:", 4);
        long_tag[sizeof(long_tag) - 1] = '\0';
        assert_int_equal(oci_ref_parse(long_tag, &r), -EINVAL);
}

static void test_api_host(void **state)
{
        struct oci_ref r;

        assert_int_equal(oci_ref_parse("alpine", &r), 0);
        assert_string_equal(oci_ref_api_host(&r), "registry-1.docker.io");
        oci_ref_clear(&r);
        assert_int_equal(oci_ref_parse("quay.io/x/y", &r), 0);
        assert_string_equal(oci_ref_api_host(&r), "quay.io");
        oci_ref_clear(&r);

        assert_true(oci_registry_is_local("localhost:5000"));
        assert_true(oci_registry_is_local("localhost"));
        assert_true(oci_registry_is_local("127.0.0.1:8080"));
        assert_true(oci_registry_is_local("[::1]:5000"));
        assert_false(oci_registry_is_local("127.evil.example:5000"));
        assert_false(oci_registry_is_local("localhost.example.com"));
        assert_false(oci_registry_is_local("docker.io"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_normalise),
                cmocka_unit_test(test_invalid),
                cmocka_unit_test(test_api_host),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
