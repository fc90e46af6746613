/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Layers: tar streams (plain, gzip, zstd) translated into image entries,
 * whiteouts, hostile paths, corrupt streams, digests and diff_ids, limits,
 * sparse files, and the cached layer description.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/core/util.h"
#include "lib/oci/layer.h"
#include "tarbuild.h"

static void *build_sample(size_t *len)
{
        struct tb *t = tb_new(TB_PLAIN);
        void *buf;

        tb_dir(t, "./");
        tb_dir(t, "etc");
        tb_file(t, "etc/hostname", "box\n");
        tb_add(t, &(struct tb_entry){.type = TB_REG,
                                     .path = "usr/bin/ping",
                                     .mode = 04755,
                                     .uid = 0,
                                     .gid = 0,
                                     .data = "ELF",
                                     .size = 3,
                                     .xattr_name = "security.capability",
                                     .xattr_value = "\x01\x00\x00\x02",
                                     .xattr_size = 4});
        tb_add(t, &(struct tb_entry){.type = TB_SYMLINK, .path = "bin", .target = "usr/bin"});
        tb_add(t, &(struct tb_entry){
                          .type = TB_HARDLINK, .path = "usr/bin/ping6", .target = "usr/bin/ping"});
        tb_add(t, &(struct tb_entry){.type = TB_CHR,
                                     .path = "dev/null",
                                     .mode = 0666,
                                     .rdev_major = 1,
                                     .rdev_minor = 3});
        tb_add(t, &(struct tb_entry){.type = TB_FIFO, .path = "run/fifo", .uid = 1000, .gid = 100});
        tb_add(t, &(struct tb_entry){.type = TB_REG, .path = "/abs/file", .data = "x", .size = 1});
        tb_file(t, "a/./b/../c", "dots");
        tb_finish(t, &buf, len);
        return buf;
}

static char *read_all(const struct img_entry *e)
{
        char *buf = malloc(e->size + 1);
        size_t done = 0;

        assert_non_null(buf);
        while (done < e->size) {
                ssize_t n = e->read(e->read_ctx, buf + done, e->size - done);

                assert_true(n > 0);
                done += (size_t)n;
        }
        buf[done] = '\0';
        return buf;
}

