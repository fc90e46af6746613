/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The content-addressed cache: verified reads, tampered blobs, resumable
 * blob writers, publication by rename, locks, and two processes writing the
 * same blob.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "e2fs.h"
#include "lib/core/util.h"
#include "lib/oci/cache.h"

struct fix {
        char *home;
        struct oci_cache *c;
};

static int setup(void **state)
{
        struct fix *f = calloc(1, sizeof(*f));

        f->home = e2fs_tmpdir();
        assert_int_equal(oci_cache_open(f->home, false, &f->c), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fix *f = *state;

        oci_cache_close(f->c);
        assert_int_equal(rm_rf(f->home), 0);
        free(f->home);
        free(f);
        return 0;
}

static void test_put_read(void **state)
{
        struct fix *f = *state;
        char digest[OCI_DIGEST_SIZE], *buf, *path;
        size_t len;

        assert_int_equal(oci_cache_blob_put(f->c, "hello", 5, digest), 0);
        assert_string_equal(digest, "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043"
                                    "362938b9824");
        assert_true(oci_cache_has_blob(f->c, digest, 5));
        assert_false(oci_cache_has_blob(f->c, digest, 6));
        assert_int_equal(oci_cache_blob_read(f->c, digest, 100, &buf, &len), 0);
        assert_int_equal(len, 5);
        assert_memory_equal(buf, "hello", 5);
        free(buf);
        assert_int_equal(oci_cache_blob_read(f->c, digest, 4, &buf, &len), -E2BIG);

        /* tampered on disk: refused and removed */
        path = strdup_printf("%s/cache/blobs/sha256/%s", f->home, oci_digest_hex(digest));
        assert_int_equal(write_file(path, "HELLO", 0644), 0);
        assert_int_equal(oci_cache_blob_read(f->c, digest, 100, &buf, &len), -EBADMSG);
        assert_int_equal(access(path, F_OK), -1);
        free(path);
}

static void test_writer_resume(void **state)
{
        struct fix *f = *state;
        static char data[300000];
        char digest[OCI_DIGEST_SIZE], got[OCI_DIGEST_SIZE];
        struct oci_blob_writer *w;

        for (size_t i = 0; i < sizeof(data); i++)
                data[i] = (char)(i * 7);
        assert_int_equal(oci_sha256_buf(data, sizeof(data), digest), 0);

        assert_int_equal(oci_blob_writer_open(f->c, digest, sizeof(data), false, &w), 0);
        assert_non_null(w);
        assert_int_equal(oci_blob_writer_offset(w), 0);
        assert_int_equal(oci_blob_writer_write(w, data, 100000), 0);
        oci_blob_writer_free(w); /* interrupted: the part stays */
        assert_false(oci_cache_has_blob(f->c, digest, UINT64_MAX));

        assert_int_equal(oci_blob_writer_open(f->c, digest, sizeof(data), false, &w), 0);
        assert_int_equal(oci_blob_writer_offset(w), 100000);
        assert_int_equal(oci_blob_writer_write(w, data + 100000, sizeof(data) - 100000), 0);
        assert_int_equal(oci_blob_writer_write(w, "x", 1), -EFBIG);
        oci_blob_writer_free(w); /* over the size: the part is discarded */

        assert_int_equal(oci_blob_writer_open(f->c, digest, sizeof(data), false, &w), 0);
        assert_int_equal(oci_blob_writer_offset(w), 0);
        assert_int_equal(oci_blob_writer_write(w, data, 5000), 0);
        assert_int_equal(oci_blob_writer_restart(w), 0); /* the server ignored the range */
        assert_int_equal(oci_blob_writer_write(w, data, sizeof(data)), 0);
        assert_int_equal(oci_blob_writer_commit(w, got), 0);
        assert_string_equal(got, digest);
        oci_blob_writer_free(w);
        assert_true(oci_cache_has_blob(f->c, digest, sizeof(data)));

        /* an interrupted write resumed and committed holds every byte once */
        assert_int_equal(oci_cache_blob_remove(f->c, digest), 0);
        assert_int_equal(oci_blob_writer_open(f->c, digest, sizeof(data), false, &w), 0);
        assert_int_equal(oci_blob_writer_write(w, data, 123456), 0);
        oci_blob_writer_free(w);
        assert_int_equal(oci_blob_writer_open(f->c, digest, sizeof(data), false, &w), 0);
        assert_int_equal(oci_blob_writer_offset(w), 123456);
        assert_int_equal(oci_blob_writer_write(w, data + 123456, sizeof(data) - 123456), 0);
        assert_int_equal(oci_blob_writer_commit(w, got), 0);
        oci_blob_writer_free(w);
        {
                char *back;
                size_t len;

                assert_int_equal(oci_cache_blob_read(f->c, digest, sizeof(data), &back, &len), 0);
                assert_int_equal(len, sizeof(data));
                assert_memory_equal(back, data, sizeof(data));
                free(back);
        }

        /* already there: nothing to write */
        assert_int_equal(oci_blob_writer_open(f->c, digest, sizeof(data), false, &w), 0);
        assert_null(w);
}

static void test_writer_mismatch(void **state)
{
        struct fix *f = *state;
        const char *wrong =
                "sha256:0000000000000000000000000000000000000000000000000000000000000000";
        struct oci_blob_writer *w;
        char *part;

        assert_int_equal(oci_blob_writer_open(f->c, wrong, 5, false, &w), 0);
        assert_int_equal(oci_blob_writer_write(w, "hello", 5), 0);
        assert_int_equal(oci_blob_writer_commit(w, NULL), -EBADMSG);
        oci_blob_writer_free(w);
        assert_false(oci_cache_has_blob(f->c, wrong, UINT64_MAX));
        part = strdup_printf("%s/cache/tmp/%s.part", f->home, oci_digest_hex(wrong));
        assert_int_equal(access(part, F_OK), -1); /* no half-published leftovers */
        free(part);

        /* short */
        assert_int_equal(oci_blob_writer_open(f->c, wrong, 10, false, &w), 0);
        assert_int_equal(oci_blob_writer_write(w, "hello", 5), 0);
        assert_int_equal(oci_blob_writer_commit(w, NULL), -EPIPE);
        oci_blob_writer_free(w);
}

static void test_tee(void **state)
{
        struct fix *f = *state;
        char digest[OCI_DIGEST_SIZE], buf[64];
        struct oci_blob_writer *w;
        int sv[2];

        assert_int_equal(oci_sha256_buf("0123456789", 10, digest), 0);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(oci_blob_writer_open(f->c, digest, 10, false, &w), 0);
        oci_blob_writer_tee(w, sv[0]);
        assert_int_equal(oci_blob_writer_write(w, "01234", 5), 0);
        assert_int_equal(oci_blob_writer_write(w, "56789", 5), 0);
        assert_true(oci_blob_writer_tee_complete(w));
        assert_int_equal(read(sv[1], buf, sizeof(buf)), 10);
        assert_memory_equal(buf, "0123456789", 10);
        assert_int_equal(oci_blob_writer_commit(w, NULL), 0);
        oci_blob_writer_free(w);

        /* a restart, or a reader that went away, loses the copy only */
        assert_int_equal(oci_blob_writer_open(f->c, NULL, UINT64_MAX, false, &w), 0);
        oci_blob_writer_tee(w, sv[0]);
        assert_int_equal(oci_blob_writer_restart(w), 0);
        assert_false(oci_blob_writer_tee_complete(w));
        oci_blob_writer_tee(w, sv[0]);
        close(sv[1]);
        assert_int_equal(oci_blob_writer_write(w, "abc", 3), 0); /* no SIGPIPE */
        assert_false(oci_blob_writer_tee_complete(w));
        assert_int_equal(oci_blob_writer_commit(w, NULL), 0);
        oci_blob_writer_free(w);
        close(sv[0]);
}

static void test_anonymous(void **state)
{
        struct fix *f = *state;
        struct oci_blob_writer *w;
        char digest[OCI_DIGEST_SIZE], want[OCI_DIGEST_SIZE];

        assert_int_equal(oci_blob_writer_open(f->c, NULL, UINT64_MAX, false, &w), 0);
        assert_int_equal(oci_blob_writer_write(w, "abc", 3), 0);
        assert_int_equal(oci_blob_writer_commit(w, digest), 0);
        oci_blob_writer_free(w);
        assert_int_equal(oci_sha256_buf("abc", 3, want), 0);
        assert_string_equal(digest, want);
        assert_true(oci_cache_has_blob(f->c, digest, 3));

        /* freed without commit: nothing left in tmp/ */
        assert_int_equal(oci_blob_writer_open(f->c, NULL, UINT64_MAX, false, &w), 0);
        assert_int_equal(oci_blob_writer_write(w, "zzz", 3), 0);
        oci_blob_writer_free(w);
        char *tmp = strdup_printf("%s/cache/tmp", f->home);
        char *cmd = strdup_printf("test -z \"$(ls -A %s)\"", tmp);
        assert_int_equal(system(cmd), 0);
        free(cmd);
        free(tmp);
}

static void test_locks(void **state)
{
        struct fix *f = *state;
        const char *d = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
        struct oci_blob_writer *w1, *w2;
        int a, b;

        /* a blob being written elsewhere: nowait says so */
        assert_int_equal(oci_blob_writer_open(f->c, d, 10, false, &w1), 0);
        assert_int_equal(oci_blob_writer_open(f->c, d, 10, true, &w2), -EAGAIN);
        oci_blob_writer_free(w1);
        assert_int_equal(oci_blob_writer_open(f->c, d, 10, true, &w2), 0);
        oci_blob_writer_free(w2);

        assert_int_equal(oci_cache_lock(f->c, "thing", true, &a), 0);
        assert_int_equal(oci_cache_lock(f->c, "thing", false, &b), -EAGAIN);
        close(a);
        assert_int_equal(oci_cache_lock(f->c, "thing", false, &b), 0);
        close(b);
}

/* Two processes want the same blob: one writes it, the other waits on the
 * lock and then finds it published. */
static void test_two_processes(void **state)
{
        struct fix *f = *state;
        static char data[1 << 20];
        char digest[OCI_DIGEST_SIZE];
        int pipefd[2], status;
        pid_t pid;

        memset(data, 'q', sizeof(data));
        assert_int_equal(oci_sha256_buf(data, sizeof(data), digest), 0);
        assert_int_equal(pipe(pipefd), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct oci_cache *c;
                struct oci_blob_writer *w;
                char x;

                close(pipefd[1]);
                if (read(pipefd[0], &x, 1) != 1) /* the parent holds the lock */
                        _exit(2);
                if (oci_cache_open(f->home, false, &c) < 0)
                        _exit(3);
                if (oci_blob_writer_open(c, digest, sizeof(data), false, &w) < 0)
                        _exit(4);
                _exit(w == NULL ? 0 : 5);
        }
        close(pipefd[0]);
        struct oci_blob_writer *w;
        assert_int_equal(oci_blob_writer_open(f->c, digest, sizeof(data), false, &w), 0);
        assert_int_equal(write(pipefd[1], "x", 1), 1);
        for (size_t i = 0; i < sizeof(data); i += 4096)
                assert_int_equal(oci_blob_writer_write(w, data + i, 4096), 0);
        assert_int_equal(oci_blob_writer_commit(w, NULL), 0);
        oci_blob_writer_free(w);
        close(pipefd[1]);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_put_read, setup, teardown),
                cmocka_unit_test_setup_teardown(test_writer_resume, setup, teardown),
                cmocka_unit_test_setup_teardown(test_writer_mismatch, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tee, setup, teardown),
                cmocka_unit_test_setup_teardown(test_anonymous, setup, teardown),
                cmocka_unit_test_setup_teardown(test_locks, setup, teardown),
                cmocka_unit_test_setup_teardown(test_two_processes, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
