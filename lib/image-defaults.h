/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What an image says about running commands in it (OCI config: Env,
 * Entrypoint, Cmd, WorkingDir, User), kept with each sandbox in its
 * config.json ("image_config") and applied to every command started in it:
 * the image's environment under the command's own, its working directory
 * and user unless the command names others, and, for `run`, its
 * Entrypoint and Cmd the way Docker combines them.
 */
#pragma once

#include <stddef.h>

#include "microsandbox.h"
#include "lib/core/json.h"

struct image_defaults {
        char **env; /* "KEY=VALUE" */
        size_t n_env;
        char **entrypoint;
        size_t n_entrypoint;
        char **cmd;
        size_t n_cmd;
        char *working_dir; /* NULL: unset */
        char *user;        /* NULL: unset */
};

void image_defaults_clear(struct image_defaults *d);

/* From a pulled image's config. 0 or -ENOMEM. */
int image_defaults_from_oci(const msb_image_config *c, struct image_defaults *ret);

/* The defaults of images without a config (the built-in base image, host
 * directories): run /bin/sh. */
int image_defaults_shell(struct image_defaults *ret);

/* Writes {"env": [...], "entrypoint": [...], ...} as the current value. */
void image_defaults_write(struct json_writer *w, const struct image_defaults *d);

/* Reads what image_defaults_write() wrote; missing or mistyped fields are
 * unset. 0 or -ENOMEM. */
int image_defaults_read(const struct json_value *v, struct image_defaults *ret);
