/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: a thin wrapper over EVP so that callers hash streams
 * (downloads, decompressed layers) without knowing OpenSSL, and produce the
 * textual form used in manifests, file names and the index.
 */
#include "digest.h"

#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

bool oci_digest_valid(const char *s)
{
        if (!s || strncmp(s, OCI_DIGEST_PREFIX, 7) != 0 || strlen(s) != OCI_DIGEST_LEN)
                return false;
        for (const char *p = s + 7; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

int oci_sha256_init(struct oci_sha256 *h)
{
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();

        if (!ctx)
                return -ENOMEM;
        if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
                EVP_MD_CTX_free(ctx);
                return -ENOMEM;
        }
        h->ctx = ctx;
        return 0;
}

void oci_sha256_update(struct oci_sha256 *h, const void *data, size_t n)
{
        if (n)
                EVP_DigestUpdate(h->ctx, data, n);
}

void oci_sha256_final(struct oci_sha256 *h, char ret[OCI_DIGEST_SIZE])
{
        static const char hex[] = "0123456789abcdef";
        unsigned char md[32];
        unsigned int len = 0;

        EVP_DigestFinal_ex(h->ctx, md, &len);
        memcpy(ret, OCI_DIGEST_PREFIX, 7);
        for (unsigned i = 0; i < 32; i++) {
                ret[7 + 2 * i] = hex[md[i] >> 4];
                ret[8 + 2 * i] = hex[md[i] & 15];
        }
        ret[OCI_DIGEST_LEN] = '\0';
        EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL);
}

void oci_sha256_free(struct oci_sha256 *h)
{
        if (h && h->ctx) {
                EVP_MD_CTX_free(h->ctx);
                h->ctx = NULL;
        }
}

int oci_sha256_buf(const void *data, size_t n, char ret[OCI_DIGEST_SIZE])
{
        struct oci_sha256 h;
        int r = oci_sha256_init(&h);

        if (r < 0)
                return r;
        oci_sha256_update(&h, data, n);
        oci_sha256_final(&h, ret);
        oci_sha256_free(&h);
        return 0;
}
