/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Flattening: several layers (gzip, zstd, plain, a GNU sparse tar) into one
 * ext4, judged by e2fsck -fn and read back with debugfs; whiteouts, opaque
 * directories, cross-layer hard links, devices, xattrs, setuid, sparse and
 * large files, long paths; hostile layers; tampered blobs; diff_ids; limits;
 * the cached result; two processes building the same image.
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "e2fs.h"
#include "lib/core/util.h"
#include "lib/oci/rootfs.h"
#include "tarbuild.h"

#define MANIFEST "sha256:abababababababababababababababababababababababababababababab"

struct fix {
        char *home;
        struct oci_cache *c;
        struct oci_manifest m;
        struct oci_descriptor layers[8];
};

static int setup(void **state)
{
        struct fix *f = calloc(1, sizeof(*f));

        f->home = e2fs_tmpdir();
        assert_int_equal(oci_cache_open(f->home, false, &f->c), 0);
        f->m.layers = f->layers;
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fix *f = *state;
        char *cmd;

        /* nothing half-written is left behind */
        cmd = strdup_printf("test -z \"$(ls -A %s/cache/tmp)\"", f->home);
        assert_int_equal(system(cmd), 0);
        free(cmd);
        oci_cache_close(f->c);
        assert_int_equal(rm_rf(f->home), 0);
        free(f->home);
        free(f);
        return 0;
}

/* Stores a finished tar (compressed as asked) as the next layer. */
static void add_layer(struct fix *f, struct tb *t, enum tb_compression c)
{
        struct oci_descriptor *d = &f->layers[f->m.n_layers++];
        void *tar, *blob;
        size_t tar_len, len;

        tb_finish(t, &tar, &tar_len);
        if (c == TB_PLAIN) {
                blob = tar;
                len = tar_len;
        } else {
                tb_compress(c, tar, tar_len, &blob, &len);
                free(tar);
        }
        assert_int_equal(oci_cache_blob_put(f->c, blob, len, d->digest), 0);
        d->size = len;
        free(blob);
}

static void add_blob_file(struct fix *f, const char *path)
{
        struct oci_descriptor *d = &f->layers[f->m.n_layers++];
        char *data;
        size_t len;

        assert_int_equal(read_file(path, 1 << 30, &data, &len), 0);
        assert_int_equal(oci_cache_blob_put(f->c, data, len, d->digest), 0);
        d->size = len;
        free(data);
}

static int build(struct fix *f, const struct oci_image_config *cfg, char **path, struct oci_err *e)
{
        return oci_rootfs_build(f->c, MANIFEST, &f->m, cfg, NULL, NULL, NULL, path, e);
}

static long long field(const char *img, const char *path, const char *name)
{
        char *out = e2fs_debugfs(img, "stat \"%s\"", path);
        long long v = e2fs_field(out, name);

        free(out);
        return v;
}

static bool exists(const char *img, const char *path)
{
        char *out = e2fs_debugfs(img, "stat \"%s\"", path);
        bool found = strstr(out, "Inode:") != NULL;

        free(out);
        return found;
}

