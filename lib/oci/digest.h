/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Content digests: "sha256:" and 64 lowercase hex digits, the only algorithm
 * we accept (registries and archives in the wild use nothing else), and an
 * incremental SHA-256 over OpenSSL's EVP interface.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define OCI_DIGEST_PREFIX "sha256:"
#define OCI_DIGEST_HEX    64
#define OCI_DIGEST_LEN    (7 + OCI_DIGEST_HEX) /* without the NUL */
#define OCI_DIGEST_SIZE   (OCI_DIGEST_LEN + 1)

/* Whether s is "sha256:" followed by exactly 64 lowercase hex digits. */
bool oci_digest_valid(const char *s);

/* The hex part of a valid digest. */
static inline const char *oci_digest_hex(const char *digest)
{
        return digest + 7;
}

struct oci_sha256 {
        void *ctx; /* EVP_MD_CTX */
};

/* 0 or -ENOMEM. */
int oci_sha256_init(struct oci_sha256 *h);
void oci_sha256_update(struct oci_sha256 *h, const void *data, size_t n);
/* Writes "sha256:<hex>" into ret and resets h for reuse. */
void oci_sha256_final(struct oci_sha256 *h, char ret[OCI_DIGEST_SIZE]);
void oci_sha256_free(struct oci_sha256 *h);

/* The digest of a buffer. 0 or -ENOMEM. */
int oci_sha256_buf(const void *data, size_t n, char ret[OCI_DIGEST_SIZE]);
