/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `msb image import`: an image of one layer made from a root filesystem, a
 * host directory or a tar file (plain, gzip or zstd), like `docker import`.
 *
 * A tar is stored as the layer as it is. A directory is packed into an
 * uncompressed tar layer (pax: long names, xattrs, hard links, sparse
 * files), never following symlinks; files owned by the calling user become
 * root's when the caller is not root (map_owner_to_root), as rootless
 * Podman does. The image config is linux/amd64 with no command.
 */
#pragma once

#include <stdbool.h>

#include "cache.h"
#include "digest.h"
#include "err.h"
#include "layer.h"

/* Makes the image in the cache (manifest, config, layer) and checks its
 * layer; the manifest digest goes to ret_digest. */
int oci_import(const struct oci_cache *c, const char *path, bool map_owner_to_root,
               const struct oci_limits *limits, char ret_digest[OCI_DIGEST_SIZE],
               struct oci_err *e);