static void test_flatten(void **state)
{
        struct fix *f = *state;
        static const uint64_t regions[] = {0, 4096, 8 << 20, 4096};
        char longpath[1200], *img, *out, *p;
        struct oci_err e = {0};
        struct tb *t;

        /* layer 1 */
        t = tb_new(TB_GZIP);
        tb_dir(t, "etc");
        tb_file(t, "etc/passwd", "root:x:0:0::/root:/bin/sh\n");
        tb_add(t, &(struct tb_entry){.type = TB_REG,
                                     .path = "etc/shadow",
                                     .mode = 0640,
                                     .gid = 42,
                                     .data = "secret",
                                     .size = 6});
        tb_dir(t, "var/cache/apt");
        tb_file(t, "var/cache/apt/a", "a");
        tb_file(t, "var/cache/apt/b", "b");
        tb_add(t, &(struct tb_entry){.type = TB_REG,
                                     .path = "usr/bin/ping",
                                     .mode = 04755,
                                     .data = "ELF",
                                     .size = 3,
                                     .xattr_name = "security.capability",
                                     .xattr_value = "\x01\x00\x00\x02\x00\x20\x00\x00",
                                     .xattr_size = 8});
        tb_add(t, &(struct tb_entry){
                          .type = TB_HARDLINK, .path = "usr/bin/ping6", .target = "usr/bin/ping"});
        tb_add(t, &(struct tb_entry){.type = TB_SYMLINK, .path = "bin", .target = "usr/bin"});
        tb_add(t, &(struct tb_entry){.type = TB_CHR,
                                     .path = "dev/null",
                                     .mode = 0666,
                                     .rdev_major = 1,
                                     .rdev_minor = 3});
        tb_add(t, &(struct tb_entry){.type = TB_BLK,
                                     .path = "dev/sda",
                                     .mode = 0660,
                                     .rdev_major = 8,
                                     .rdev_minor = 0});
        tb_add(t, &(struct tb_entry){.type = TB_FIFO, .path = "run/initctl"});
        tb_add(t, &(struct tb_entry){.type = TB_REG,
                                     .path = "var/sparse",
                                     .size = 16 << 20,
                                     .sparse = regions,
                                     .n_sparse = 2});
        p = longpath;
        for (int i = 0; i < 20; i++)
                p += sprintf(p, "%s%c%049d", i ? "/" : "", 'a' + i, i);
        tb_file(t, longpath, "deep");
        add_layer(f, t, TB_GZIP);

        /* layer 2: whiteouts and an opaque directory, a replaced file */
        t = tb_new(TB_PLAIN);
        tb_file(t, "etc/.wh.shadow", "");
        tb_file(t, "etc/passwd", "root:x:0:0::/root:/bin/bash\n");
        tb_file(t, "var/cache/apt/c", "c"); /* before the marker: still kept */
        tb_file(t, "var/cache/apt/.wh..wh..opq", "");
        tb_add(t, &(struct tb_entry){.type = TB_HARDLINK,
                                     .path = "usr/bin/ping-again",
                                     .target = "/usr/bin/ping"});
        add_layer(f, t, TB_ZSTD);

        assert_int_equal(build(f, NULL, &img, &e), 0);
        assert_int_equal(e2fs_fsck(img), 0);

        assert_false(exists(img, "/etc/shadow"));
        out = e2fs_debugfs(img, "cat /etc/passwd");
        assert_string_equal(out, "root:x:0:0::/root:/bin/bash\n");
        free(out);
        out = e2fs_debugfs(img, "ls -l /var/cache/apt");
        assert_null(strstr(out, " a"));
        assert_null(strstr(out, " b"));
        assert_non_null(strstr(out, " c"));
        free(out);

        assert_int_equal(field(img, "/usr/bin/ping", "Mode"), 04755);
        assert_int_equal(field(img, "/usr/bin/ping", "Links"), 3);
        out = e2fs_debugfs(img, "ea_list /usr/bin/ping");
        assert_non_null(strstr(out, "security.capability"));
        free(out);
        out = e2fs_debugfs(img, "stat /dev/null");
        assert_non_null(strstr(out, "Type: character special"));
        assert_non_null(strstr(out, "Device major/minor number: 01:03"));
        free(out);
        out = e2fs_debugfs(img, "stat /dev/sda");
        assert_non_null(strstr(out, "Type: block special"));
        free(out);
        out = e2fs_debugfs(img, "stat /run/initctl");
        assert_non_null(strstr(out, "Type: FIFO"));
        free(out);
        out = e2fs_debugfs(img, "stat /bin");
        assert_non_null(strstr(out, "Fast link dest: \"usr/bin\""));
        free(out);
        assert_int_equal(field(img, "/var/sparse", "Size"), 16 << 20);
        assert_true(field(img, "/var/sparse", "Blockcount") <= 64); /* 2 blocks of 4 KiB */
        snprintf(longpath + strlen(longpath), 8, "%s", "");
        out = e2fs_debugfs(img, "cat \"/%s\"", longpath);
        assert_string_equal(out, "deep");
        free(out);
        free(img);
}

