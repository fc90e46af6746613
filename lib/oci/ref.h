/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image references, Docker style: [REGISTRY/]REPOSITORY[:TAG][@DIGEST].
 *
 * Normalisation: without a registry the image lives on Docker Hub
 * ("docker.io"), and a one-component Docker Hub repository is an official
 * image under "library/": "alpine" → docker.io/library/alpine:latest. The
 * first component names a registry when it holds a '.' or a ':', or is
 * "localhost". "index.docker.io" and "registry-1.docker.io" are folded into
 * "docker.io". Without a tag or a digest the tag is "latest".
 */
#pragma once

#include <stdbool.h>

#define OCI_REF_MAX  512 /* bytes of a whole reference */
#define OCI_NAME_MAX 255 /* registry + '/' + repository */
#define OCI_TAG_MAX  128

struct oci_ref {
        char *registry;   /* "docker.io", "ghcr.io", "localhost:5000", "[::1]:5000" */
        char *repository; /* "library/alpine" */
        char *tag;        /* NULL when only a digest was given */
        char *digest;     /* "sha256:..." or NULL */
};

/* Parses and normalises s into ret (cleared first). -EINVAL for a malformed
 * reference, -ENOMEM. */
int oci_ref_parse(const char *s, struct oci_ref *ret);
void oci_ref_clear(struct oci_ref *r);

/* "registry/repository" (malloc'd, NULL on OOM). */
char *oci_ref_name(const struct oci_ref *r);

/* The canonical form (malloc'd, NULL on OOM): "registry/repository:tag",
 * "registry/repository@digest", or both when both were given. */
char *oci_ref_string(const struct oci_ref *r);

/* The host to talk to for r's registry: Docker Hub's API lives on
 * registry-1.docker.io, every other registry on its own name. */
const char *oci_ref_api_host(const struct oci_ref *r);

/* Whether a registry name designates this machine (localhost, 127.0.0.0/8,
 * ::1, with or without a port): plain HTTP is then allowed. */
bool oci_registry_is_local(const char *registry);

/* Whether s is a valid tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}). */
bool oci_tag_valid(const char *s);
