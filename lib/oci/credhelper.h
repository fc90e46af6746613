/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Docker credential helpers: the programs docker-credential-NAME that keep
 * registry passwords in a keychain instead of in config.json ("credsStore"
 * and "credHelpers" there name them). Only "get" is spoken.
 */
#pragma once

#include <stddef.h>

#include "auth.h"

#define OCI_CREDHELPER_TIMEOUT_MS 60000
#define OCI_CREDHELPER_OUT_MAX    (64u * 1024)

/* The credentials docker-credential-<name> keeps for server (a registry
 * host, or Docker Hub's "https://index.docker.io/v1/"), asked with a limit
 * of timeout_ms (OCI_CREDHELPER_TIMEOUT_MS). 0, or:
 *   -ENOENT     it keeps none (or only an identity token, which only
 *               Docker's own OAuth flow can use);
 *   -EINVAL     name is not a plain program name;
 *   -ENOPKG     no such program on PATH;
 *   -ETIMEDOUT  no answer in time (it is killed);
 *   -EBADMSG    an answer that is not the protocol's JSON;
 *   -EIO        it failed; why holds the first line it printed.
 * why (why_size bytes) gets a one-line reason with every error. */
int oci_credhelper_get(const char *name, const char *server, unsigned timeout_ms,
                       struct oci_cred *ret, char *why, size_t why_size);
