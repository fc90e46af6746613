/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The image index (schema: migration 2, docs/images.md): which manifest
 * each reference points at, what each manifest is made of (config, layers
 * in order) and the parts of each config that `msb image ls` and the
 * sandbox code need without reading blobs. The blobs themselves live in
 * $MSB_HOME/cache (lib/oci); this is only their index.
 *
 * Errors as in store.h: -ENOENT (no such reference or manifest), -EBUSY
 * (a manifest still referenced), -EIO, -EBADMSG.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct store_image_layer {
        const char *digest;
        const char *media_type;
        uint64_t size;
        const char *diff_id; /* may be NULL */
};

/* What store_image_put() records; strings are borrowed. The JSON fields
 * are arrays of strings as written by the caller, or NULL. */
struct store_image_manifest {
        const char *digest;
        const char *media_type;
        uint64_t size; /* manifest + config + layers, compressed */
        const char *config_digest;
        const char *os;
        const char *architecture;
        const char *created; /* RFC 3339 or NULL */
        const char *env_json;
        const char *entrypoint_json;
        const char *cmd_json;
        const char *working_dir;
        const char *user;
        const struct store_image_layer *layers;
        size_t n_layers;
};

/* Records a manifest (idempotent) and, when ref is not NULL, points ref at
 * it (replacing what ref pointed at). One transaction. */
int store_image_put(struct store *s, const char *ref, const struct store_image_manifest *m);

/* The manifest digest ref points at (malloc'd); -ENOENT. */
int store_image_resolve(struct store *s, const char *ref, char **ret_digest);

/* One row of `msb image ls`: a reference, or a manifest no reference
 * points at (ref NULL). */
struct store_image {
        char *ref;
        char *manifest_digest;
        char *config_digest;
        char *created; /* from the config; may be NULL */
        uint64_t size;
        uint32_t n_layers;
        int64_t updated_at; /* Unix ms: when ref was set (or the manifest added) */
};

void store_image_list_free(struct store_image *list, size_t n);

/* Every reference (newest first), then every manifest without one. */
int store_image_list(struct store *s, struct store_image **ret, size_t *ret_n);

/* The references pointing at a manifest (a NULL-terminated malloc'd
 * array of malloc'd strings; n may be 0). */
int store_image_refs_of(struct store *s, const char *manifest_digest, char ***ret, size_t *ret_n);

/* The blobs of a manifest: its config then its layers, in order (digests,
 * NULL-terminated malloc'd array). -ENOENT for an unknown manifest. */
int store_image_blobs_of(struct store *s, const char *manifest_digest, char ***ret, size_t *ret_n);

/* Removes a reference. -ENOENT when absent. */
int store_image_untag(struct store *s, const char *ref);

/* Forgets a manifest no reference points at, and the layers and config no
 * other manifest uses. -EBUSY when referenced, -ENOENT when unknown. */
int store_image_forget(struct store *s, const char *manifest_digest);
