/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test helpers: run e2fsprogs (e2fsck, debugfs) on images we wrote and pick
 * fields out of their output. The library never uses these tools; the tests
 * use them as the independent judge of what the library wrote.
 */
#pragma once

#include <stdint.h>

/* e2fsck -fn IMAGE: its exit status (0 = clean). */
int e2fs_fsck(const char *image);

/* Output (stdout) of debugfs -R REQUEST IMAGE, malloc'd; never NULL. */
char *e2fs_debugfs(const char *image, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The number after "FIELD:" in debugfs stat output (Mode in octal, the rest
 * decimal), or -1 when absent. */
long long e2fs_field(const char *stat, const char *field);

/* Dumps a file of the image to a host path (debugfs dump). 0 on success. */
int e2fs_dump(const char *image, const char *path, const char *host_path);

/* A fresh directory under $TMPDIR or /tmp, malloc'd. */
char *e2fs_tmpdir(void);

/* Blocks the host really uses for a file, in bytes. */
uint64_t e2fs_disk_usage(const char *path);
