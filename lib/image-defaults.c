/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: plain string vectors, copied in and out of the OCI
 * config and of JSON; the merging rules live where commands are built
 * (exec.c).
 */
#include "image-defaults.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void strv_free(char **v, size_t n)
{
        for (size_t i = 0; v && i < n; i++)
                free(v[i]);
        free(v);
}

void image_defaults_clear(struct image_defaults *d)
{
        strv_free(d->env, d->n_env);
        strv_free(d->entrypoint, d->n_entrypoint);
        strv_free(d->cmd, d->n_cmd);
        free(d->working_dir);
        free(d->user);
        *d = (struct image_defaults){0};
}

static int strv_copy(char *const *src, size_t n, char ***ret, size_t *ret_n)
{
        char **v;

        *ret = NULL;
        *ret_n = 0;
        if (n == 0)
                return 0;
        v = calloc(n + 1, sizeof(char *));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                v[i] = strdup(src[i] ? src[i] : "");
                if (!v[i]) {
                        strv_free(v, i);
                        return -ENOMEM;
                }
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static int dup_or_null(const char *s, char **ret)
{
        *ret = s && *s ? strdup(s) : NULL;
        return s && *s && !*ret ? -ENOMEM : 0;
}

int image_defaults_from_oci(const msb_image_config *c, struct image_defaults *ret)
{
        struct image_defaults d = {0};

        if (strv_copy(c->env, c->n_env, &d.env, &d.n_env) < 0 ||
            strv_copy(c->entrypoint, c->n_entrypoint, &d.entrypoint, &d.n_entrypoint) < 0 ||
            strv_copy(c->cmd, c->n_cmd, &d.cmd, &d.n_cmd) < 0 ||
            dup_or_null(c->working_dir, &d.working_dir) < 0 || dup_or_null(c->user, &d.user) < 0) {
                image_defaults_clear(&d);
                return -ENOMEM;
        }
        *ret = d;
        return 0;
}

int image_defaults_shell(struct image_defaults *ret)
{
        static char *const shell[] = {"/bin/sh"};

        *ret = (struct image_defaults){0};
        return strv_copy(shell, 1, &ret->cmd, &ret->n_cmd);
}

void image_defaults_write(struct json_writer *w, const struct image_defaults *d)
{
        json_begin_object(w);
        json_kv_strv(w, "env", d->env, d->n_env);
        json_kv_strv(w, "entrypoint", d->entrypoint, d->n_entrypoint);
        json_kv_strv(w, "cmd", d->cmd, d->n_cmd);
        json_kv_string(w, "working_dir", d->working_dir);
        json_kv_string(w, "user", d->user);
        json_end_object(w);
}

static int read_strv(const struct json_value *arr, char ***ret, size_t *ret_n)
{
        size_t n = json_count(arr);
        char **v;

        *ret = NULL;
        *ret_n = 0;
        if (!arr || arr->type != JSON_ARRAY || n == 0)
                return 0;
        v = calloc(n + 1, sizeof(char *));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                v[i] = strdup(json_string(json_at(arr, i), ""));
                if (!v[i]) {
                        strv_free(v, i);
                        return -ENOMEM;
                }
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

int image_defaults_read(const struct json_value *v, struct image_defaults *ret)
{
        struct image_defaults d = {0};

        if (read_strv(json_get(v, "env"), &d.env, &d.n_env) < 0 ||
            read_strv(json_get(v, "entrypoint"), &d.entrypoint, &d.n_entrypoint) < 0 ||
            read_strv(json_get(v, "cmd"), &d.cmd, &d.n_cmd) < 0 ||
            dup_or_null(json_string(json_get(v, "working_dir"), NULL), &d.working_dir) < 0 ||
            dup_or_null(json_string(json_get(v, "user"), NULL), &d.user) < 0) {
                image_defaults_clear(&d);
                return -ENOMEM;
        }
        *ret = d;
        return 0;
}
