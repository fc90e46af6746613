#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the guest initramfs: an uncompressed cpio (newc) holding /init.

    mkinitramfs.py OUTPUT INIT

Written directly rather than with cpio(1) so that it needs no root: every
entry is owned by 0:0 with mtime 0 (reproducible), and /dev/console is a
character device (5:1) that the kernel opens as init's stdin/stdout/stderr.
The directories are the mount points the agent uses before its root exists.
"""

import os
import stat
import sys

DIRS = ["dev", "proc", "sys", "newroot", "msb"]


def header(ino, mode, nlink, size, name, rdev=(0, 0)):
    fields = [
        ino, mode, 0, 0, nlink, 0, size,  # ino mode uid gid nlink mtime filesize
        0, 0, rdev[0], rdev[1],           # devmajor devminor rdevmajor rdevminor
        len(name) + 1, 0,                 # namesize check
    ]
    return b"070701" + b"".join(b"%08X" % f for f in fields) + name.encode() + b"\0"


def pad(buf):
    return buf + b"\0" * (-len(buf) % 4)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    out, init = sys.argv[1], sys.argv[2]
    with open(init, "rb") as f:
        data = f.read()
    entries = []
    for ino, d in enumerate(DIRS, start=1):
        entries.append((header(ino, stat.S_IFDIR | 0o755, 2, 0, d), b""))
    ino = len(DIRS) + 1
    entries.append((header(ino, stat.S_IFCHR | 0o600, 1, 0, "dev/console", (5, 1)), b""))
    entries.append((header(ino + 1, stat.S_IFREG | 0o755, 1, len(data), "init"), data))
    entries.append((header(0, 0, 1, 0, "TRAILER!!!"), b""))
    blob = b"".join(pad(pad(h) + body) if body else pad(h) for h, body in entries)
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(blob)
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
