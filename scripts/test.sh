#!/usr/bin/env bash
# The whole test suite, in the order that fails fastest:
#   1. formatting;
#   2. unit tests (cmocka) of the main build;
#   3. the same unit tests under AddressSanitizer + UndefinedBehaviorSanitizer;
#   4. the fuzz corpora replayed by libFuzzer builds (clang);
#   5. the network gateway against the host kernel's TCP/IP (netns + TAP);
#   6. end-to-end tests booting real VMs (pytest; TCG on hosts without KVM);
#   7. images against a real registry.
# usage: test.sh BUILD BUILD_ASAN BUILD_FUZZ
set -euo pipefail
cd "$(dirname "$0")/.."
build=$1 asan=$2 fuzz=$3

step() { printf '\n=== %s\n' "$*"; }

step "format (clang-format)"
scripts/check-format.sh

step "unit tests"
meson test -C "$build" --print-errorlogs --no-suite fuzz --no-suite netns

step "unit tests under ASan + UBSan"
[ -f "$asan/build.ninja" ] ||
        meson setup "$asan" -Db_sanitize=address,undefined -Db_lundef=false -Dkernel=false >/dev/null
ninja -C "$asan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        meson test -C "$asan" --print-errorlogs --no-suite fuzz --no-suite netns

step "fuzz corpora replay (libFuzzer)"
[ -f "$fuzz/build.ninja" ] ||
        CC=clang meson setup "$fuzz" -Dfuzz=true -Dkernel=false -Dagent=false >/dev/null
ninja -C "$fuzz"
meson test -C "$fuzz" --print-errorlogs --suite fuzz

step "network gateway against the host kernel (netns + TAP)"
meson test -C "$build" --print-errorlogs --suite netns

step "end-to-end (real VMs)"
export MSB_BUILD=$(cd "$build" && pwd)
/usr/bin/python3 -m pytest -q tests/integration

step "images against a real registry (docker-registry on 127.0.0.1)"
/usr/bin/python3 -m pytest -q tests/registry

printf '\nall tests passed\n'
