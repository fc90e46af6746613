#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes a tar archive from an image manifest, with the owners and modes the
manifest gives (so no root is needed) and one timestamp for every entry:
$SOURCE_DATE_EPOCH, else the newest of the source files' (so the same inputs
give the same bytes, and the image the same digest).

Manifest lines (blank lines and # comments ignored):
    dir   PATH MODE UID GID          a directory
    file  PATH SRC MODE UID GID      a regular file copied from host file SRC
    slink PATH TARGET MODE UID GID   a symbolic link

usage: manifest-tar.py MANIFEST OUTPUT
"""
import os
import sys
import tarfile


def entry(path, kind, mode, uid, gid, mtime):
    ti = tarfile.TarInfo(path.lstrip("/") or ".")
    ti.type = kind
    ti.mode = int(mode, 8)
    ti.uid, ti.gid = int(uid), int(gid)
    ti.uname = ti.gname = ""
    ti.mtime = mtime
    return ti


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: manifest-tar.py MANIFEST OUTPUT")
    manifest, out = sys.argv[1:]
    lines = [l.split() for l in open(manifest)]
    sources = [f[2] for f in lines if len(f) == 6 and f[0] == "file"]
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH") or
                max((int(os.stat(p).st_mtime) for p in sources), default=0))
    tmp = out + ".tmp"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for n, line in enumerate(open(manifest), 1):
            f = line.split()
            if not f or f[0].startswith("#"):
                continue
            try:
                if f[0] == "dir" and len(f) == 5:
                    tar.addfile(entry(f[1], tarfile.DIRTYPE, *f[2:5], mtime))
                elif f[0] == "file" and len(f) == 6:
                    ti = entry(f[1], tarfile.REGTYPE, *f[3:6], mtime)
                    ti.size = os.path.getsize(f[2])
                    with open(f[2], "rb") as data:
                        tar.addfile(ti, data)
                elif f[0] == "slink" and len(f) == 6:
                    ti = entry(f[1], tarfile.SYMTYPE, *f[3:6], mtime)
                    ti.linkname = f[2]
                    tar.addfile(ti)
                else:
                    raise ValueError(f"unknown entry: {line.strip()}")
            except (OSError, ValueError) as err:
                os.unlink(tmp)
                sys.exit(f"manifest-tar: {manifest}:{n}: {err}")
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
