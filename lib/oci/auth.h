/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Registry credentials and authentication challenges.
 *
 * Credentials come from, in order: `msb registry login` ($MSB_HOME/auth.json,
 * mode 0600, the same "auths" layout as Docker's and Podman's files), then
 * Docker's config ($DOCKER_CONFIG/config.json or ~/.docker/config.json):
 * the credential helper it names for the registry ("credHelpers", else
 * "credsStore"; credhelper.h), then its inline "auth" entries. Docker Hub
 * is found under any of its historical keys.
 *
 * Challenges are the WWW-Authenticate header of a 401 answer:
 * `Bearer realm="...",service="...",scope="..."` or `Basic realm="..."`.
 */
#pragma once

#include <stddef.h>

#include "lib/core/macro.h"

#define OCI_AUTH_FILE     "auth.json"
#define OCI_AUTH_FILE_MAX (1u << 20)

struct oci_cred {
        char *username;
        char *password;
};

void oci_cred_clear(struct oci_cred *c);

/* Credentials for registry ("docker.io", "localhost:5000"): 0, or -ENOENT.
 * A credential helper that was named but failed leaves a one-line note
 * (note_size bytes; "" otherwise) for the error a registry refusal gives. */
int oci_auth_lookup(const char *home, const char *registry, struct oci_cred *ret, char *note,
                    size_t note_size);

/* Stores (replacing) credentials for registry in $home/auth.json. */
int oci_auth_login(const char *home, const char *registry, const char *username,
                   const char *password);

/* Forgets them: -ENOENT when there were none. */
int oci_auth_logout(const char *home, const char *registry);

/* The registries with stored credentials and their user names (each a
 * NULL-terminated malloc'd array of malloc'd strings). */
int oci_auth_list(const char *home, char ***ret_registries, char ***ret_users, size_t *ret_n);

enum oci_auth_scheme {
        OCI_AUTH_NONE,
        OCI_AUTH_BASIC,
        OCI_AUTH_BEARER,
};

struct oci_challenge {
        enum oci_auth_scheme scheme;
        char *realm;
        char *service;
        char *scope;
};

/* Parses a WWW-Authenticate value: -EINVAL when malformed, -EOPNOTSUPP for
 * another scheme. The first supported challenge wins. */
int oci_challenge_parse(const char *header, struct oci_challenge *ret);
void oci_challenge_clear(struct oci_challenge *c);

/* "Basic base64(user:password)" (malloc'd), NULL on OOM. */
char *oci_auth_basic_header(const struct oci_cred *c);
