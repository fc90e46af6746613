/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Registry credentials and challenges: WWW-Authenticate parsing, the
 * auth.json of msb registry login (mode, replace, logout, list), lookups
 * in Docker's config.json under its various keys, and its credential
 * helpers (a shell script plays one: answers, "not found", identity
 * tokens, garbage, a flood, failure, a hang, a missing program).
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
#include "lib/oci/credhelper.h"

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
        char note[320];
        struct stat st;
        size_t n;

        setenv("DOCKER_CONFIG", home, 1); /* no docker config.json there */
        assert_int_equal(oci_auth_lookup(home, "localhost:5000", &c, note, sizeof(note)), -ENOENT);
        assert_int_equal(oci_auth_login(home, "localhost:5000", "alice", "pw:with:colons"), 0);
        assert_int_equal(oci_auth_login(home, "ghcr.io", "bob", "tok"), 0);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(oci_auth_lookup(home, "localhost:5000", &c, note, sizeof(note)), 0);
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
        assert_int_equal(oci_auth_lookup(home, "ghcr.io", &c, note, sizeof(note)), -ENOENT);
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
        char note[320];

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
        assert_int_equal(oci_auth_lookup(home, "docker.io", &c, note, sizeof(note)), 0);
        assert_string_equal(c.username, "hub");
        assert_string_equal(c.password, "pw");
        oci_cred_clear(&c);
        assert_int_equal(oci_auth_lookup(home, "reg.example:5000", &c, note, sizeof(note)), 0);
        assert_string_equal(c.username, "me");
        oci_cred_clear(&c);
        assert_int_equal(oci_auth_lookup(home, "quay.io", &c, note, sizeof(note)), -ENOENT);
        /* ours wins over Docker's */
        assert_int_equal(oci_auth_login(home, "docker.io", "mine", "p"), 0);
        assert_int_equal(oci_auth_lookup(home, "docker.io", &c, note, sizeof(note)), 0);
        assert_string_equal(c.username, "mine");
        oci_cred_clear(&c);
        /* garbage is no credentials, not a crash */
        assert_int_equal(write_file(cfg, "{\"auths\":{\"x.io\":{\"auth\":\"%%%\"}}", 0600), 0);
        assert_int_equal(oci_auth_lookup(home, "x.io", &c, note, sizeof(note)), -ENOENT);
        unsetenv("DOCKER_CONFIG");
        assert_int_equal(rm_rf(home), 0);
        free(cfg);
        free(dir);
        free(home);
}

/* A credential helper as a shell script: what it is asked for goes to
 * $home/asked, its answers depend on the server. */
static const char helper_script[] =
        "#!/bin/sh\n"
        "read -r server\n"
        "echo \"$server\" >>\"$MSB_TEST_ASKED\"\n"
        "case \"$server\" in\n"
        "localhost:5000) printf "
        "'{\"ServerURL\":\"%s\",\"Username\":\"alice\",\"Secret\":\"s3cret\"}' "
        "\"$server\" ;;\n"
        "https://index.docker.io/v1/) printf '{\"Username\":\"hub\",\"Secret\":\"pw\"}' ;;\n"
        "token.example) printf '{\"Username\":\"<token>\",\"Secret\":\"refresh\"}' ;;\n"
        "garbage.example) echo 'this is not json' ;;\n"
        "huge.example) head -c 100000 /dev/zero ;;\n"
        "broken.example) echo 'keychain locked'; exit 3 ;;\n"
        "hang.example) exec sleep 30 ;;\n"
        "closed.example) exec >&-; exec sleep 30 ;;\n"
        "*) echo 'credentials not found in native keychain'; exit 1 ;;\n"
        "esac\n";

/* Installs helper_script as docker-credential-msbtest in home/bin, first
 * on PATH. Returns the file its questions go to (to free). */
static char *install_helper(const char *home)
{
        static char *system_path;
        char *bin = strdup_printf("%s/bin", home);
        char *helper = strdup_printf("%s/docker-credential-msbtest", bin);
        char *asked = strdup_printf("%s/asked", home), *path;

        if (!system_path)
                system_path = strdup(getenv("PATH"));
        path = strdup_printf("%s:%s", bin, system_path);
        assert_int_equal(mkdir(bin, 0700), 0);
        assert_int_equal(write_file(helper, helper_script, 0700), 0);
        setenv("PATH", path, 1);
        setenv("MSB_TEST_ASKED", asked, 1);
        free(path);
        free(helper);
        free(bin);
        return asked;
}

