/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Materialisation: the layers of one manifest flattened into one read-only
 * ext4 image, cache/rootfs/<manifest hex>.ext4, shared by every sandbox of
 * that image.
 *
 * Each layer is scanned once (oci_layer_meta_get(), cached in
 * cache/layers/): its digest is verified, its diff_id and what it holds are
 * recorded, which sizes the image. The build then applies, layer by layer,
 * the layer's whiteouts and opaque directories (they only concern the
 * layers below, so applying them first is exact whatever their order in
 * the tar) and adds its entries; the blob digest is verified again as it
 * streams, and the diff_ids are checked against the image config.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "err.h"
#include "layer.h"
#include "manifest.h"

/* Progress of a build: layer i (0-based) of n, bytes of its blob read. */
typedef void (*oci_rootfs_progress_fn)(void *userdata, size_t layer, size_t n_layers, uint64_t done,
                                       uint64_t total);

/* The cached description of a layer blob, scanning it when missing. A
 * digest mismatch deletes the blob (-EBADMSG). */
int oci_layer_meta_get(const struct oci_cache *c, const char *digest, uint64_t size,
                       const struct oci_limits *limits, struct oci_layer_meta **ret,
                       struct oci_err *e);

/* Caches the description of a layer blob (from a scan made elsewhere). */
int oci_layer_meta_put(const struct oci_cache *c, const char *digest,
                       const struct oci_layer_meta *m);

/* Relative path of a manifest's rootfs in the cache (malloc'd). */
char *oci_rootfs_rel(const char *manifest_digest);

/*
 * Returns the path of the manifest's rootfs, building it when missing
 * (every layer blob must be in the cache). cfg (may be NULL) supplies the
 * diff_ids to check. Two processes building the same rootfs take turns;
 * the second finds the first one's result.
 */
int oci_rootfs_build(const struct oci_cache *c, const char *manifest_digest,
                     const struct oci_manifest *m, const struct oci_image_config *cfg,
                     const struct oci_limits *limits, oci_rootfs_progress_fn progress,
                     void *userdata, char **ret_path, struct oci_err *e);
