#!/usr/bin/env bash
# Pull benchmark: `msb pull` of a multi-layer image (>= 100 MB, many small
# files) from a local docker-registry, beside `skopeo copy` + `umoci unpack`
# of the same image in the same run. Prints the medians of RUNS runs, the
# ratio, the time to rebuild the root disk of an image already downloaded,
# and the disk used per image and per extra sandbox.
# usage: bench/pull.sh [BUILD_DIR] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
runs=${2:-3}
for tool in docker-registry skopeo umoci python3; do
        command -v "$tool" >/dev/null || { echo "pull.sh: $tool is missing (make deps)" >&2; exit 2; }
done
msb=${MSB:-$build/cmd/msb/msb}
[ -x "$msb" ] || { echo "pull.sh: $msb is missing (make)" >&2; exit 2; }

work=$(mktemp -d)
reg_pid=
cleanup() {
        if [ -n "$reg_pid" ]; then
                kill "$reg_pid" 2>/dev/null || true
                wait "$reg_pid" 2>/dev/null || true # killed: 143
        fi
        rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/registry.yml" <<EOC
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
EOC
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
        sleep 0.1
done

# The image: 4 layers of small text-like files (1-16 KiB), a few larger
# files, a whiteout and an opaque directory; gzip like most registries.
python3 - "$work/layout" <<'EOP'
import gzip, hashlib, io, json, os, random, sys, tarfile
out = sys.argv[1]
os.makedirs(f"{out}/blobs/sha256")
rng = random.Random(42)
words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
         for _ in range(5000)]
def text(n):
    parts, size = [], 0
    while size < n:
        w = rng.choice(words); parts.append(w); size += len(w) + 1
    return b" ".join(parts)[:n]
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    open(f"{out}/blobs/sha256/{d}", "wb").write(data)
    return {"digest": "sha256:" + d, "size": len(data)}
layers, diff_ids = [], []
for l in range(4):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        def add(name, data):
            ti = tarfile.TarInfo(name); ti.size = len(data); ti.mtime = 1700000000
            t.addfile(ti, io.BytesIO(data))
        for i in range(6000):
            add(f"usr/share/l{l}/d{i % 97}/f{i}.txt", text(rng.randint(1024, 16384)))
        for i in range(3):
            add(f"opt/l{l}/big{i}.bin", os.urandom(2 << 20))
        if l == 3:
            add("usr/share/l0/d0/.wh.f0.txt", b"")
            add("usr/share/l1/d1/.wh..wh..opq", b"")
    tar = buf.getvalue()
    diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
    d = blob(gzip.compress(tar, compresslevel=6, mtime=0))
    d["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
    layers.append(d)
    print(f"layer {l + 1}: {len(tar) >> 20} MiB tar, {d['size'] >> 20} MiB gzip", file=sys.stderr)
cfg = blob(json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                       "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode())
cfg["mediaType"] = "application/vnd.oci.image.config.v1+json"
m = blob(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                     "config": cfg, "layers": layers}).encode())
m["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
m["annotations"] = {"org.opencontainers.image.ref.name": "big"}
json.dump({"schemaVersion": 2, "manifests": [m]}, open(f"{out}/index.json", "w"))
open(f"{out}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
EOP
ref=127.0.0.1:$port/bench/big:big
skopeo copy --quiet --dest-tls-verify=false "oci:$work/layout:big" "docker://$ref"

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
msb_times=() peer_times=() rebuild_times=()
for i in $(seq "$runs"); do
        home=$work/home-$i
        t0=$(now)
        MSB_HOME=$home "$msb" pull -q "$ref" >/dev/null
        t1=$(now)
        msb_times+=("$(echo "$t1 - $t0" | bc)")

        # the root disk again, from the blobs already here
        rm -f "$home"/cache/rootfs/*.ext4
        t0=$(now)
        MSB_HOME=$home "$msb" pull -q "$ref" >/dev/null
        t1=$(now)
        rebuild_times+=("$(echo "$t1 - $t0" | bc)")

        peer=$work/peer-$i
        mkdir -p "$peer"
        t0=$(now)
        skopeo copy --quiet --src-tls-verify=false "docker://$ref" "oci:$peer/layout:big"
        umoci unpack --rootless --image "$peer/layout:big" "$peer/bundle" >/dev/null 2>&1
        t1=$(now)
        peer_times+=("$(echo "$t1 - $t0" | bc)")
        [ "$i" = 1 ] || rm -rf "$home" "$peer"
done

m=$(printf '%s\n' "${msb_times[@]}" | median)
p=$(printf '%s\n' "${peer_times[@]}" | median)
rb=$(printf '%s\n' "${rebuild_times[@]}" | median)
bytes() { du -s --block-size=1 "$@" 2>/dev/null | awk '{s+=$1} END {print s+0}'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
home=$work/home-1
blobs=$(bytes "$home/cache/blobs")
rootfs=$(bytes "$home/cache/rootfs")
peer_disk=$(bytes "$work/peer-1/layout" "$work/peer-1/bundle")
apparent=$(du -s --apparent-size --block-size=1 "$work/peer-1/bundle/rootfs" | cut -f1)

echo "image: $ref, 4 layers, $(mib "$apparent") MiB of files, $(find "$work/peer-1/bundle/rootfs" | wc -l) entries"
echo "msb pull (download + root disk):      ${m} s   (median of $runs)"
echo "skopeo copy + umoci unpack:           ${p} s"
echo "ratio (skopeo+umoci / msb):           $(echo "scale=2; $p / $m" | bc)x"
echo "msb root disk from cached blobs:      ${rb} s"
echo "disk per image, msb:                  $(mib $((blobs + rootfs))) MiB (blobs $(mib "$blobs"), root disk $(mib "$rootfs"))"
echo "disk per image, skopeo+umoci:         $(mib "$peer_disk") MiB (layout + unpacked tree)"
echo "disk per extra sandbox, image data:   0 MiB (the root disk is shared, attached read-only)"
# An extra sandbox costs its own files only: the sparse upper disk, logs.
MSB_HOME=$home "$msb" create -q --name bench-extra "$ref" >/dev/null
echo "disk per extra sandbox, its own files:  $(mib "$(bytes "$home/sandboxes/bench-extra")") MiB"
MSB_HOME=$home "$msb" rm -f -q bench-extra