static void check_sample(enum tb_compression c)
{
        size_t plain_len, len;
        void *plain = build_sample(&plain_len), *blob;
        char blob_digest[OCI_DIGEST_SIZE], tar_digest[OCI_DIGEST_SIZE], diff_id[OCI_DIGEST_SIZE];
        struct oci_layer_reader *r;
        struct oci_tar_item it;
        struct oci_err e = {0};
        uint64_t tar_size;
        char *data;

        if (c == TB_PLAIN) {
                blob = malloc(plain_len);
                memcpy(blob, plain, plain_len);
                len = plain_len;
        } else {
                tb_compress(c, plain, plain_len, &blob, &len);
        }
        assert_int_equal(oci_sha256_buf(blob, len, blob_digest), 0);
        assert_int_equal(oci_sha256_buf(plain, plain_len, tar_digest), 0);
        assert_int_equal(oci_layer_open(-1, blob, len, blob_digest, NULL, &r, &e), 0);

        assert_int_equal(oci_layer_next(r, &it, &e), 1);
        assert_int_equal(it.entry.type, IMG_ENTRY_DIR);
        assert_string_equal(it.entry.path, "/");
        assert_int_equal(oci_layer_next(r, &it, &e), 1);
        assert_string_equal(it.entry.path, "/etc");
        assert_int_equal(it.entry.mode, 0755);
        assert_int_equal(oci_layer_next(r, &it, &e), 1);
        assert_string_equal(it.entry.path, "/etc/hostname");
        assert_int_equal(it.entry.type, IMG_ENTRY_REG);
        assert_int_equal(it.entry.size, 4);
        assert_int_equal(it.entry.mtime_ns, 1700000000123456789LL);
        data = read_all(&it.entry);
        assert_string_equal(data, "box\n");
        free(data);

        assert_int_equal(oci_layer_next(r, &it, &e), 1);
        assert_string_equal(it.entry.path, "/usr/bin/ping");
        assert_int_equal(it.entry.mode, 04755);
        assert_int_equal(it.entry.n_xattrs, 1);
        assert_string_equal(it.entry.xattrs[0].name, "security.capability");
        assert_int_equal(it.entry.xattrs[0].size, 4);
        assert_memory_equal(it.entry.xattrs[0].value, "\x01\x00\x00\x02", 4);
        /* data not read: skipped by the next call */

        assert_int_equal(oci_layer_next(r, &it, &e), 1);
        assert_int_equal(it.entry.type, IMG_ENTRY_SYMLINK);
        assert_string_equal(it.entry.path, "/bin");
        assert_string_equal(it.entry.target, "usr/bin");
        assert_int_equal(oci_layer_next(r, &it, &e), 1);
        assert_int_equal(it.entry.type, IMG_ENTRY_HARDLINK);
        assert_string_equal(it.entry.target, "/usr/bin/ping");
        assert_int_equal(oci_layer_next(r, &it, &e), 1);
        assert_int_equal(it.entry.type, IMG_ENTRY_CHR);
        assert_int_equal(it.entry.rdev_major, 1);
        assert_int_equal(it.entry.rdev_minor, 3);
        assert_int_equal(it.entry.mode, 0666);
        assert_int_equal(oci_layer_next(r, &it, &e), 1);
        assert_int_equal(it.entry.type, IMG_ENTRY_FIFO);
        assert_int_equal(it.entry.uid, 1000);
        assert_int_equal(it.entry.gid, 100);
        assert_int_equal(oci_layer_next(r, &it, &e), 1);
        assert_string_equal(it.entry.path, "/abs/file");
        assert_int_equal(oci_layer_next(r, &it, &e), 1);
        assert_string_equal(it.entry.path, "/a/c");
        assert_int_equal(oci_layer_next(r, &it, &e), 0);

        assert_int_equal(oci_layer_finish(r, diff_id, &tar_size, &e), 0);
        assert_string_equal(diff_id, tar_digest);
        assert_int_equal(tar_size, plain_len);
        oci_layer_free(r);
        free(plain);
        free(blob);
}

static void test_plain(void **state)
{
        check_sample(TB_PLAIN);
}

static void test_gzip(void **state)
{
        check_sample(TB_GZIP);
}

static void test_zstd(void **state)
{
        check_sample(TB_ZSTD);
}

static void test_whiteouts(void **state)
{
        struct tb *t = tb_new(TB_GZIP);
        struct oci_layer_reader *r;
        struct oci_tar_item it;
        struct oci_err e = {0};
        void *buf;
        size_t len;

        tb_file(t, "etc/.wh.passwd", "");
        tb_file(t, "var/cache/.wh..wh..opq", "");
        tb_file(t, ".wh..wh..opq", "");
        tb_file(t, "x/.wh..wh.plnk", "");
        tb_file(t, ".wh.top", "");
        tb_finish(t, &buf, &len);
        assert_int_equal(oci_layer_open(-1, buf, len, NULL, NULL, &r, &e), 0);
        assert_int_equal(oci_layer_next(r, &it, &e), 1);
        assert_int_equal(it.kind, OCI_TAR_WHITEOUT);
        assert_string_equal(it.entry.path, "/etc/passwd");
        assert_int_equal(oci_layer_next(r, &it, &e), 1);
        assert_int_equal(it.kind, OCI_TAR_OPAQUE);
        assert_string_equal(it.entry.path, "/var/cache");
        assert_int_equal(oci_layer_next(r, &it, &e), 1);
        assert_int_equal(it.kind, OCI_TAR_OPAQUE);
        assert_string_equal(it.entry.path, "/");
        /* the aufs link directory is skipped */
        assert_int_equal(oci_layer_next(r, &it, &e), 1);
        assert_int_equal(it.kind, OCI_TAR_WHITEOUT);
        assert_string_equal(it.entry.path, "/top");
        assert_int_equal(oci_layer_next(r, &it, &e), 0);
        assert_int_equal(oci_layer_finish(r, NULL, NULL, &e), 0);
        oci_layer_free(r);
        free(buf);
}

