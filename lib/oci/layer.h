/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One image layer: a tar stream (plain, gzip or zstd) turned into the
 * entries of lib/image's ext4 writer, without touching the host file
 * system.
 *
 * Translation rules (each violation is an error naming the entry):
 *  - paths are cleaned lexically ("./a//b/../c" → "/a/c"); a path or hard
 *    link target that climbs above the root escapes the image and is
 *    refused; absolute paths are taken relative to the image root;
 *  - ".wh.NAME" is a whiteout (remove NAME from the layers below),
 *    ".wh..wh..opq" makes its directory opaque (empty it of what the layers
 *    below put there), other ".wh..wh.*" names (aufs bookkeeping) are
 *    skipped; whiteouts are returned as such, never as entries;
 *  - owners, modes with setuid/setgid/sticky, nanosecond times, devices,
 *    symlinks, hard links, sparse maps and extended attributes (the
 *    namespaces ext4 stores, security.capability included, but not
 *    trusted.overlay.*, which would confuse the guest's overlay) pass
 *    through as they are; device nodes only ever become image entries;
 *  - limits: entries per layer and bytes per file (struct oci_limits).
 *
 * The reader hashes both the compressed stream (checked against the blob
 * digest at the end) and the decompressed one (the layer's diff_id).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "digest.h"
#include "err.h"
#include "lib/core/macro.h"
#include "lib/image/ext4.h"

/* Caps on what one image may hold; a hostile layer stops at them. */
struct oci_limits {
        uint64_t max_entries;     /* entries of one image, whiteouts included */
        uint64_t max_file_bytes;  /* data bytes of one file */
        uint64_t max_total_bytes; /* data bytes of one image, all layers together */
};

#define OCI_DEFAULT_MAX_ENTRIES     (4u << 20)
#define OCI_DEFAULT_MAX_FILE_BYTES  (64ULL << 30)
#define OCI_DEFAULT_MAX_TOTAL_BYTES (256ULL << 30)

void oci_limits_default(struct oci_limits *l);

enum oci_tar_kind {
        OCI_TAR_ENTRY,    /* entry is an image entry */
        OCI_TAR_WHITEOUT, /* entry.path is to be removed from the layers below */
        OCI_TAR_OPAQUE,   /* entry.path is a directory to empty of the layers below */
};

struct oci_tar_item {
        enum oci_tar_kind kind;
        struct img_entry entry; /* valid until the next call on the reader */
};

struct oci_layer_reader;

/*
 * Reads a layer from fd (sequentially, from its current position) or, when
 * fd < 0, from the memory buffer mem. expected_digest (may be NULL) is
 * checked by oci_layer_finish().
 */
int oci_layer_open(int fd, const void *mem, size_t mem_len, const char *expected_digest,
                   const struct oci_limits *limits, struct oci_layer_reader **ret,
                   struct oci_err *e);

/* The next item: 1 with *ret filled, 0 at the end of the archive, -errno
 * with a message in e. A regular file's data is read through
 * ret->entry.read before the next call, or skipped. */
int oci_layer_next(struct oci_layer_reader *r, struct oci_tar_item *ret, struct oci_err *e);

/* After the last item: reads the rest of the stream and checks the
 * compressed digest (-EBADMSG on a mismatch). The diff_id (digest of the
 * decompressed stream) and its length go to the ret_* (may be NULL). */
int oci_layer_finish(struct oci_layer_reader *r, char ret_diff_id[OCI_DIGEST_SIZE],
                     uint64_t *ret_tar_size, struct oci_err *e);

/* When a read callback of an entry failed with -EBADMSG or -EIO: what the
 * decompressor or the tar parser said ("" when nothing). */
const char *oci_layer_errmsg(const struct oci_layer_reader *r);

void oci_layer_free(struct oci_layer_reader *r);

/* The decompressed stream of a layer blob (plain, gzip or zstd), for
 * writing it out again (docker archives hold uncompressed layers). */
struct oci_unpack;

int oci_unpack_open(int fd, struct oci_unpack **ret, struct oci_err *e);
/* Bytes read (0 at the end), or -EBADMSG with a message in e. */
ssize_t oci_unpack_read(struct oci_unpack *u, void *buf, size_t n, struct oci_err *e);
void oci_unpack_free(struct oci_unpack *u);

/* What a layer holds, found by one pass over it (oci_layer_scan()) and
 * cached next to the blob: enough to size the image and to apply the
 * layer's whiteouts before its entries. */
struct oci_layer_meta {
        char diff_id[OCI_DIGEST_SIZE];
        uint64_t tar_size;
        struct img_ext4_usage usage;
        char **whiteouts; /* paths to remove */
        size_t n_whiteouts;
        char **opaques; /* directories to empty */
        size_t n_opaques;
};

int oci_layer_scan(int fd, const void *mem, size_t mem_len, const char *expected_digest,
                   const struct oci_limits *limits, struct oci_layer_meta **ret, struct oci_err *e);
void oci_layer_meta_free(struct oci_layer_meta *m);

/* The cached form: a header line and the paths, NUL-terminated (paths are
 * bytes, not necessarily UTF-8). Parsing checks everything (-EBADMSG). */
int oci_layer_meta_serialize(const struct oci_layer_meta *m, char **ret, size_t *ret_len);
int oci_layer_meta_parse(const char *data, size_t len, struct oci_layer_meta **ret);

DEFINE_FREEP(struct oci_layer_reader, oci_layer_free)
DEFINE_FREEP(struct oci_unpack, oci_unpack_free)
DEFINE_FREEP(struct oci_layer_meta, oci_layer_meta_free)
