/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/oci/dl.c when a library is missing or not the one we built against:
 * the operation fails with -ENOPKG and one line naming the library, the
 * package to install and the loader's reason, and so does every later
 * call (the library is tried once). Run with LD_LIBRARY_PATH at
 * fakelibs/, which holds a libcurl.so.4 that is no ELF file and a
 * libarchive.so.13 without libarchive's symbols; this test links neither.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/oci/dl.h"

static void test_unloadable_curl(void **state)
{
        struct oci_err e = {0};

        (void)state;
        assert_int_equal(oci_dl_curl(&e), -ENOPKG);
        assert_non_null(strstr(e.msg, "cannot load libcurl.so.4 (install the libcurl4 package): "));
        assert_non_null(strstr(e.msg, "libcurl.so.4")); /* the loader's own reason follows */
        assert_null(strchr(e.msg, '\n'));
        assert_null(sym_curl_easy_init);

        memset(&e, 0, sizeof(e));
        assert_int_equal(oci_dl_curl(&e), -ENOPKG); /* tried once; the same answer after */
        assert_non_null(strstr(e.msg, "install the libcurl4 package"));
        assert_int_equal(oci_dl_curl(NULL), -ENOPKG);
}

static void test_archive_without_symbols(void **state)
{
        struct oci_err e = {0};

        (void)state;
        assert_int_equal(oci_dl_archive(&e), -ENOPKG);
        assert_string_equal(e.msg, "cannot load libarchive.so.13 (install the libarchive13 "
                                   "package): libarchive.so.13 has no archive_entry_atime");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_unloadable_curl),
                cmocka_unit_test(test_archive_without_symbols),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
