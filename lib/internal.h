/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Definitions shared by the files that implement the public API
 * (config.c, sandbox.c, exec.c). Not installed.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "microsandbox.h"
#include "lib/proto/proto.h"

#define SANDBOX_NAME_MAX        128
#define SANDBOX_DEFAULT_MEM_MIB 512
#define SANDBOX_DEFAULT_CPUS    1
#define SANDBOX_DEFAULT_DISK    (4ULL << 30)
#define SANDBOX_MIN_MEM_MIB     64
#define SANDBOX_MAX_MEM_MIB     (1024u * 1024u)
#define SANDBOX_MAX_CPUS        64
#define SANDBOX_MIN_DISK        (64ULL << 20)
#define SANDBOX_MAX_DISK        (16ULL << 40)

/* The network settings of a sandbox, checked, with rules and ports in
 * their canonical text (what config.json records). */
struct sandbox_net {
        bool enabled;
        char *profile;      /* NULL: "public" */
        int default_egress; /* MSB_NET_DEFAULT, MSB_NET_DENY, MSB_NET_ALLOW */
        char **rules;
        size_t n_rules;
        char **dns;
        size_t n_dns;
        char **ports;
        size_t n_ports;
        uint32_t max_connections; /* 0: the gateway's default */
};

struct msb_sandbox_config {
        char *image;
        char *name; /* NULL: generated */
        uint32_t memory_mib;
        uint32_t cpus;
        char *accel; /* NULL: $MSB_ACCEL or auto */
        uint64_t root_disk_bytes;
        uint64_t boot_timeout_ms; /* 0: by accelerator */
        uint64_t idle_timeout_ms;
        uint64_t max_duration_ms;
        int cancel_fd;
        bool ephemeral;
        bool replace;
        const msb_pull_options *pull; /* borrowed; NULL: defaults */
        char **labels;                /* "KEY=VALUE", n_labels entries */
        size_t n_labels;
        struct sandbox_net net;
};

struct msb_exec_config {
        char **argv;
        size_t argc;
        char **env;
        size_t envc;
        char *cwd;
        char *user;
        bool tty;
        bool has_stdin;
        uint16_t rows, cols;
        struct proto_rlimit rlimits[PROTO_MAX_RLIMITS];
        size_t n_rlimits;
        uint64_t timeout_ms;
        bool detached;
        bool image_command;
        char *entrypoint; /* NULL: the image's */
};

/* 0 when name is 1-128 of [A-Za-z0-9_.-] starting with a letter or digit;
 * otherwise the API error set and -EINVAL. */
int sandbox_name_check(const char *name);

struct chan;
/* The agent channel of a sandbox (exec.c sends and receives through it). */
struct chan *sandbox_chan(msb_sandbox *sb);

/* Turns a channel failure into the API error: the VM exited (with the last
 * kernel log line), a malformed frame, or a host error. Returns r. */
int sandbox_fail_channel(msb_sandbox *sb, int r);

struct store;
struct sandbox_paths;
/* Stops the sandbox's supervisor (clean shutdown within timeout_ms, else
 * killed) with op.lock already held; returns once it is gone. */
int sandbox_stop_locked(struct store *st, const char *name, const struct sandbox_paths *p,
                        uint64_t timeout_ms);

struct image_defaults;
/* The image's defaults for commands (image-defaults.h). */
const struct image_defaults *sandbox_image_defaults(const msb_sandbox *sb);

/* The reference of the built-in base image in the image store. */
#define BUILTIN_BASE_REF "msb.local/base:latest"

/* Resolves the built-in base image, importing it into the store from the
 * build's tar first when the store lacks it or the tar changed. API error
 * set on failure. */
int images_resolve_builtin_base(char **ret_disk_path, msb_image_config **ret_config);
