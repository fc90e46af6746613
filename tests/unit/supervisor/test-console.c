/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The console log (console.c): bytes from QEMU's end of the socketpair land
 * in the file as they came, the file starts empty at every run, a flood is
 * bounded by rotation, and QEMU's end closing is reported.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/core/util.h"
#include "lib/supervisor/console.h"

#define LOG_LIMIT (100u * 1024u)

struct fix {
        char dir[64];
        char *path, *old;
};

static int setup(void **state)
{
        struct fix *f = calloc(1, sizeof(*f));

        snprintf(f->dir, sizeof(f->dir), "/tmp/msb-test-console-XXXXXX");
        if (!mkdtemp(f->dir))
                return -1;
        f->path = strdup_printf("%s/kernel.log", f->dir);
        f->old = strdup_printf("%s/kernel.log.1", f->dir);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fix *f = *state;
        int r = rm_rf(f->dir);

        free(f->path);
        free(f->old);
        free(f);
        return r;
}

static off_t size_of(const char *path)
{
        struct stat st;

        return stat(path, &st) == 0 ? st.st_size : -1;
}

static void test_bytes_kept(void **state)
{
        struct fix *f = *state;
        _cleanup_(console_freep) struct console *c = NULL;
        _cleanup_free_ char *text = NULL;
        _cleanup_close_ int qemu = -1;

        assert_int_equal(write_file(f->path, "an earlier run\n", 0600), 0);
        assert_int_equal(console_new(f->path, LOG_LIMIT, &c, &qemu), 0);
        assert_int_equal(size_of(f->path), 0); /* every run starts empty */
        assert_int_equal(console_drain(c), 0); /* nothing yet: no block */

        assert_int_equal(write(qemu, "[    0.000000] Linux", 20), 20);
        assert_int_equal(write(qemu, " version\r\n\x1b[0m", 14), 14);
        assert_int_equal(console_drain(c), 0);
        assert_int_equal(read_file(f->path, 4096, &text, NULL), 0);
        assert_string_equal(text, "[    0.000000] Linux version\r\n\x1b[0m");

        /* what QEMU wrote before it closed is kept, and the end reported */
        assert_int_equal(write(qemu, "Kernel panic", 12), 12);
        qemu = safe_close(qemu);
        assert_int_equal(console_drain(c), 1);
        free(text);
        assert_int_equal(read_file(f->path, 4096, &text, NULL), 0);
        assert_non_null(strstr(text, "\x1b[0mKernel panic"));
}

/* A guest that never stops writing costs at most two files of the limit. */
static void test_flood_bounded(void **state)
{
        struct fix *f = *state;
        _cleanup_(console_freep) struct console *c = NULL;
        _cleanup_close_ int qemu = -1;
        char chunk[4096];
        uint64_t written = 0;

        memset(chunk, 'x', sizeof(chunk));
        assert_int_equal(console_new(f->path, LOG_LIMIT, &c, &qemu), 0);
        assert_int_equal(fd_set_nonblock(qemu, true), 0);
        while (written < 20 * LOG_LIMIT) {
                ssize_t n = write(qemu, chunk, sizeof(chunk));

                if (n < 0) /* the socket is full: the supervisor's turn */
                        assert_int_equal(console_drain(c), 0);
                else
                        written += (uint64_t)n;
        }
        assert_int_equal(console_drain(c), 0);
        assert_true(size_of(f->path) > 0 && size_of(f->path) <= (off_t)LOG_LIMIT);
        assert_true(size_of(f->old) > 0 && size_of(f->old) <= (off_t)LOG_LIMIT);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_bytes_kept, setup, teardown),
                cmocka_unit_test_setup_teardown(test_flood_bounded, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
