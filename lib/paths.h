/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Where things are: $MSB_HOME (state), the guest assets (kernel, initramfs,
 * built-in images) and the QEMU binary.
 *
 * Assets are looked up in order: an environment override (MSB_KERNEL,
 * MSB_INITRAMFS, MSB_BASE_IMAGE; meant for development and tests), the build
 * tree this library was built in, then the installed data directory.
 */
#pragma once

enum asset {
        ASSET_KERNEL,
        ASSET_INITRAMFS,
        ASSET_BASE_IMAGE,
        ASSET_COUNT,
};

/* Human name of an asset: "guest kernel", "initramfs", "base image". */
const char *asset_description(enum asset a);

/* The asset's path: 0 when it exists; -ENOENT when it does not, with *ret
 * set to where it was expected (for the error message). */
int paths_asset(enum asset a, char **ret);

/* $MSB_HOME, or ~/.msb. */
int paths_home(char **ret);

/* The supervisor binary msb-sandbox: $MSB_SUPERVISOR, the build tree, or
 * the installed libexec directory. 0, or -ENOENT with *ret set to where it
 * was expected. */
int paths_supervisor(char **ret);

/* $MSB_QEMU, or qemu-system-x86_64 found on $PATH: 0, or -ENOENT with *ret
 * set to the name that was looked for. */
int paths_qemu(char **ret);
