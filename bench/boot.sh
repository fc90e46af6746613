#!/usr/bin/env bash
# Boot benchmark: `msb run base -- true` beside a bare QEMU boot of the same
# kernel to an /init that exits at once, measured in the same run; prints
# medians, the ratio, and the host memory (RSS) of msb and QEMU per sandbox.
# usage: bench/boot.sh [BUILD_DIR] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/bare"
musl-gcc -static -Os -o "$work/bare/init" bench/poweroff-init.c
(cd "$work/bare" && echo init | cpio --quiet -o -H newc -R 0:0 >"$work/bare.cpio")
MSB_HOME=$work/home /usr/bin/python3 bench/boot.py "$build" "$work/bare.cpio" "${2:-10}"
