/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of a few helpers of lib/core/util.c: the size and duration
 * parsers (units, junk, overflow), format_bytes, copy_utf8, base64, and mkdir_p/rm_rf in a
 * private temporary directory (rm_rf must not follow symlinks out of it),
 * and write_file_replace (whole new text, no temporary file left).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/core/util.h"

static void test_parse_size(void **state)
{
        static const struct {
                const char *s;
                int ret;
                uint64_t v;
        } cases[] = {
                {"0", 0, 0},
                {"4096", 0, 4096},
                {"1B", 0, 1},
                {"1b", 0, 1},
                {"512K", 0, 512ull << 10},
                {"512k", 0, 512ull << 10},
                {"512KiB", 0, 512ull << 10},
                {"512kb", 0, 512ull << 10},
                {"512M", 0, 512ull << 20},
                {"4G", 0, 4ull << 30},
                {"4gib", 0, 4ull << 30},
                {"1T", 0, 1ull << 40},
                {"18446744073709551615", 0, UINT64_MAX},
                {"16383P", 0, 16383ull << 50},
                {"18446744073709551616", -ERANGE, 0},
                {"16777216T", -ERANGE, 0},
                {"16384P", -ERANGE, 0},
                {"", -EINVAL, 0},
                {"K", -EINVAL, 0},
                {"-1", -EINVAL, 0},
                {" 1", -EINVAL, 0},
                {"1 K", -EINVAL, 0},
                {"1X", -EINVAL, 0},
                {"1KX", -EINVAL, 0},
                {"1KBB", -EINVAL, 0},
                {"1.5G", -EINVAL, 0},
        };
        size_t i;

        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                uint64_t v = 12345;
                int r = parse_size(cases[i].s, &v);

                if (r != cases[i].ret)
                        fail_msg("parse_size(\"%s\") = %d, want %d", cases[i].s, r, cases[i].ret);
                if (r == 0)
                        assert_true(v == cases[i].v);
                else
                        assert_true(v == 12345);
        }
        assert_int_equal(parse_size(NULL, &(uint64_t){0}), -EINVAL);
}

static void test_parse_duration(void **state)
{
        static const struct {
                const char *s;
                int ret;
                uint64_t v;
        } cases[] = {
                {"0", 0, 0},
                {"90", 0, 90000},
                {"250ms", 0, 250},
                {"30s", 0, 30000},
                {"5m", 0, 300000},
                {"1h30m", 0, 5400000},
                {"1m30s", 0, 90000},
                {"2d", 0, 172800000},
                {"1h1ms", 0, 3600001},
                {"18446744073709551615ms", 0, UINT64_MAX},
                {"18446744073709551615s", -ERANGE, 0},
                {"18446744073709551615ms1ms", -ERANGE, 0},
                {"", -EINVAL, 0},
                {"s", -EINVAL, 0},
                {"5x", -EINVAL, 0},
                {"5 s", -EINVAL, 0},
                {"-5s", -EINVAL, 0},
                {"1.5s", -EINVAL, 0},
        };
        size_t i;

        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                uint64_t v = 12345;
                int r = parse_duration_ms(cases[i].s, &v);

                if (r != cases[i].ret)
                        fail_msg("parse_duration_ms(\"%s\") = %d, want %d", cases[i].s, r,
                                 cases[i].ret);
                if (r == 0)
                        assert_true(v == cases[i].v);
                else
                        assert_true(v == 12345);
        }
        assert_int_equal(parse_duration_ms(NULL, &(uint64_t){0}), -EINVAL);
}

static void test_format_bytes(void **state)
{
        static const struct {
                uint64_t v;
                const char *s;
        } cases[] = {
                {0, "0 B"},
                {1023, "1023 B"},
                {1024, "1.0 KiB"},
                {1536, "1.5 KiB"},
                {5ull << 20, "5.0 MiB"},
                {3ull << 30, "3.0 GiB"},
                {2ull << 40, "2.0 TiB"},
                {4096ull << 40, "4096.0 TiB"},
        };
        char buf[32];
        size_t i;

        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                assert_string_equal(format_bytes(cases[i].v, buf, sizeof(buf)), cases[i].s);
        /* a small buffer truncates, NUL-terminated */
        assert_string_equal(format_bytes(1536, buf, 4), "1.5");
}

static void test_copy_utf8(void **state)
{
        char buf[4];

        assert_string_equal(copy_utf8(buf, sizeof(buf), "abc"), "abc");
        assert_string_equal(copy_utf8(buf, sizeof(buf), "abcd"), "abc");
        /* "a" then U+00E9 (2 bytes) then U+20AC (3 bytes): never half a character */
        assert_string_equal(copy_utf8(buf, sizeof(buf), "a\xc3\xa9\xe2\x82\xac"), "a\xc3\xa9");
        assert_string_equal(copy_utf8(buf, sizeof(buf), "ab\xc3\xa9"), "ab");
        assert_string_equal(copy_utf8(buf, sizeof(buf), "\xe2\x82\xac!"), "\xe2\x82\xac");
        assert_string_equal(copy_utf8(buf, 3, "\xe2\x82\xac"), "");
        assert_string_equal(copy_utf8(buf, 1, "abc"), "");
}

/* Each file-system test gets a fresh directory under $TMPDIR (or /tmp) in
 * *state; the teardown removes it even when the test failed. */
static int tmpdir_setup(void **state)
{
        const char *tmp = getenv("TMPDIR");
        char *base = malloc(256);

        if (!base)
                return -1;
        if ((size_t)snprintf(base, 256, "%s/test-util-XXXXXX", tmp && *tmp ? tmp : "/tmp") >= 256 ||
            !mkdtemp(base)) {
                free(base);
                return -1;
        }
        *state = base;
        return 0;
}