/* A large sparse file in a GNU tar (--sparse, pax format 1.0). */
static void test_large_sparse_gnu_tar(void **state)
{
        struct fix *f = *state;
        char *dir = strdup_printf("%s/src", f->home), *cmd, *img, *out;
        struct oci_err e = {0};
        int fd;

        assert_int_equal(mkdir(dir, 0755), 0);
        cmd = strdup_printf("%s/big", dir);
        fd = open(cmd, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, "head", 4, 0), 4);
        assert_int_equal(pwrite(fd, "tail", 4, (5LL << 30) - 4), 4);
        close(fd);
        free(cmd);
        cmd = strdup_printf("tar --sparse --format=posix -C %s -cf %s/big.tar big", dir, f->home);
        assert_int_equal(system(cmd), 0);
        free(cmd);
        cmd = strdup_printf("%s/big.tar", f->home);
        add_blob_file(f, cmd);
        free(cmd);

        assert_int_equal(build(f, NULL, &img, &e), 0);
        assert_int_equal(e2fs_fsck(img), 0);
        assert_int_equal(field(img, "/big", "Size"), 5LL << 30);
        assert_true(field(img, "/big", "Blockcount") <= 64);
        cmd = strdup_printf("%s/dump", f->home);
        out = e2fs_debugfs(img, "dump_extents /big");
        assert_non_null(out);
        free(out);
        free(cmd);
        free(img);
        free(dir);
}

static void expect_failure(struct fix *f, int want, const char *const *needles)
{
        struct oci_err e = {0};
        char *img = NULL, *rel = oci_rootfs_rel(MANIFEST), *abs = oci_cache_abs(f->c, rel);

        assert_int_equal(build(f, NULL, &img, &e), want);
        for (; *needles; needles++)
                if (!strstr(e.msg, *needles))
                        fail_msg("'%s' not in '%s'", *needles, e.msg);
        assert_int_equal(access(abs, F_OK), -1);
        free(rel);
        free(abs);
}

static void test_symlink_write_through(void **state)
{
        struct fix *f = *state;
        struct tb *t;

        t = tb_new(TB_PLAIN);
        tb_dir(t, "etc");
        tb_add(t, &(struct tb_entry){.type = TB_SYMLINK, .path = "evil", .target = "/etc"});
        add_layer(f, t, TB_GZIP);
        t = tb_new(TB_PLAIN);
        tb_file(t, "evil/passwd", "pwned");
        add_layer(f, t, TB_GZIP);
        expect_failure(
                f, -ENOTDIR,
                (const char *const[]){"layer 2/2", "'/evil/passwd'", "not a directory", NULL});
}

static void test_hostile_hardlinks(void **state)
{
        struct fix *f = *state;
        struct tb *t = tb_new(TB_PLAIN);

        tb_add(t, &(struct tb_entry){.type = TB_HARDLINK, .path = "x", .target = "/nowhere"});
        add_layer(f, t, TB_PLAIN);
        expect_failure(f, -EBADMSG, (const char *const[]){"layer 1/1", "hard link", NULL});
}

static void test_escape(void **state)
{
        struct fix *f = *state;
        struct tb *t = tb_new(TB_PLAIN);

        tb_file(t, "ok", "fine");
        tb_file(t, "../../../tmp/owned", "x");
        add_layer(f, t, TB_GZIP);
        expect_failure(f, -EXDEV, (const char *const[]){"layer 1/1", "escapes the image", NULL});
}

static void test_tampered_blob(void **state)
{
        struct fix *f = *state;
        struct tb *t = tb_new(TB_PLAIN);
        char *path;
        int fd;

        tb_file(t, "a", "aaaa");
        add_layer(f, t, TB_GZIP);
        path = strdup_printf("%s/cache/blobs/sha256/%s", f->home,
                             oci_digest_hex(f->layers[0].digest));
        fd = open(path, O_WRONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, "\x00", 1, 20), 1);
        close(fd);
        expect_failure(f, -EBADMSG, (const char *const[]){"layer 1/1", NULL});
        /* the bad blob is gone: a new pull fetches it again */
        assert_int_equal(access(path, F_OK), -1);
        free(path);
}

