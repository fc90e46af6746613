/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The built-in base image (images/base): a clean filesystem with busybox,
 * its applet links and exact ownership. The build passes its path in
 * $MSB_BASE_IMAGE.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "e2fs.h"

static const char *image(void)
{
        const char *p = getenv("MSB_BASE_IMAGE");

        assert_non_null(p);
        return p;
}

static long long field(const char *path, const char *name)
{
        char *out = e2fs_debugfs(image(), "stat %s", path);
        long long v = e2fs_field(out, name);

        free(out);
        return v;
}

static bool contains(const char *request, const char *text)
{
        char *out = e2fs_debugfs(image(), "%s", request);
        bool found = strstr(out, text) != NULL;

        free(out);
        return found;
}

static void test_clean(void **state)
{
        assert_int_equal(e2fs_fsck(image()), 0);
        (void)state;
}

static void test_busybox(void **state)
{
        assert_true(contains("stat /bin/busybox", "Type: regular"));
        assert_int_equal(field("/bin/busybox", "Mode"), 0755);
        assert_int_equal(field("/bin/busybox", "User"), 0);
        assert_true(field("/bin/busybox", "Size") > 100000);
        assert_true(contains("stat /bin/sh", "Fast link dest: \"busybox\""));
        assert_true(contains("stat /sbin/ifconfig", "Fast link dest: \"../bin/busybox\""));
        assert_true(contains("stat /usr/bin/awk", "Fast link dest: \"../../bin/busybox\""));
        (void)state;
}

static void test_layout(void **state)
{
        assert_int_equal(field("/tmp", "Mode"), 01777);
        assert_int_equal(field("/var/tmp", "Mode"), 01777);
        assert_int_equal(field("/root", "Mode"), 0700);
        assert_int_equal(field("/home/user", "User"), 1000);
        assert_int_equal(field("/home/user", "Group"), 1000);
        assert_int_equal(field("/etc/passwd", "User"), 0);
        assert_int_equal(field("/etc/passwd", "Mode"), 0644);
        for (const char *const *d =
                     (const char *const[]){"/dev", "/proc", "/sys", "/run", "/mnt", NULL};
             *d; d++)
                assert_int_equal(field(*d, "Mode"), 0755);
        assert_true(contains("cat /etc/passwd", "user:x:1000:1000:user:/home/user:/bin/sh"));
        assert_true(contains("cat /etc/passwd", "root:x:0:0:"));
        assert_true(contains("cat /etc/passwd", "nobody:x:65534:65534:"));
        assert_true(contains("cat /etc/group", "user:x:1000:"));
        assert_true(contains("cat /etc/os-release", "NAME=\"microsandbox base\""));
        assert_true(contains("cat /etc/hosts", "127.0.0.1"));
        assert_true(contains("cat /etc/hostname", "microsandbox"));
        (void)state;
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_clean),
                cmocka_unit_test(test_busybox),
                cmocka_unit_test(test_layout),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