static int tmpdir_teardown(void **state)
{
        char *base = *state;
        int r = rm_rf(base);

        free(base);
        return r < 0 ? -1 : 0;
}

static void touch(const char *path)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

        assert_true(fd >= 0);
        close(fd);
}

static void test_base64(void **state)
{
        char *b = base64_encode("alice:s3cret", 12);
        uint8_t *d;
        size_t len;

        (void)state;
        assert_string_equal(b, "YWxpY2U6czNjcmV0");
        assert_int_equal(base64_decode(b, &d, &len), 0);
        assert_int_equal(len, 12);
        assert_string_equal((char *)d, "alice:s3cret");
        free(b);
        free(d);
        b = base64_encode("\xff\x00", 2);
        assert_string_equal(b, "/wA=");
        assert_int_equal(base64_decode(b, &d, &len), 0);
        assert_int_equal(len, 2);
        assert_memory_equal(d, "\xff\x00", 2);
        free(b);
        free(d);
        assert_int_equal(base64_decode("YQ", &d, &len), 0); /* padding optional */
        assert_int_equal(len, 1);
        assert_string_equal((char *)d, "a");
        free(d);
        assert_int_equal(base64_decode("", &d, &len), 0);
        assert_int_equal(len, 0);
        free(d);
        assert_int_equal(base64_decode("!!!!", &d, &len), -EBADMSG);
        assert_int_equal(base64_decode("YW J j", &d, &len), -EBADMSG);
}

static void test_mkdir_p_rm_rf(void **state)
{
        const char *base = *state;
        char path[PATH_MAX], outside[PATH_MAX];
        struct stat st;

        assert_true(strlen(base) < 256);
        snprintf(outside, sizeof(outside), "%.255s/outside", base);
        assert_int_equal(mkdir_p(outside, 0755), 0);

        snprintf(path, sizeof(path), "%.255s/tree/a/b/c", base);
        assert_int_equal(mkdir_p(path, 0700), 0);
        assert_int_equal(stat(path, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 0777, 0700);
        assert_int_equal(mkdir_p(path, 0700), 0); /* exists: fine */
        snprintf(path, sizeof(path), "%.255s/tree/a/b/d/", base);
        assert_int_equal(mkdir_p(path, 0755), 0); /* trailing slash */

        /* files, a symlink to a directory outside, and a dangling symlink */
        snprintf(path, sizeof(path), "%.255s/tree/a/file", base);
        touch(path);
        snprintf(path, sizeof(path), "%.255s/outside/keep", base);
        touch(path);
        snprintf(path, sizeof(path), "%.255s/tree/a/b/link", base);
        assert_int_equal(symlink(outside, path), 0);
        snprintf(path, sizeof(path), "%.255s/tree/dangling", base);
        assert_int_equal(symlink("/nonexistent/x", path), 0);

        /* a path through a regular file is not a directory */
        snprintf(path, sizeof(path), "%.255s/tree/a/file/sub", base);
        assert_int_equal(mkdir_p(path, 0755), -ENOTDIR);

        snprintf(path, sizeof(path), "%.255s/tree", base);
        assert_int_equal(rm_rf(path), 0);
        assert_int_equal(lstat(path, &st), -1);
        assert_int_equal(errno, ENOENT);
        assert_int_equal(rm_rf(path), 0); /* missing: success */
        snprintf(path, sizeof(path), "%.255s/outside/keep", base);
        assert_int_equal(stat(path, &st), 0); /* the link was not followed */
}

/* Two cases util.c got wrong (see the report): an empty path read past its
 * buffer, and an existing regular file counted as a directory. */
static void test_mkdir_p_edge_cases(void **state)
{
        const char *base = *state;
        char path[PATH_MAX];

        assert_int_equal(mkdir_p("", 0755), -ENOENT);

        snprintf(path, sizeof(path), "%.255s/file", base);
        touch(path);
        assert_int_equal(mkdir_p(path, 0755), -ENOTDIR);
}

static void test_write_file_replace(void **state)
{
        const char *base = *state;
        char path[PATH_MAX], dir[PATH_MAX];
        _cleanup_free_ char *text = NULL;
        struct stat st;

        snprintf(path, sizeof(path), "%.255s/cache", base);
        assert_int_equal(write_file_replace(path, "old text, longer\n", 0644), 0);
        assert_int_equal(write_file_replace(path, "new\n", 0600), 0);
        assert_int_equal(read_file(path, 64, &text, NULL), 0);
        assert_string_equal(text, "new\n");
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        snprintf(path, sizeof(path), "%.255s/cache.%d.tmp", base, (int)getpid());
        assert_int_equal(access(path, F_OK), -1);
        /* a directory in the way: the error, and still no temporary file */
        snprintf(dir, sizeof(dir), "%.255s/dir", base);
        assert_int_equal(mkdir(dir, 0755), 0);
        assert_int_equal(write_file_replace(dir, "x", 0644), -EISDIR);
        snprintf(path, sizeof(path), "%.255s/dir.%d.tmp", base, (int)getpid());
        assert_int_equal(access(path, F_OK), -1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_size),
                cmocka_unit_test(test_parse_duration),
                cmocka_unit_test(test_format_bytes),
                cmocka_unit_test(test_copy_utf8),
                cmocka_unit_test(test_base64),
                cmocka_unit_test_setup_teardown(test_mkdir_p_rm_rf, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_mkdir_p_edge_cases, tmpdir_setup,
                                                tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_write_file_replace, tmpdir_setup,
                                                tmpdir_teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
