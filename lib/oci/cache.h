/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The content-addressed cache under $MSB_HOME/cache:
 *
 *   .lock                     shared by every user, exclusive for a sweep
 *   blobs/sha256/<hex>        manifests, configs, layers: verified content
 *   layers/<hex>.json         what a layer blob holds (lib/oci/layer.h)
 *   rootfs/<hex>.ext4         the flattened read-only disk of a manifest
 *   tmp/<hex>.part            a download in progress (resumable)
 *   tmp/<other>               anything else being written
 *   locks/<name>.lock         one flock per blob or rootfs being made
 *
 * Everything is published by rename() after verification, so a reader
 * either finds a complete, verified file or nothing. Processes coordinate
 * with flock(): a download or a build holds the lock of what it makes, so a
 * second process waits for it and then finds the result.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "digest.h"
#include "err.h"
#include "lib/core/macro.h"

struct oci_cache {
        int dir_fd;  /* $MSB_HOME/cache */
        int lock_fd; /* .lock */
        char *path;
};

/* Opens (creating) the cache of home and takes its lock, shared or, for a
 * sweep, exclusive (waiting for every other user to finish). */
int oci_cache_open(const char *home, bool exclusive, struct oci_cache **ret);
void oci_cache_close(struct oci_cache *c);

/* "blobs/sha256/<hex>" and friends, relative to the cache (malloc'd). */
char *oci_cache_blob_rel(const char *digest);
/* Absolute path of a cache entry (malloc'd). */
char *oci_cache_abs(const struct oci_cache *c, const char *rel);

/* Whether a blob is present (with this size, unless size is UINT64_MAX). */
bool oci_cache_has_blob(const struct oci_cache *c, const char *digest, uint64_t size);

/* Opens a blob for reading. -ENOENT when absent. */
int oci_cache_blob_open(const struct oci_cache *c, const char *digest, int *ret_fd);

/* Reads a small blob whole, checking it against its digest: -EBADMSG (and
 * the blob is deleted) on a mismatch, -E2BIG over max. */
int oci_cache_blob_read(const struct oci_cache *c, const char *digest, size_t max, char **ret,
                        size_t *ret_len);

/* Stores data as a blob; its digest goes to ret_digest. */
int oci_cache_blob_put(const struct oci_cache *c, const void *data, size_t len,
                       char ret_digest[OCI_DIGEST_SIZE]);

int oci_cache_blob_remove(const struct oci_cache *c, const char *digest);

/* Hashes a blob: 0 when it matches its digest, -EBADMSG (and the blob is
 * deleted) when it does not. */
int oci_cache_blob_verify(const struct oci_cache *c, const char *digest);

/* Takes locks/<name>.lock exclusively: waits when wait, else -EAGAIN when
 * someone else holds it. */
int oci_cache_lock(const struct oci_cache *c, const char *name, bool wait, int *ret_fd);

/* A small file of the cache (layers/x.json), read whole. */
int oci_cache_file_read(const struct oci_cache *c, const char *rel, size_t max, char **ret,
                        size_t *ret_len);
/* Writes a small file atomically (temporary file, rename). */
int oci_cache_file_write(const struct oci_cache *c, const char *rel, const void *data, size_t len);

/* Creates a temporary file under tmp/ for a result published later with
 * renameat(); its name relative to the cache goes to ret_rel. */
int oci_cache_tmpfile(const struct oci_cache *c, const char *prefix, int *ret_fd, char **ret_rel);

/*
 * Writing a blob of unknown or known content. With a digest, the writer
 * holds the blob's lock and writes tmp/<hex>.part, which survives a failure
 * for the next attempt to resume (offset > 0); without one (loading an
 * archive) it writes an anonymous temporary file. Data is hashed as it
 * comes; commit checks size and digest and publishes by rename. A writer
 * freed without commit keeps a resumable part (unless it failed
 * verification or had no digest) and releases the lock.
 */
struct oci_blob_writer;

/* expected_size UINT64_MAX: unknown. With a digest and the blob already
 * present (published meanwhile by another process), returns 0 with *ret
 * NULL. With a digest, waits for the blob's lock, or with nowait returns
 * -EAGAIN when another process holds it (is downloading it). */
int oci_blob_writer_open(const struct oci_cache *c, const char *digest, uint64_t expected_size,
                         bool nowait, struct oci_blob_writer **ret);
uint64_t oci_blob_writer_offset(const struct oci_blob_writer *w);
/* -EFBIG past the expected size. */
int oci_blob_writer_write(struct oci_blob_writer *w, const void *data, size_t n);
/* Discards what was written (the server ignored a range request). */
int oci_blob_writer_restart(struct oci_blob_writer *w);
/* Verifies and publishes; the digest goes to ret_digest (may be NULL).
 * -EBADMSG on a digest mismatch, -EPIPE when shorter than expected; the
 * part is then deleted. */
int oci_blob_writer_commit(struct oci_blob_writer *w, char ret_digest[OCI_DIGEST_SIZE]);
/* Also sends every byte written from now on to fd (a stream socket; the
 * writer does not own it), for a reader that scans the blob as it arrives.
 * A failed send (the reader went away) or a restart stops the copy. */
void oci_blob_writer_tee(struct oci_blob_writer *w, int fd);
/* Whether the tee got every byte of the blob. */
bool oci_blob_writer_tee_complete(const struct oci_blob_writer *w);

/* After a commit: whether the cache held that blob already. */
bool oci_blob_writer_existed(const struct oci_blob_writer *w);
void oci_blob_writer_free(struct oci_blob_writer *w);

DEFINE_FREEP(struct oci_cache, oci_cache_close)
DEFINE_FREEP(struct oci_blob_writer, oci_blob_writer_free)
