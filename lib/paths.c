/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: every lookup returns an owned string; nothing is
 * cached, so environment changes between calls (as tests make) are seen.
 */
#include "paths.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "lib/core/util.h"

static const struct {
        const char *env;
        const char *build_path;
        const char *file;
        const char *description;
} assets[ASSET_COUNT] = {
        [ASSET_KERNEL] = {"MSB_KERNEL", MSB_BUILD_KERNEL, "vmlinux", "guest kernel"},
        [ASSET_INITRAMFS] = {"MSB_INITRAMFS", MSB_BUILD_INITRAMFS, "initramfs.cpio", "initramfs"},
        [ASSET_BASE_IMAGE] = {"MSB_BASE_IMAGE", MSB_BUILD_BASE_IMAGE, "base.tar", "base image"},
};

const char *asset_description(enum asset a)
{
        return assets[a].description;
}

static int take_if_exists(char *path, char **ret)
{
        if (!path)
                return -ENOMEM;
        if (access(path, R_OK) == 0) {
                *ret = path;
                return 0;
        }
        free(path);
        return -ENOENT;
}

int paths_asset(enum asset a, char **ret)
{
        const char *env = getenv(assets[a].env);
        int r;

        if (env && *env) {
                r = take_if_exists(strdup(env), ret);
                if (r == -ENOENT)
                        *ret = strdup(env);
                return r;
        }
        if (take_if_exists(strdup(assets[a].build_path), ret) == 0)
                return 0;
        if (take_if_exists(strdup_printf("%s/%s", MSB_DATADIR, assets[a].file), ret) == 0)
                return 0;
        *ret = strdup(assets[a].build_path);
        return -ENOENT;
}

int paths_home(char **ret)
{
        const char *env = getenv("MSB_HOME");
        const char *home;
        char *p;

        if (env && *env) {
                p = strdup(env);
        } else {
                home = getenv("HOME");
                if (!home || !*home) {
                        struct passwd *pw = getpwuid(getuid());
                        home = pw ? pw->pw_dir : NULL;
                }
                if (!home)
                        return -ENOENT;
                p = strdup_printf("%s/.msb", home);
        }
        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
}

int paths_qemu(char **ret)
{
        static const char name[] = "qemu-system-x86_64";
        const char *env = getenv("MSB_QEMU");
        const char *path = getenv("PATH");
        _cleanup_free_ char *copy = NULL;
        char *dir, *save = NULL;

        if (env && *env) {
                *ret = strdup(env);
                if (!*ret)
                        return -ENOMEM;
                return access(env, X_OK) == 0 ? 0 : -ENOENT;
        }
        copy = strdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
        if (!copy)
                return -ENOMEM;
        for (dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
                char *candidate = strdup_printf("%s/%s", dir, name);
                if (!candidate)
                        return -ENOMEM;
                if (access(candidate, X_OK) == 0) {
                        *ret = candidate;
                        return 0;
                }
                free(candidate);
        }
        *ret = strdup(name);
        return -ENOENT;
}

int paths_supervisor(char **ret)
{
        const char *env = getenv("MSB_SUPERVISOR");

        if (env && *env) {
                *ret = strdup(env);
                if (!*ret)
                        return -ENOMEM;
                return access(env, X_OK) == 0 ? 0 : -ENOENT;
        }
        if (access(MSB_BUILD_SUPERVISOR, X_OK) == 0) {
                *ret = strdup(MSB_BUILD_SUPERVISOR);
                return *ret ? 0 : -ENOMEM;
        }
        *ret = strdup(MSB_LIBEXECDIR "/msb-sandbox");
        if (!*ret)
                return -ENOMEM;
        return access(*ret, X_OK) == 0 ? 0 : -ENOENT;
}