static void test_truncated_gzip(void **state)
{
        struct fix *f = *state;
        struct tb *t = tb_new(TB_PLAIN);
        struct oci_descriptor *d = &f->layers[f->m.n_layers++];
        static char big[200000];
        void *tar, *gz;
        size_t tar_len, gz_len;

        for (size_t i = 0; i < sizeof(big); i++)
                big[i] = (char)tb_pattern(i);
        tb_add(t,
               &(struct tb_entry){.type = TB_REG, .path = "big", .data = big, .size = sizeof(big)});
        tb_finish(t, &tar, &tar_len);
        tb_compress(TB_GZIP, tar, tar_len, &gz, &gz_len);
        /* the blob as stored is the truncated one: its digest matches */
        assert_int_equal(oci_cache_blob_put(f->c, gz, gz_len / 2, d->digest), 0);
        d->size = gz_len / 2;
        expect_failure(f, -EBADMSG, (const char *const[]){"layer 1/1", NULL});
        free(tar);
        free(gz);
}

static void test_diff_id_mismatch(void **state)
{
        struct fix *f = *state;
        struct tb *t = tb_new(TB_PLAIN);
        char *ids[] = {"sha256:1111111111111111111111111111111111111111111111111111111111111111"};
        struct oci_image_config cfg = {.diff_ids = ids, .n_diff_ids = 1};
        struct oci_err e = {0};
        char *img;

        tb_file(t, "a", "a");
        add_layer(f, t, TB_GZIP);
        assert_int_equal(build(f, &cfg, &img, &e), -EBADMSG);
        assert_non_null(strstr(e.msg, "diff_id mismatch"));
}

static void test_limits(void **state)
{
        struct fix *f = *state;
        struct oci_limits lim;
        struct oci_err e = {0};
        char *img;

        for (int l = 0; l < 3; l++) {
                struct tb *t = tb_new(TB_PLAIN);

                for (int i = 0; i < 4; i++) {
                        char name[32];

                        snprintf(name, sizeof(name), "l%d/f%d", l, i);
                        tb_file(t, name, "data");
                }
                add_layer(f, t, TB_GZIP);
        }
        oci_limits_default(&lim);
        lim.max_entries = 10; /* each layer has 5 (a directory and 4 files) */
        assert_int_equal(oci_rootfs_build(f->c, MANIFEST, &f->m, NULL, &lim, NULL, NULL, &img, &e),
                         -E2BIG);
        assert_non_null(strstr(e.msg, "entries"));
}

static void test_cached_and_concurrent(void **state)
{
        struct fix *f = *state;
        struct oci_err e = {0};
        char *img, *img2;
        struct stat st1, st2;
        pid_t pids[2];

        for (int l = 0; l < 2; l++) {
                struct tb *t = tb_new(TB_PLAIN);

                for (int i = 0; i < 300; i++) {
                        char name[32];

                        snprintf(name, sizeof(name), "d%d/f%d", i % 17, i);
                        tb_file(t, name, "some file data");
                }
                add_layer(f, t, TB_GZIP);
        }
        /* two processes at once: both succeed, one image */
        for (int i = 0; i < 2; i++) {
                pids[i] = fork();
                assert_true(pids[i] >= 0);
                if (pids[i] == 0) {
                        struct oci_cache *c;
                        char *p;

                        if (oci_cache_open(f->home, false, &c) < 0)
                                _exit(2);
                        _exit(oci_rootfs_build(c, MANIFEST, &f->m, NULL, NULL, NULL, NULL, &p,
                                               NULL) < 0);
                }
        }
        for (int i = 0; i < 2; i++) {
                int status;

                assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
                assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
        assert_int_equal(build(f, NULL, &img, &e), 0);
        assert_int_equal(e2fs_fsck(img), 0);
        assert_int_equal(stat(img, &st1), 0);
        assert_int_equal(build(f, NULL, &img2, &e), 0);
        assert_string_equal(img, img2);
        assert_int_equal(stat(img2, &st2), 0);
        assert_int_equal(st1.st_ino, st2.st_ino); /* not rebuilt */
        free(img);
        free(img2);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_flatten, setup, teardown),
                cmocka_unit_test_setup_teardown(test_large_sparse_gnu_tar, setup, teardown),
                cmocka_unit_test_setup_teardown(test_symlink_write_through, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hostile_hardlinks, setup, teardown),
                cmocka_unit_test_setup_teardown(test_escape, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tampered_blob, setup, teardown),
                cmocka_unit_test_setup_teardown(test_truncated_gzip, setup, teardown),
                cmocka_unit_test_setup_teardown(test_diff_id_mismatch, setup, teardown),
                cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cached_and_concurrent, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
