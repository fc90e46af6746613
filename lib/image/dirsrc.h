/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host directory → ext4 image (`msb run ./rootfs`, `msb image import DIR`).
 */
#pragma once

#include <stdbool.h>

struct img_dir_opts {
        /* Files owned by the calling user (effective uid/gid) become 0:0,
         * like rootless podman's mapping; others keep their ids. When false
         * every uid/gid is kept exactly. */
        bool map_owner_to_root;
        const char *label; /* NULL or at most 16 bytes */
        bool writable;     /* add a journal and /lost+found */
};

/*
 * Builds a new image at out_path (which must not exist) from the tree under
 * dir: every file type, modes, owners, nanosecond times, extended attributes
 * (the namespaces img_ext4_xattr_supported() accepts; others are skipped),
 * hard links (by device and inode), sparse files kept sparse. opts may be
 * NULL for the defaults (ids kept, no label, read-only). Symlinks are
 * copied, never followed, and the walk never leaves dir (it does descend into
 * file systems mounted below it). The capacity comes from a pre-scan
 * (img_ext4_capacity()). On failure nothing is left at out_path, and when the
 * failure concerns one entry of the tree (it cannot be read, or cannot be
 * stored: -EACCES, -ENAMETOOLONG, -E2BIG, -ENOSPC, ...) *ret_bad_path, if
 * given, receives that host path (malloc'd) so the caller can say
 * "cannot read /x/y: Permission denied".
 */
int img_ext4_from_dir(const char *dir, const char *out_path, const struct img_dir_opts *opts,
                      char **ret_bad_path);

/*
 * Cheap plausibility check before img_ext4_from_dir(): 0 when dir looks like
 * a root filesystem, that is it has an /etc directory or a regular file with
 * an execute bit directly in /bin, /usr/bin or /sbin (symlinks are not
 * followed). -ENOTDIR when dir is not a directory, -ENOEXEC when it does not
 * look like a root filesystem, other -errno when it cannot be read.
 */
int img_dir_check_rootfs(const char *dir);