static void test_credential_helper(void **state)
{
        static const struct {
                const char *server;
                int ret;
                const char *user, *why;
        } cases[] = {
                {"localhost:5000", 0, "alice", ""},
                {"https://index.docker.io/v1/", 0, "hub", ""},
                {"nothing.example", -ENOENT, NULL, ""},
                {"token.example", -ENOENT, NULL, ""},
                {"garbage.example", -EBADMSG, NULL, "not its JSON"},
                {"huge.example", -EBADMSG, NULL, "reading its answer"},
                {"broken.example", -EIO, NULL, "failed: keychain locked"},
                {"hang.example", -ETIMEDOUT, NULL, "no answer within 0.3 s"},
                {"closed.example", -ETIMEDOUT, NULL, "no answer within 0.3 s"},
        };
        char *home = e2fs_tmpdir(), *asked = install_helper(home), *text = NULL;
        struct oci_cred c = {0};
        char why[256];

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                int r = oci_credhelper_get("msbtest", cases[i].server, 300, &c, why, sizeof(why));

                if (r != cases[i].ret)
                        fail_msg("%s: %d (%s), want %d", cases[i].server, r, why, cases[i].ret);
                if (cases[i].user)
                        assert_string_equal(c.username, cases[i].user);
                assert_non_null(strstr(why, cases[i].why));
                oci_cred_clear(&c);
        }
        assert_int_equal(read_file(asked, 4096, &text, NULL), 0);
        assert_non_null(strstr(text, "localhost:5000\nhttps://index.docker.io/v1/\n"));
        free(text);
        assert_int_equal(oci_credhelper_get("missing", "x", 300, &c, why, sizeof(why)), -ENOPKG);
        assert_string_equal(why, "docker-credential-missing: not found on PATH");
        assert_int_equal(oci_credhelper_get("../msbtest", "x", 300, &c, why, sizeof(why)), -EINVAL);
        assert_int_equal(oci_credhelper_get("", "x", 300, &c, why, sizeof(why)), -EINVAL);
        assert_int_equal(rm_rf(home), 0);
        free(asked);
        free(home);
}

static void test_docker_config_helpers(void **state)
{
        char *home = e2fs_tmpdir(), *dir = strdup_printf("%s/docker", home);
        char *cfg = strdup_printf("%s/config.json", dir), *asked = install_helper(home);
        struct oci_cred c = {0};
        char note[320];

        assert_int_equal(mkdir(dir, 0700), 0);
        setenv("DOCKER_CONFIG", dir, 1);
        /* credsStore for everyone; what it does not know, the inline entry */
        assert_int_equal(write_file(cfg,
                                    "{\"credsStore\":\"msbtest\",\"auths\":{"
                                    "\"localhost:5000\":{},"
                                    "\"other.example\":{\"auth\":\"bWU6eA==\"}}}",
                                    0600),
                         0);
        assert_int_equal(oci_auth_lookup(home, "localhost:5000", &c, note, sizeof(note)), 0);
        assert_string_equal(c.username, "alice");
        assert_string_equal(c.password, "s3cret");
        oci_cred_clear(&c);
        assert_int_equal(oci_auth_lookup(home, "docker.io", &c, note, sizeof(note)),
                         0); /* asked by its v1 URL */
        assert_string_equal(c.username, "hub");
        oci_cred_clear(&c);
        assert_int_equal(oci_auth_lookup(home, "other.example", &c, note, sizeof(note)), 0);
        assert_string_equal(c.username, "me");
        oci_cred_clear(&c);
        /* credHelpers before credsStore; a helper that fails leaves the
         * inline entry */
        assert_int_equal(write_file(cfg,
                                    "{\"credsStore\":\"missing\","
                                    "\"credHelpers\":{\"localhost:5000\":\"msbtest\","
                                    "\"broken.example\":\"msbtest\"},"
                                    "\"auths\":{\"broken.example\":{\"auth\":\"bWU6eA==\"}}}",
                                    0600),
                         0);
        assert_int_equal(oci_auth_lookup(home, "localhost:5000", &c, note, sizeof(note)), 0);
        assert_string_equal(c.username, "alice");
        oci_cred_clear(&c);
        assert_int_equal(oci_auth_lookup(home, "broken.example", &c, note, sizeof(note)), 0);
        assert_string_equal(c.username, "me");
        assert_non_null(strstr(note, "docker-credential-msbtest failed: keychain locked"));
        oci_cred_clear(&c);
        assert_int_equal(oci_auth_lookup(home, "docker.io", &c, note, sizeof(note)), -ENOENT);
        assert_non_null(strstr(note, "docker-credential-missing: not found on PATH (named by "));
        unsetenv("DOCKER_CONFIG");
        assert_int_equal(rm_rf(home), 0);
        free(asked);
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
                cmocka_unit_test(test_credential_helper),
                cmocka_unit_test(test_docker_config_helpers),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
