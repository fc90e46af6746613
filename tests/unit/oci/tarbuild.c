/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: libarchive's writer with a write callback that
 * appends to a growable buffer; data is streamed in 64 KiB pieces so that
 * large (sparse) entries do not need their bytes in memory.
 */
#include "tarbuild.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

struct tb {
        struct archive *a;
        uint8_t *buf;
        size_t len, cap;
};

uint8_t tb_pattern(uint64_t i)
{
        return (uint8_t)((i * 2654435761u) >> 13) | 1;
}

static la_ssize_t tb_write(struct archive *a, void *userdata, const void *data, size_t n)
{
        struct tb *t = userdata;

        if (t->len + n > t->cap) {
                t->cap = (t->len + n) * 2;
                t->buf = realloc(t->buf, t->cap);
                assert_non_null(t->buf);
        }
        memcpy(t->buf + t->len, data, n);
        t->len += n;
        return (la_ssize_t)n;
}

static void add_filter(struct archive *a, enum tb_compression c)
{
        if (c == TB_GZIP)
                assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
        else if (c == TB_ZSTD)
                assert_int_equal(archive_write_add_filter_zstd(a), ARCHIVE_OK);
}

struct tb *tb_new(enum tb_compression c)
{
        struct tb *t = calloc(1, sizeof(*t));

        assert_non_null(t);
        t->a = archive_write_new();
        assert_int_equal(archive_write_set_format_pax(t->a), ARCHIVE_OK);
        add_filter(t->a, c);
        assert_int_equal(archive_write_set_bytes_in_last_block(t->a, 1), ARCHIVE_OK);
        assert_int_equal(archive_write_open2(t->a, t, NULL, tb_write, NULL, NULL), ARCHIVE_OK);
        return t;
}

static void write_data(struct archive *a, const uint8_t *data, uint64_t len, uint64_t pat_off)
{
        static uint8_t chunk[65536];

        for (uint64_t done = 0; done < len;) {
                size_t n = (size_t)(len - done < sizeof(chunk) ? len - done : sizeof(chunk));

                if (data) {
                        assert_int_equal(archive_write_data(a, data + done, n), (la_ssize_t)n);
                } else {
                        for (size_t i = 0; i < n; i++)
                                chunk[i] = tb_pattern(pat_off + done + i);
                        assert_int_equal(archive_write_data(a, chunk, n), (la_ssize_t)n);
                }
                done += n;
        }
}

static void write_zeros(struct archive *a, uint64_t len)
{
        static const uint8_t zeros[65536];

        for (uint64_t done = 0; done < len;) {
                size_t n = (size_t)(len - done < sizeof(zeros) ? len - done : sizeof(zeros));

                assert_int_equal(archive_write_data(a, zeros, n), (la_ssize_t)n);
                done += n;
        }
}

void tb_add(struct tb *t, const struct tb_entry *e)
{
        struct archive_entry *ae = archive_entry_new();
        static const int types[] = {
                [TB_REG] = AE_IFREG,      [TB_DIR] = AE_IFDIR, [TB_SYMLINK] = AE_IFLNK,
                [TB_HARDLINK] = AE_IFREG, [TB_CHR] = AE_IFCHR, [TB_BLK] = AE_IFBLK,
                [TB_FIFO] = AE_IFIFO,
        };
        mode_t mode = e->mode ? e->mode : e->type == TB_DIR ? 0755 : 0644;

        archive_entry_set_pathname(ae, e->path);
        archive_entry_set_filetype(ae, (unsigned)types[e->type]);
        archive_entry_set_perm(ae, mode);
        archive_entry_set_uid(ae, e->uid);
        archive_entry_set_gid(ae, e->gid);
        archive_entry_set_mtime(ae, 1700000000, 123456789);
        if (e->type == TB_SYMLINK)
                archive_entry_set_symlink(ae, e->target);
        if (e->type == TB_HARDLINK) {
                archive_entry_set_hardlink(ae, e->target);
                archive_entry_set_size(ae, 0);
        }
        if (e->type == TB_CHR || e->type == TB_BLK) {
                archive_entry_set_rdevmajor(ae, e->rdev_major);
                archive_entry_set_rdevminor(ae, e->rdev_minor);
        }
        if (e->xattr_name)
                archive_entry_xattr_add_entry(ae, e->xattr_name, e->xattr_value, e->xattr_size);
        if (e->type == TB_REG) {
                archive_entry_set_size(ae, (la_int64_t)e->size);
                for (size_t i = 0; i < e->n_sparse; i++)
                        archive_entry_sparse_add_entry(ae, (la_int64_t)e->sparse[2 * i],
                                                       (la_int64_t)e->sparse[2 * i + 1]);
        }
        assert_true(archive_write_header(t->a, ae) >= ARCHIVE_WARN);
        if (e->type == TB_REG) {
                if (e->n_sparse) {
                        /* the writer takes the whole logical file and keeps
                         * the bytes of the regions */
                        uint64_t pos = 0, off = 0;

                        for (size_t i = 0; i < e->n_sparse; i++) {
                                write_zeros(t->a, e->sparse[2 * i] - pos);
                                write_data(t->a, e->data ? (const uint8_t *)e->data + off : NULL,
                                           e->sparse[2 * i + 1], e->sparse[2 * i]);
                                off += e->sparse[2 * i + 1];
                                pos = e->sparse[2 * i] + e->sparse[2 * i + 1];
                        }
                        write_zeros(t->a, e->size - pos);
                } else {
                        write_data(t->a, e->data, e->size, 0);
                }
        }
        archive_entry_free(ae);
}

void tb_file(struct tb *t, const char *path, const char *text)
{
        tb_add(t, &(struct tb_entry){
                          .type = TB_REG, .path = path, .data = text, .size = strlen(text)});
}

void tb_dir(struct tb *t, const char *path)
{
        tb_add(t, &(struct tb_entry){.type = TB_DIR, .path = path});
}

void tb_finish(struct tb *t, void **ret, size_t *ret_len)
{
        assert_int_equal(archive_write_close(t->a), ARCHIVE_OK);
        archive_write_free(t->a);
        *ret = t->buf;
        *ret_len = t->len;
        free(t);
}

void tb_compress(enum tb_compression c, const void *data, size_t len, void **ret, size_t *ret_len)
{
        struct tb *t = calloc(1, sizeof(*t));
        struct archive_entry *ae = archive_entry_new();

        assert_non_null(t);
        t->a = archive_write_new();
        assert_int_equal(archive_write_set_format_raw(t->a), ARCHIVE_OK);
        add_filter(t->a, c);
        assert_int_equal(archive_write_set_bytes_in_last_block(t->a, 1), ARCHIVE_OK);
        assert_int_equal(archive_write_open2(t->a, t, NULL, tb_write, NULL, NULL), ARCHIVE_OK);
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_size(ae, (la_int64_t)len);
        assert_true(archive_write_header(t->a, ae) >= ARCHIVE_WARN);
        write_data(t->a, data, len, 0);
        archive_entry_free(ae);
        tb_finish(t, ret, ret_len);
}

void tb_write_file(const char *path, const void *data, size_t len)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, len), (ssize_t)len);
        close(fd);
}