/* The first item of a one-entry layer, or the error of reading it. */
static int first_item(const struct tb_entry *te, struct oci_err *e)
{
        struct tb *t = tb_new(TB_PLAIN);
        struct oci_layer_reader *r;
        struct oci_tar_item it;
        void *buf;
        size_t len;
        int k;

        tb_add(t, te);
        tb_finish(t, &buf, &len);
        assert_int_equal(oci_layer_open(-1, buf, len, NULL, NULL, &r, e), 0);
        k = oci_layer_next(r, &it, e);
        oci_layer_free(r);
        free(buf);
        return k;
}

static void test_hostile_paths(void **state)
{
        struct oci_err e = {0};

        assert_int_equal(
                first_item(&(struct tb_entry){.type = TB_REG, .path = "../etc/passwd"}, &e),
                -EXDEV);
        assert_non_null(strstr(e.msg, "escapes the image"));
        assert_non_null(strstr(e.msg, "../etc/passwd"));
        assert_int_equal(first_item(&(struct tb_entry){.type = TB_REG, .path = "a/../../x"}, &e),
                         -EXDEV);
        assert_int_equal(first_item(&(struct tb_entry){.type = TB_REG, .path = "/../x"}, &e),
                         -EXDEV);
        assert_int_equal(first_item(&(struct tb_entry){.type = TB_HARDLINK,
                                                       .path = "x",
                                                       .target = "../../etc/shadow"},
                                    &e),
                         -EXDEV);
        assert_non_null(strstr(e.msg, "hard link target"));
        assert_int_equal(first_item(&(struct tb_entry){.type = TB_REG, .path = "d/.wh.."}, &e),
                         -EINVAL);
        /* a symlink may point anywhere: it is never followed */
        assert_int_equal(first_item(&(struct tb_entry){.type = TB_SYMLINK,
                                                       .path = "evil",
                                                       .target = "../../../../etc"},
                                    &e),
                         1);
}

static void test_corrupt_gzip(void **state)
{
        size_t plain_len, len;
        void *plain = build_sample(&plain_len), *blob;
        struct oci_layer_reader *r;
        struct oci_tar_item it;
        struct oci_err e = {0};
        int k = 0;

        tb_compress(TB_GZIP, plain, plain_len, &blob, &len);
        /* truncated: an error, never a silent end */
        if (oci_layer_open(-1, blob, len / 2, NULL, NULL, &r, &e) == 0) {
                while ((k = oci_layer_next(r, &it, &e)) > 0)
                        if (it.kind == OCI_TAR_ENTRY && it.entry.type == IMG_ENTRY_REG)
                                free(read_all(&it.entry));
                if (k == 0)
                        k = oci_layer_finish(r, NULL, NULL, &e);
                oci_layer_free(r);
        } else {
                k = -EBADMSG;
        }
        assert_int_equal(k, -EBADMSG);
        assert_true(e.msg[0] != '\0');

        /* a corrupt byte in the deflate stream */
        memset(&e, 0, sizeof(e));
        ((uint8_t *)blob)[len / 2] ^= 0xff;
        ((uint8_t *)blob)[len / 2 + 1] ^= 0x55;
        k = 0;
        if (oci_layer_open(-1, blob, len, NULL, NULL, &r, &e) == 0) {
                while ((k = oci_layer_next(r, &it, &e)) > 0)
                        ;
                if (k == 0)
                        k = oci_layer_finish(r, NULL, NULL, &e);
                oci_layer_free(r);
        } else {
                k = -EBADMSG;
        }
        assert_int_equal(k, -EBADMSG);

        /* not an archive at all */
        memset(&e, 0, sizeof(e));
        k = oci_layer_open(-1, "hello, world, this is not a tar", 31, NULL, NULL, &r, &e);
        if (k == 0) {
                k = oci_layer_next(r, &it, &e);
                oci_layer_free(r);
        }
        assert_int_equal(k, -EBADMSG);
        free(plain);
        free(blob);
}

