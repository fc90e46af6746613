/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An image: a manifest, its config and its flattened rootfs, either pulled
 * from a registry (oci_pull) or taken from the cache by manifest digest
 * (oci_image_open). Everything is verified against its digest on the way
 * in and again when read back from the cache.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "layer.h"
#include "manifest.h"
#include "ref.h"
#include "registry.h"

#define OCI_OS   "linux"
#define OCI_ARCH "amd64"

struct oci_image {
        char manifest_digest[OCI_DIGEST_SIZE];
        struct oci_manifest *manifest;
        struct oci_image_config *config;
        char *rootfs;  /* absolute path, NULL unless materialised */
        uint64_t size; /* compressed: manifest + config + layers */
};

void oci_image_free(struct oci_image *img);

enum oci_pull_phase {
        OCI_PULL_RESOLVED,    /* the manifest is known: n_layers, digest */
        OCI_PULL_LAYER,       /* layer i: done of total bytes downloaded */
        OCI_PULL_LAYER_DONE,  /* layer i downloaded, or found (cached) */
        OCI_PULL_MATERIALIZE, /* layer i: done of total bytes flattened */
        OCI_PULL_COMPLETE,
};

struct oci_pull_event {
        enum oci_pull_phase phase;
        size_t layer;
        size_t n_layers;
        const char *digest; /* the layer's (or, when RESOLVED/COMPLETE, the manifest's) */
        uint64_t done;
        uint64_t total;
        bool cached;
};

typedef void (*oci_pull_event_fn)(void *userdata, const struct oci_pull_event *ev);

struct oci_pull_opts {
        struct oci_registry_opts registry;
        struct oci_limits limits;
        unsigned parallel; /* layer downloads at once; 0: 4 */
        bool materialize;  /* build the rootfs too */
        oci_pull_event_fn event;
        void *userdata;
};

/* Pulls ref (for linux/amd64) into the cache. -ENOEXEC when the image has
 * no linux/amd64 variant, other errors as in registry.h. */
int oci_pull(const struct oci_cache *c, const struct oci_ref *ref, const struct oci_pull_opts *o,
             struct oci_image **ret, struct oci_err *e);

/* An image whose manifest is in the cache; with materialize, its rootfs
 * is built when missing (a layer blob missing from the cache: -ENOENT). */
int oci_image_open(const struct oci_cache *c, const char *manifest_digest, bool materialize,
                   const struct oci_limits *limits, oci_pull_event_fn event, void *userdata,
                   struct oci_image **ret, struct oci_err *e);

DEFINE_FREEP(struct oci_image, oci_image_free)
