/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ext4 image writer: turns a stream of filesystem entries (a host directory
 * walk today, OCI tar layers later) into an ext4 image file with libext2fs,
 * without root and without extracting anything to the host.
 *
 * Entries arrive in archive order. A regular file's data arrives through a
 * read callback as a stream of known size; a hard link names an earlier path;
 * an entry whose path exists replaces it, like tar extraction (a directory
 * over a directory keeps its children and takes the entry's mode, owner,
 * times and extended attributes); missing parent directories are created
 * (0755, 0:0, the writer's creation time). Paths are never resolved through
 * symlinks inside the image. Whiteouts are the caller's: img_ext4_remove() and
 * img_ext4_remove_children().
 *
 * Every function returns >= 0 on success and -errno on failure:
 *   -EINVAL        malformed entry (bad path, type, mode, device number...)
 *   -ENAMETOOLONG  path, name or symlink target over the limits below
 *   -ENOENT        hard link target missing
 *   -EPERM         hard link to a directory
 *   -EMLINK        hard link to an inode with IMG_LINK_MAX names
 *   -ENOTDIR       a parent component exists and is not a directory
 *   -ENOSPC        the image is full (blocks, inodes, or IMG_ENTRIES_MAX names)
 *   -E2BIG         too many or too large extended attributes
 *   -EOPNOTSUPP    extended attribute namespace ext4 cannot store
 *   -EFBIG         file larger than ext4 allows
 * Entry validation errors leave the image untouched and the writer usable:
 * the caller may skip the entry. Failures found while writing (I/O,
 * -ENOSPC, -E2BIG when attributes do not fit the inode and one block, a
 * failing read callback) may leave a half-written entry behind, so the
 * writer then refuses further work with the same error and the caller must
 * img_ext4_free() it, which deletes the file.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/core/macro.h"

#define IMG_EXT4_BLOCK_SIZE 4096
#define IMG_PATH_MAX        4095 /* bytes of a path inside the image */
#define IMG_NAME_MAX        255
#define IMG_SYMLINK_MAX     4095 /* one block minus the terminating NUL */
#define IMG_XATTR_NAME_MAX  255
#define IMG_XATTR_VALUE_MAX 65536
#define IMG_XATTRS_MAX      128        /* extended attributes per entry */
#define IMG_DATA_MAP_MAX    1048576    /* data regions per sparse file */
#define IMG_LINK_MAX        65000      /* hard links per inode */
#define IMG_ENTRIES_MAX     (1u << 24) /* names in one image, hard links included */

enum img_entry_type {
        IMG_ENTRY_REG,
        IMG_ENTRY_DIR,
        IMG_ENTRY_SYMLINK,
        IMG_ENTRY_HARDLINK,
        IMG_ENTRY_CHR,
        IMG_ENTRY_BLK,
        IMG_ENTRY_FIFO,
        IMG_ENTRY_SOCK,
};

struct img_xattr {
        const char *name; /* "user.x", "trusted.x", "security.capability", ... */
        const void *value;
        size_t size;
};

/* A region of a sparse file that holds data; everything else is a hole. */
struct img_extent {
        uint64_t offset;
        uint64_t length;
};

/*
 * Reads up to n bytes of file data into buf. Returns the number of bytes
 * read (> 0), 0 at a premature end (the entry fails with -EIO), or -errno.
 */
typedef ssize_t (*img_read_fn)(void *ctx, void *buf, size_t n);

struct img_entry {
        const char *path; /* inside the image; "/" optional, "." and "//" folded, ".." refused */
        enum img_entry_type type;
        mode_t mode; /* permission bits with setuid/setgid/sticky; file type bits ignored */
        uid_t uid;
        gid_t gid;
        int64_t atime_ns, mtime_ns, ctime_ns; /* ns since the epoch; ctime also gives crtime */
        uint32_t rdev_major, rdev_minor;      /* CHR, BLK */
        const char *target;                   /* SYMLINK: target; HARDLINK: an earlier path */
        const struct img_xattr *xattrs;
        size_t n_xattrs;

        /* REG only. The stream delivers exactly `size` bytes, or with a data
         * map, the bytes of its regions one after the other (sorted, not
         * overlapping, inside `size`). All-zero blocks are always left as
         * holes. */
        uint64_t size;
        const struct img_extent *data_map;
        size_t n_data_map;
        img_read_fn read;
        void *read_ctx;
};

struct img_ext4_params {
        uint64_t size_bytes; /* capacity, rounded down to whole blocks */
        uint64_t inodes;     /* 0: one per 16 KiB of capacity */
        const char *label;   /* NULL or at most 16 bytes */
        bool writable;       /* mounted read-write: add a journal and /lost+found */
        /* With writable: no journal, and no fsync at finish. For a disk that
         * is thrown away rather than recovered after a crash; the guest
         * mounts it faster. */
        bool scratch;
};

/* What a tree holds, for img_ext4_capacity(). */
struct img_ext4_usage {
        uint64_t entries;      /* names, hard links included */
        uint64_t dirs;         /* directories */
        uint64_t files;        /* regular files and symlinks of IMG_SYMLINK_INLINE or more bytes */
        uint64_t data_bytes;   /* file data (apparent size, or allocated size when smaller) */
        uint64_t name_bytes;   /* sum of name lengths */
        uint64_t xattr_inodes; /* entries with extended attributes */
};

/* Symlink targets this long or longer need a data block. */
#define IMG_SYMLINK_INLINE 60

struct img_ext4;

/*
 * Chooses capacity and inode count for a tree, for a read-only image sized
 * from a pre-scan: room for every block the tree needs plus slack (see the
 * theory of operation in ext4.c). -EFBIG when the tree is too big for us.
 */
int img_ext4_capacity(const struct img_ext4_usage *u, bool writable, uint64_t *ret_size,
                      uint64_t *ret_inodes);

/*
 * Creates a new sparse image file at path (which must not exist: -EEXIST)
 * holding an empty filesystem with a root directory (0755, 0:0). -ENOSPC
 * when the capacity is too small for a filesystem (or its journal), -EFBIG
 * over 16 TiB, -EINVAL for more inodes than blocks or a longer label.
 */
int img_ext4_create(const char *path, const struct img_ext4_params *p, struct img_ext4 **ret);

/* Whether ext4 can store an extended attribute of this name: "user.*",
 * "trusted.*", "security.*", "system.posix_acl_access" and
 * "system.posix_acl_default" (given in the kernel's xattr format). */
bool img_ext4_xattr_supported(const char *name);

/* Adds one entry; see the top of this file for the rules. */
int img_ext4_add(struct img_ext4 *w, const struct img_entry *e);

/* Removes path and, for a directory, everything below it. -ENOENT if absent;
 * "/" cannot be removed (-EINVAL): use img_ext4_remove_children(). */
int img_ext4_remove(struct img_ext4 *w, const char *path);

/* Empties directory path (an opaque directory whiteout). */
int img_ext4_remove_children(struct img_ext4 *w, const char *path);

/* Writes the directories and the metadata, syncs and closes the image. The
 * image is only valid after this returns 0. */
int img_ext4_finish(struct img_ext4 *w);

/* Frees the writer; deletes the image file unless img_ext4_finish() succeeded. */
void img_ext4_free(struct img_ext4 *w);

/*
 * Creates the writable upper disk of a sandbox: an empty sparse filesystem of
 * size_bytes with /lost+found and, unless scratch (see struct
 * img_ext4_params), a journal, writing only a few hundred kilobytes. path
 * must not exist.
 */
int img_ext4_create_empty(const char *path, uint64_t size_bytes, const char *label, bool scratch);

DEFINE_FREEP(struct img_ext4, img_ext4_free)