static void test_digest_mismatch(void **state)
{
        size_t len;
        void *blob = build_sample(&len);
        struct oci_layer_reader *r;
        struct oci_tar_item it;
        struct oci_err e = {0};

        assert_int_equal(oci_layer_open(-1, blob, len,
                                        "sha256:0000000000000000000000000000000000000000000000000"
                                        "000000000000000",
                                        NULL, &r, &e),
                         0);
        while (oci_layer_next(r, &it, &e) > 0)
                ;
        assert_int_equal(oci_layer_finish(r, NULL, NULL, &e), -EBADMSG);
        assert_non_null(strstr(e.msg, "digest mismatch"));
        oci_layer_free(r);
        free(blob);
}

static void test_limits(void **state)
{
        struct oci_limits lim;
        struct tb *t = tb_new(TB_PLAIN);
        struct oci_layer_meta *m;
        struct oci_err e = {0};
        void *buf;
        size_t len;

        for (int i = 0; i < 5; i++) {
                char name[16];

                snprintf(name, sizeof(name), "f%d", i);
                tb_file(t, name, "0123456789");
        }
        tb_finish(t, &buf, &len);
        oci_limits_default(&lim);
        lim.max_entries = 4;
        assert_int_equal(oci_layer_scan(-1, buf, len, NULL, &lim, &m, &e), -E2BIG);
        assert_non_null(strstr(e.msg, "entries"));
        oci_limits_default(&lim);
        lim.max_file_bytes = 9;
        assert_int_equal(oci_layer_scan(-1, buf, len, NULL, &lim, &m, &e), -EFBIG);
        oci_limits_default(&lim);
        lim.max_total_bytes = 45;
        assert_int_equal(oci_layer_scan(-1, buf, len, NULL, &lim, &m, &e), -EFBIG);
        lim.max_total_bytes = 50;
        assert_int_equal(oci_layer_scan(-1, buf, len, NULL, &lim, &m, &e), 0);
        oci_layer_meta_free(m);
        free(buf);
}

static void test_sparse(void **state)
{
        static const uint64_t regions[] = {0, 4096, 1 << 20, 100, (3 << 20) - 10, 10};
        struct tb *t = tb_new(TB_GZIP);
        struct oci_layer_reader *r;
        struct oci_tar_item it;
        struct oci_err e = {0};
        uint8_t *got;
        size_t len, done = 0, want = 4096 + 100 + 10;
        void *buf;

        tb_add(t, &(struct tb_entry){.type = TB_REG,
                                     .path = "sparse",
                                     .size = 3 << 20,
                                     .sparse = regions,
                                     .n_sparse = 3});
        tb_file(t, "after", "ok");
        tb_finish(t, &buf, &len);
        assert_int_equal(oci_layer_open(-1, buf, len, NULL, NULL, &r, &e), 0);
        assert_int_equal(oci_layer_next(r, &it, &e), 1);
        assert_int_equal(it.entry.size, 3 << 20);
        assert_int_equal(it.entry.n_data_map, 3);
        assert_int_equal(it.entry.data_map[1].offset, 1 << 20);
        assert_int_equal(it.entry.data_map[1].length, 100);
        got = malloc(want);
        while (done < want) {
                ssize_t n = it.entry.read(it.entry.read_ctx, got + done, MIN(want - done, 333));

                assert_true(n > 0);
                done += (size_t)n;
        }
        assert_int_equal(it.entry.read(it.entry.read_ctx, got, 1), 0);
        for (size_t i = 0, off = 0; i < 3; i++) {
                for (uint64_t j = 0; j < regions[2 * i + 1]; j++)
                        if (got[off + j] != tb_pattern(regions[2 * i] + j))
                                fail_msg("region %zu byte %llu differs", i, (unsigned long long)j);
                off += regions[2 * i + 1];
        }
        free(got);
        assert_int_equal(oci_layer_next(r, &it, &e), 1);
        assert_string_equal(it.entry.path, "/after");
        assert_int_equal(oci_layer_next(r, &it, &e), 0);
        assert_int_equal(oci_layer_finish(r, NULL, NULL, &e), 0);
        oci_layer_free(r);
        free(buf);
}

