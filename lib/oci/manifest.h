/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image manifests, indexes (manifest lists) and image configs, Docker v2
 * and OCI media types: parsers for what registries and archives hand us
 * (hostile: every field is checked, counts are capped) and writers for what
 * we produce (import, load, save).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "digest.h"
#include "lib/core/macro.h"
#include "err.h"

#define OCI_MT_OCI_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define OCI_MT_OCI_INDEX       "application/vnd.oci.image.index.v1+json"
#define OCI_MT_OCI_CONFIG      "application/vnd.oci.image.config.v1+json"
#define OCI_MT_OCI_LAYER       "application/vnd.oci.image.layer.v1.tar"
#define OCI_MT_OCI_LAYER_GZIP  "application/vnd.oci.image.layer.v1.tar+gzip"
#define OCI_MT_OCI_LAYER_ZSTD  "application/vnd.oci.image.layer.v1.tar+zstd"
#define OCI_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define OCI_MT_DOCKER_LIST     "application/vnd.docker.distribution.manifest.list.v2+json"
#define OCI_MT_DOCKER_CONFIG   "application/vnd.docker.container.image.v1+json"
#define OCI_MT_DOCKER_LAYER    "application/vnd.docker.image.rootfs.diff.tar.gzip"

/* The Accept header of a manifest request: every kind we can read. */
#define OCI_MANIFEST_ACCEPT                                                                        \
        OCI_MT_OCI_MANIFEST ", " OCI_MT_OCI_INDEX ", " OCI_MT_DOCKER_MANIFEST                      \
                            ", " OCI_MT_DOCKER_LIST

#define OCI_MANIFEST_MAX          (4u << 20) /* bytes of a manifest or an index */
#define OCI_CONFIG_MAX            (8u << 20) /* bytes of an image config */
#define OCI_LAYERS_MAX            256        /* layers of one image */
#define OCI_INDEX_MAX             1024       /* manifests of one index */
#define OCI_CONFIG_STRS           65536      /* Env, Cmd, Entrypoint entries */
#define OCI_ANNOTATION_REF        "org.opencontainers.image.ref.name"
#define OCI_ANNOTATION_CONTAINERD "io.containerd.image.name"

enum oci_doc_kind {
        OCI_DOC_MANIFEST,
        OCI_DOC_INDEX,
};

enum oci_compression {
        OCI_COMPRESSION_NONE,
        OCI_COMPRESSION_GZIP,
        OCI_COMPRESSION_ZSTD,
};

struct oci_platform {
        char *os;           /* "linux" */
        char *architecture; /* "amd64" */
        char *variant;      /* NULL or "v8", ... */
};

struct oci_descriptor {
        char *media_type;
        char digest[OCI_DIGEST_SIZE];
        uint64_t size;
        struct oci_platform platform; /* index entries only */
        char *ref_name;               /* annotation io.containerd.image.name, else
                                         org.opencontainers.image.ref.name */
};

struct oci_manifest {
        char *media_type;
        struct oci_descriptor config;
        struct oci_descriptor *layers;
        size_t n_layers;
};

struct oci_index {
        char *media_type;
        struct oci_descriptor *manifests;
        size_t n_manifests;
};

/* The parts of an image config that matter to us. Arrays are NULL when the
 * config does not set them (n_* 0); an empty array is a non-NULL pointer
 * with n_* 0. */
struct oci_image_config {
        char *architecture;
        char *os;
        char *variant;
        char *created; /* RFC 3339 or NULL */
        char **env;    /* "KEY=VALUE" */
        size_t n_env;
        char **entrypoint;
        size_t n_entrypoint;
        char **cmd;
        size_t n_cmd;
        char *working_dir;
        char *user;
        char *stop_signal;
        char **diff_ids; /* rootfs.diff_ids */
        size_t n_diff_ids;
};

/* What kind of document body is: by its mediaType field, else the HTTP
 * content type (may be NULL), else its shape. -EBADMSG when it is neither a
 * manifest nor an index (a schema 1 manifest, an artifact...) with a reason
 * in e. */
int oci_doc_kind(const char *body, size_t len, const char *content_type, enum oci_doc_kind *ret,
                 struct oci_err *e);

int oci_manifest_parse(const char *body, size_t len, struct oci_manifest **ret, struct oci_err *e);
void oci_manifest_free(struct oci_manifest *m);

int oci_index_parse(const char *body, size_t len, struct oci_index **ret, struct oci_err *e);
void oci_index_free(struct oci_index *idx);

/* The manifest of an index for os/architecture (variant NULL: any, the
 * first listed wins), or NULL. */
const struct oci_descriptor *oci_index_select(const struct oci_index *idx, const char *os,
                                              const char *architecture, const char *variant);

/* Lists the platforms of an index as "os/arch[/variant], ..." (malloc'd). */
char *oci_index_platforms(const struct oci_index *idx);

int oci_config_parse(const char *body, size_t len, struct oci_image_config **ret,
                     struct oci_err *e);
void oci_image_config_free(struct oci_image_config *c);

/* How a layer is compressed, from its media type: -EOPNOTSUPP for a media
 * type that is not a tar layer (foreign Windows layers, artifacts). */
int oci_layer_compression(const char *media_type, enum oci_compression *ret);

/* Writes an OCI image manifest (malloc'd JSON, NULL on OOM). */
char *oci_manifest_to_json(const struct oci_manifest *m);

/* An OCI image config for a single-layer image made on this host (import):
 * linux/amd64, created now (RFC 3339), the given diff_id, no command. */
char *oci_config_new_json(const char *diff_id, const char *created);

void oci_descriptor_clear(struct oci_descriptor *d);

DEFINE_FREEP(struct oci_manifest, oci_manifest_free)
DEFINE_FREEP(struct oci_index, oci_index_free)
DEFINE_FREEP(struct oci_image_config, oci_image_config_free)
