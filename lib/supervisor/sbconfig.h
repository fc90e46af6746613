/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.json, the configuration of one sandbox (docs/supervisor.md,
 * "config.json"): written by the library at create, read here by the
 * supervisor at every start. The file may have been edited by hand, so the
 * parser checks every field it uses (type and range) and names the first
 * bad one; keys it does not use (labels, root_disk_bytes, ...) are ignored.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/net/net.h"

#define SBCONFIG_VERSION    1
#define SBCONFIG_MAX_BYTES  (1u << 20) /* the file is refused past this size */
#define SBCONFIG_DEF_MEMORY 512u

/* The "network" object, parsed into what the gateway takes. */
struct sbconfig_net {
        bool enabled; /* false: no NIC */
        struct net_policy policy;
        struct net_port *ports;
        size_t n_ports;
        struct sockaddr_in6 *dns; /* none: the host's resolvers */
        size_t n_dns;
        uint32_t max_connections; /* 0: the gateway's default */
};

struct sbconfig {
        char *name;
        char *image;      /* what the user named: "base", a path, a reference */
        char *base_disk;  /* absolute path of the read-only root image */
        char *upper_disk; /* absolute path of the writable layer, or NULL: none (tmpfs) */
        char *accel;      /* "auto", "kvm", "tcg", or NULL: not said ($MSB_ACCEL, else auto) */
        uint32_t memory_mib;
        uint32_t cpus;
        uint64_t boot_timeout_ms; /* 0: the accelerator's default */
        uint64_t idle_timeout_ms; /* 0: never */
        uint64_t max_duration_ms; /* 0: unlimited */
        bool ephemeral;
        struct sbconfig_net net;
};

/* Parses the text of config.json into ret (free with sbconfig_clear). 0, or
 * -EBADMSG with one line in errmsg saying what is wrong (e.g. "memory_mib
 * must be an integer from 64 to 1048576"; the caller names the file), or
 * -ENOMEM. */
int sbconfig_parse(const char *text, size_t len, struct sbconfig *ret, char *errmsg,
                   size_t errmsg_size);

void sbconfig_clear(struct sbconfig *c); /* frees the members */