static void test_scan_and_meta(void **state)
{
        struct tb *t = tb_new(TB_ZSTD);
        struct oci_layer_meta *m, *m2;
        struct oci_err e = {0};
        char *ser;
        size_t len, ser_len;
        void *buf;

        tb_dir(t, "d");
        tb_file(t, "d/f", "12345");
        tb_file(t, "x/y/z/file", "abc"); /* three implicit parents */
        tb_file(t, "x/y/other", "abc");  /* none new */
        tb_file(t, "d/.wh.gone", "");
        tb_file(t, "opq/.wh..wh..opq", "");
        tb_add(t, &(struct tb_entry){.type = TB_REG,
                                     .path = "raw\xff",
                                     .data = "z",
                                     .size = 1,
                                     .xattr_name = "user.k",
                                     .xattr_value = "v",
                                     .xattr_size = 1});
        tb_file(t, "\xff/.wh.name\x01", "");
        tb_finish(t, &buf, &len);
        assert_int_equal(oci_layer_scan(-1, buf, len, NULL, NULL, &m, &e), 0);
        assert_int_equal(m->usage.entries, 1 + 1 + 3 + 1 + 1 + 1);
        assert_int_equal(m->usage.dirs, 1 + 3);
        assert_int_equal(m->usage.files, 4);
        assert_int_equal(m->usage.data_bytes, 5 + 3 + 3 + 1);
        assert_int_equal(m->usage.xattr_inodes, 1);
        assert_int_equal(m->n_whiteouts, 2);
        assert_string_equal(m->whiteouts[0], "/d/gone");
        assert_string_equal(m->whiteouts[1], "/\xff/name\x01");
        assert_int_equal(m->n_opaques, 1);
        assert_string_equal(m->opaques[0], "/opq");

        assert_int_equal(oci_layer_meta_serialize(m, &ser, &ser_len), 0);
        assert_int_equal(oci_layer_meta_parse(ser, ser_len, &m2), 0);
        assert_string_equal(m2->diff_id, m->diff_id);
        assert_int_equal(m2->tar_size, m->tar_size);
        assert_memory_equal(&m2->usage, &m->usage, sizeof(m->usage));
        assert_int_equal(m2->n_whiteouts, 2);
        assert_string_equal(m2->whiteouts[1], "/\xff/name\x01");
        assert_string_equal(m2->opaques[0], "/opq");
        oci_layer_meta_free(m2);
        /* every truncation is refused */
        for (size_t cut = 0; cut < ser_len; cut++)
                assert_int_equal(oci_layer_meta_parse(ser, cut, &m2), -EBADMSG);
        assert_int_equal(oci_layer_meta_parse("msb-layer 1 sha256:x 1 2 3 4 5 6 7 0 0\n", 39, &m2),
                         -EBADMSG);
        free(ser);
        oci_layer_meta_free(m);
        free(buf);
}

static void test_empty(void **state)
{
        struct oci_layer_meta *m;
        struct oci_err e = {0};
        char digest[OCI_DIGEST_SIZE];

        assert_int_equal(oci_layer_scan(-1, "", 0, NULL, NULL, &m, &e), 0);
        assert_int_equal(m->usage.entries, 0);
        assert_int_equal(oci_sha256_buf("", 0, digest), 0);
        assert_string_equal(m->diff_id, digest);
        oci_layer_meta_free(m);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_plain),
                cmocka_unit_test(test_gzip),
                cmocka_unit_test(test_zstd),
                cmocka_unit_test(test_whiteouts),
                cmocka_unit_test(test_hostile_paths),
                cmocka_unit_test(test_corrupt_gzip),
                cmocka_unit_test(test_digest_mismatch),
                cmocka_unit_test(test_limits),
                cmocka_unit_test(test_sparse),
                cmocka_unit_test(test_scan_and_meta),
                cmocka_unit_test(test_empty),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
