/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Registry credentials and challenges: WWW-Authenticate parsing, the
 * auth.json of msb registry login (mode, replace, logout, list), lookups
 * in Docker's config.json under its various keys, base64.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "e2fs.h"
#include "lib/core/util.h"
#include "lib/oci/auth.h"

static void test_challenge(void **state)
{
        struct oci_challenge c;

        assert_int_equal(oci_challenge_parse("Bearer realm=\"https://auth.docker.io/token\","
                                             "service=\"registry.docker.io\","
                                             "scope=\"repository:library/alpine:pull\"",
                                             &c),
                         0);
        assert_int_equal(c.scheme, OCI_AUTH_BEARER);
        assert_string_equal(c.realm, "https://auth.docker.io/token");
        assert_string_equal(c.service, "registry.docker.io");
        assert_string_equal(c.scope, "repository:library/alpine:pull");
        oci_challenge_clear(&c);

        assert_int_equal(oci_challenge_parse("bearer realm=\"h\\\"x\", service=s", &c), 0);
        assert_string_equal(c.realm, "h\"x");
        assert_string_equal(c.service, "s");
        assert_null(c.scope);
        oci_challenge_clear(&c);

        assert_int_equal(oci_challenge_parse("Basic realm=\"Registry Realm\"", &c), 0);
        assert_int_equal(c.scheme, OCI_AUTH_BASIC);
        oci_challenge_clear(&c);

        assert_int_equal(oci_challenge_parse("Negotiate abc", &c), -EOPNOTSUPP);
        assert_int_equal(oci_challenge_parse("Bearer service=\"x\"", &c), -EINVAL); /* no realm */
        assert_int_equal(oci_challenge_parse("Bearer realm=\"unterminated", &c), -EINVAL);
        assert_int_equal(oci_challenge_parse("Bearer realm", &c), -EINVAL);
        assert_int_equal(oci_challenge_parse("", &c), -EINVAL);
}

static void test_store(void **state)
{
        char *home = e2fs_tmpdir(), *path = strdup_printf("%s/auth.json", home);
        char **regs, **users;
        struct oci_cred c = {0};
        struct stat st;
        size_t n;

        setenv("DOCKER_CONFIG", home, 1); /* no docker config.json there */
        assert_int_equal(oci_auth_lookup(home, "localhost:5000", &c), -ENOENT);
        assert_int_equal(oci_auth_login(home, "localhost:5000", "alice", "pw:with:colons"), 0);
        assert_int_equal(oci_auth_login(home, "ghcr.io", "bob", "tok"), 0);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(oci_auth_lookup(home, "localhost:5000", &c), 0);
        assert_string_equal(c.username, "alice");
        assert_string_equal(c.password, "pw:with:colons");
        oci_cred_clear(&c);

        /* replacing keeps the others */
        assert_int_equal(oci_auth_login(home, "localhost:5000", "carol", "x"), 0);
        assert_int_equal(oci_auth_list(home, &regs, &users, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(regs[0], "ghcr.io");
        assert_string_equal(users[0], "bob");
        assert_string_equal(regs[1], "localhost:5000");
        assert_string_equal(users[1], "carol");
        for (size_t i = 0; i < n; i++) {
                free(regs[i]);
                free(users[i]);
        }
        free(regs);
        free(users);

        assert_int_equal(oci_auth_logout(home, "ghcr.io"), 0);
        assert_int_equal(oci_auth_logout(home, "ghcr.io"), -ENOENT);
        assert_int_equal(oci_auth_lookup(home, "ghcr.io", &c), -ENOENT);
        assert_int_equal(oci_auth_login(home, "x.io", "bad:name", "p"), -EINVAL);

        assert_int_equal(rm_rf(home), 0);
        free(path);
        free(home);
        unsetenv("DOCKER_CONFIG");
}

static void test_docker_config(void **state)
{
        char *home = e2fs_tmpdir(), *dir = strdup_printf("%s/docker", home);
        char *cfg = strdup_printf("%s/config.json", dir);
        struct oci_cred c = {0};

        assert_int_equal(mkdir(dir, 0700), 0);
        /* docker.io under its v1 URL; a registry as a URL with a path; a
         * credential store entry without auth (ignored) */
        assert_int_equal(write_file(cfg,
                                    "{\"auths\":{"
                                    "\"https://index.docker.io/v1/\":{\"auth\":\"aHViOnB3\"},"
                                    "\"http://reg.example:5000/v2/\":{\"auth\":\"bWU6eA==\"},"
                                    "\"quay.io\":{}},"
                                    "\"credsStore\":\"desktop\"}",
                                    0600),
                         0);
        setenv("DOCKER_CONFIG", dir, 1);
        assert_int_equal(oci_auth_lookup(home, "docker.io", &c), 0);
        assert_string_equal(c.username, "hub");
        assert_string_equal(c.password, "pw");
        oci_cred_clear(&c);
        assert_int_equal(oci_auth_lookup(home, "reg.example:5000", &c), 0);
        assert_string_equal(c.username, "me");
        oci_cred_clear(&c);
        assert_int_equal(oci_auth_lookup(home, "quay.io", &c), -ENOENT);
        /* ours wins over Docker's */
        assert_int_equal(oci_auth_login(home, "docker.io", "mine", "p"), 0);
        assert_int_equal(oci_auth_lookup(home, "docker.io", &c), 0);
        assert_string_equal(c.username, "mine");
        oci_cred_clear(&c);
        /* garbage is no credentials, not a crash */
        assert_int_equal(write_file(cfg, "{\"auths\":{\"x.io\":{\"auth\":\"%%%\"}}", 0600), 0);
        assert_int_equal(oci_auth_lookup(home, "x.io", &c), -ENOENT);
        unsetenv("DOCKER_CONFIG");
        assert_int_equal(rm_rf(home), 0);
        free(cfg);
        free(dir);
        free(home);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_challenge),
                cmocka_unit_test(test_store),
                cmocka_unit_test(test_docker_config),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
