/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image archives: `msb save` writes, `msb load` reads, both formats.
 *
 *  - Docker (`docker save`): manifest.json ([{Config, RepoTags, Layers}]),
 *    <config hex>.json, <diff_id hex>.tar per layer, uncompressed, so that
 *    each layer file hashes to its diff_id as loaders expect.
 *  - OCI image layout: oci-layout, index.json (one entry per reference,
 *    annotated with org.opencontainers.image.ref.name and
 *    io.containerd.image.name), blobs/sha256/<hex> holding the manifests,
 *    configs and layers exactly as stored (digests unchanged).
 *
 * Loading reads the archive as one stream (a file or a pipe; it may itself
 * be gzip or zstd compressed): every file goes into the cache as a blob,
 * hashed on the way, so nothing is extracted to the host and an archive of
 * any size needs no extra space. The small JSON files are kept in memory.
 * Once the stream ends the images are assembled: Docker archives get an OCI
 * manifest made for them (layers may be plain, gzip or zstd); OCI layouts
 * keep theirs, and every blob must hash to the name it has in blobs/.
 * Blobs the archive brought that no image uses are dropped.
 */
#pragma once

#include <stddef.h>

#include "cache.h"
#include "err.h"
#include "layer.h"

enum oci_archive_format {
        OCI_ARCHIVE_DOCKER,
        OCI_ARCHIVE_OCI,
};

struct oci_archive_image {
        char *ref; /* canonical reference, or NULL when the archive names none */
        char manifest_digest[OCI_DIGEST_SIZE];
};

void oci_archive_images_free(struct oci_archive_image *imgs, size_t n);

/* Writes the images (refs[i] names manifests[i]; refs[i] may be NULL) as
 * one archive to fd. */
int oci_archive_save(const struct oci_cache *c, const char *const *refs,
                     const char *const *manifests, size_t n, enum oci_archive_format format,
                     const struct oci_limits *limits, int fd, struct oci_err *e);

/* Reads an archive from fd into the cache; the images it holds (one per
 * reference, or one per untagged manifest) go to ret. */
int oci_archive_load(const struct oci_cache *c, int fd, struct oci_archive_image **ret,
                     size_t *ret_n, struct oci_err *e);
