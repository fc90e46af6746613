/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A client of the OCI distribution API (pull side) over libcurl: manifests
 * by tag or digest, blobs streamed into the cache with resume (Range) and
 * up to a few transfers at once, and the authentication dance of real
 * registries: anonymous, Basic, and the Bearer token flow (a 401 with a
 * WWW-Authenticate challenge sends us to a token server, with credentials
 * when we have some, and the token goes on every further request).
 *
 * Transport: HTTPS, certificates verified (plus --ca-certs). Plain HTTP
 * only for registries on this machine (localhost, 127.0.0.0/8, ::1) or with
 * insecure, and then only after HTTPS failed, as Docker does. A registry
 * that sends nothing for the stall timeout fails with -ETIMEDOUT. Redirects
 * (blob storage on another host) are followed, over HTTP(S) only, without
 * our Authorization header.
 *
 * Errors: -ENOENT (404), -EACCES (401/403 after authenticating), -EAGAIN
 * (429, rate limited), -ETIMEDOUT, -ECONNREFUSED, -EHOSTUNREACH, -EPROTO
 * (TLS), -EBADMSG (a digest or size that does not match), -ECANCELED (the
 * cancel fd), -EIO (anything else); each with a message naming the URL.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "digest.h"
#include "err.h"
#include "ref.h"

struct oci_registry_opts {
        const char *home;     /* $MSB_HOME, for stored credentials */
        bool insecure;        /* plain HTTP allowed and TLS not verified */
        const char *ca_certs; /* extra PEM bundle, or NULL */
        uint64_t timeout_ms;  /* stall timeout; 0: 30 s */
        const char *username; /* explicit credentials, or NULL */
        const char *password;
        int cancel_fd; /* readable: abort (-ECANCELED); -1: none */
};

struct oci_registry;

/* A client for ref's registry and repository (an empty repository for a
 * bare oci_registry_ping()). */
int oci_registry_new(const struct oci_ref *ref, const struct oci_registry_opts *o,
                     struct oci_registry **ret, struct oci_err *e);
void oci_registry_free(struct oci_registry *r);

/* GET /v2/ with authentication: whether we may talk to the registry (used
 * by `msb registry login` to check credentials). */
int oci_registry_ping(struct oci_registry *r, struct oci_err *e);

/*
 * A manifest or index by tag or digest. The body (at most
 * OCI_MANIFEST_MAX bytes), its content type and its digest (checked
 * against reference when that is a digest, and against the
 * Docker-Content-Digest header when the registry sends one).
 */
int oci_registry_get_manifest(struct oci_registry *r, const char *reference, char **ret_body,
                              size_t *ret_len, char **ret_content_type,
                              char ret_digest[OCI_DIGEST_SIZE], struct oci_err *e);

/* A small blob (a config) into memory, verified. */
int oci_registry_get_small_blob(struct oci_registry *r, const char *digest, size_t max,
                                char **ret_body, size_t *ret_len, struct oci_err *e);

struct oci_blob_req {
        const char *digest;
        uint64_t size;
        struct oci_blob_writer *w; /* opened by the caller; offset = where to resume */
        int result;                /* out: 0 once committed, or -errno */
};

/* Progress of blob i: done of total bytes. */
typedef void (*oci_blob_progress_fn)(void *userdata, size_t i, uint64_t done, uint64_t total);

/*
 * Downloads blobs into their writers, up to parallel at once, and commits
 * each (digest and size verified). Returns 0 when all succeeded, else the
 * first failure (message in e, naming the blob); the other transfers are
 * stopped and their parts kept for resuming.
 */
int oci_registry_get_blobs(struct oci_registry *r, struct oci_blob_req *reqs, size_t n,
                           unsigned parallel, oci_blob_progress_fn progress, void *userdata,
                           struct oci_err *e);

DEFINE_FREEP(struct oci_registry, oci_registry_free)
