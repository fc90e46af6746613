#!/bin/sh
# Replays the committed seed corpora through the fuzz targets (no fuzzing):
#   tests/fuzz/replay.sh BUILD_DIR [TARGET...]
# BUILD_DIR was configured with CC=clang -Dfuzz=true. Every input of
# tests/fuzz/corpus/<target>/ runs once; any crash, sanitizer report or
# failed assertion makes the script fail.
set -eu

if [ $# -lt 1 ]; then
        echo "usage: $0 BUILD_DIR [TARGET...]" >&2
        exit 2
fi
build=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
[ $# -gt 0 ] || set -- fuzz-cbor fuzz-frame fuzz-json fuzz-proto fuzz-oci-json fuzz-tar fuzz-net-frame fuzz-net-tcp fuzz-dns fuzz-supervisor

status=0
for target in "$@"; do
        exe=$build/tests/fuzz/$target
        corpus=$here/corpus/$target
        if [ ! -x "$exe" ]; then
                echo "$target: $exe not built (configure with -Dfuzz=true)" >&2
                status=1
                continue
        fi
        if [ ! -d "$corpus" ] || [ -z "$(ls -A "$corpus")" ]; then
                echo "$target: no corpus in $corpus" >&2
                status=1
                continue
        fi
        # Files as arguments: each runs once and nothing is written back.
        if find "$corpus" -type f -print0 | xargs -0 "$exe" -runs=1 >"$build/$target-replay.log" 2>&1; then
                echo "$target: $(find "$corpus" -type f | wc -l) inputs ok"
        else
                echo "$target: FAILED, see $build/$target-replay.log" >&2
                tail -n 40 "$build/$target-replay.log" >&2
                status=1
        fi
done
exit $status
