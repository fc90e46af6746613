/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test helper: builds tar layers in memory with libarchive's writer (pax
 * format, so that xattrs, long names, large and sparse files are all
 * expressible), plain or compressed, and compresses arbitrary bytes.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum tb_compression {
        TB_PLAIN,
        TB_GZIP,
        TB_ZSTD,
};

enum tb_type {
        TB_REG,
        TB_DIR,
        TB_SYMLINK,
        TB_HARDLINK,
        TB_CHR,
        TB_BLK,
        TB_FIFO,
};

struct tb_entry {
        enum tb_type type;
        const char *path;
        mode_t mode; /* 0: 0644 for files, 0755 for directories */
        uid_t uid;
        gid_t gid;
        const char *target; /* symlink target or hard link target */
        const void *data;   /* REG: the data (size bytes) or NULL for zeros */
        uint64_t size;
        unsigned rdev_major, rdev_minor;
        const char *xattr_name; /* one extended attribute, optional */
        const void *xattr_value;
        size_t xattr_size;
        /* REG sparse: regions (offset, length) pairs; data then holds the
         * regions' bytes one after the other (or NULL for a pattern) */
        const uint64_t *sparse;
        size_t n_sparse;
};

struct tb;

struct tb *tb_new(enum tb_compression c);
void tb_add(struct tb *t, const struct tb_entry *e);
/* Shorthands. */
void tb_file(struct tb *t, const char *path, const char *text);
void tb_dir(struct tb *t, const char *path);
/* Finishes the archive; the caller frees *ret. */
void tb_finish(struct tb *t, void **ret, size_t *ret_len);

/* Compresses bytes into a malloc'd buffer. */
void tb_compress(enum tb_compression c, const void *data, size_t len, void **ret, size_t *ret_len);

/* Writes a buffer to a new file. */
void tb_write_file(const char *path, const void *data, size_t len);

/* Byte i of the pattern the builder uses for NULL data. */
uint8_t tb_pattern(uint64_t i);
