#!/usr/bin/env bash
# Builds the microsandbox guest kernel from Debian's linux-source-6.1 and the
# fragment microvm.config beside this script.
#
# The result is cached by content hash (fragment + this script + source
# version) under ${XDG_CACHE_HOME:-~/.cache}/microsandbox/kernel/<hash>/, so a
# machine builds each kernel once; a warm cache costs a hash and a symlink.
# Builds run in a scratch directory and are published by rename, under a lock,
# so concurrent or interrupted builds never leave a half-written kernel.
#
# usage: build.sh OUTPUT_LINK     (OUTPUT_LINK becomes a symlink to vmlinux)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build.sh OUTPUT_LINK}
src_tar=/usr/src/linux-source-6.1.tar.xz
fragment=$here/microvm.config

if [ ! -r "$src_tar" ]; then
        echo "kernel: $src_tar is missing; run 'make deps' (package linux-source-6.1)" >&2
        exit 1
fi

src_version=$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null || stat -c %s "$src_tar")
hash=$( { cat "$fragment" "$0"; echo "$src_version"; } | sha256sum | cut -c1-16)
cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/microsandbox/kernel
cache=$cache_root/$hash
mkdir -p "$cache_root" "$(dirname "$out")"

publish_link() {
        ln -sfn "$cache/vmlinux" "$out.tmp.$$"
        mv -f "$out.tmp.$$" "$out"
}

if [ -f "$cache/vmlinux" ]; then
        publish_link
        exit 0
fi

exec 9>"$cache_root/.lock"
if ! flock -n 9; then
        echo "kernel: another build is running; waiting for it"
        flock 9
fi
if [ -f "$cache/vmlinux" ]; then
        publish_link
        exit 0
fi

scratch=$(mktemp -d "$cache_root/build.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

jobs=$(($(nproc) + 1))
steps_file=$cache_root/steps
expected=$(cat "$steps_file" 2>/dev/null || echo 1300)
start=$(date +%s)

echo "kernel: building Linux $src_version for microsandbox (about 9 minutes on 2 cores; once per machine)"
echo "kernel: unpacking sources"
tar -C "$scratch" -xf "$src_tar"
ksrc=$scratch/linux-source-6.1

make -C "$ksrc" -s ARCH=x86_64 allnoconfig >/dev/null
KCONFIG_CONFIG=$ksrc/.config "$ksrc/scripts/kconfig/merge_config.sh" -m -O "$ksrc" \
        "$ksrc/.config" "$fragment" >"$scratch/config.log" 2>&1
make -C "$ksrc" -s ARCH=x86_64 olddefconfig >>"$scratch/config.log" 2>&1

# Every option of the fragment must have survived olddefconfig: a silently
# dropped option is a kernel that boots but lacks a feature.
missing=0
while IFS= read -r line; do
        case "$line" in ''|'#'*) continue ;; esac
        opt=${line%%=*}
        val=${line#*=}
        if [ "$val" = n ]; then
                grep -qx "$opt=y" "$ksrc/.config" && { echo "kernel: $opt should be off" >&2; missing=1; }
        else
                grep -qxF "$line" "$ksrc/.config" || { echo "kernel: $line did not apply" >&2; missing=1; }
        fi
done <"$fragment"
[ "$missing" = 0 ] || exit 1

# Progress: count compile steps against the count of the last build here.
tty=0
[ -t 1 ] && tty=1
steps=0
last_pct=-1
while IFS= read -r line; do
        case "$line" in
        "  CC "*|"  AS "*|"  LD "*|"  AR "*|"  GEN "*|"  HOSTCC "*) steps=$((steps + 1)) ;;
        *) continue ;;
        esac
        pct=$((steps * 100 / expected))
        [ "$pct" -gt 99 ] && pct=99
        [ "$pct" = "$last_pct" ] && continue
        elapsed=$(($(date +%s) - start))
        if [ "$tty" = 1 ]; then
                printf '\rkernel: compiling %3d%%  %d steps  %dm%02ds ' "$pct" "$steps" \
                        $((elapsed / 60)) $((elapsed % 60))
        elif [ $((pct % 10)) = 0 ]; then
                printf 'kernel: compiling %3d%%  %dm%02ds\n' "$pct" $((elapsed / 60)) $((elapsed % 60))
        fi
        last_pct=$pct
done < <(make -C "$ksrc" ARCH=x86_64 -j"$jobs" vmlinux 2>&1 | tee "$scratch/build.log")
[ "$tty" = 1 ] && echo
if [ ! -f "$ksrc/vmlinux" ]; then
        tail -n 30 "$scratch/build.log" >&2
        echo "kernel: build failed; the log above ends it" >&2
        exit 1
fi

mkdir -p "$scratch/out"
objcopy --strip-debug "$ksrc/vmlinux" "$scratch/out/vmlinux"
cp "$ksrc/.config" "$scratch/out/config"
echo "$steps" >"$steps_file"
rm -rf "$cache"
mv "$scratch/out" "$cache"
publish_link
elapsed=$(($(date +%s) - start))
echo "kernel: built $(du -h "$cache/vmlinux" | cut -f1) vmlinux in $((elapsed / 60))m$((elapsed % 60))s -> $cache"
