#!/usr/bin/env bash
# Exec benchmark on one running sandbox: p50/p95 of an exec round trip
# (`true`) through the C API and through the CLI, beside a protocol ping to
# the same agent (the floor), and `msb cp` throughput of a 100 MB file both
# ways. usage: bench/exec.sh [BUILD_DIR] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(cd "${1:-build}" && pwd)
runs=${2:-50}
msb=$build/cmd/msb/msb
work=$(mktemp -d)
export MSB_HOME=$work/home
trap '"$msb" rm -f bench >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

"$msb" create -q --name bench --root-disk 2G base >/dev/null
"$build/bench/exec-bench" bench "$runs" >"$work/api.txt"
for _ in $(seq "$runs"); do
        s=$(date +%s%N)
        "$msb" exec bench -- true
        echo "cli $(( ($(date +%s%N) - s) / 1000 ))"
done >"$work/cli.txt"

head -c 100000000 /dev/urandom >"$work/blob"
s=$(date +%s%N); "$msb" cp "$work/blob" bench:/blob; in_ns=$(( $(date +%s%N) - s ))
s=$(date +%s%N); "$msb" cp bench:/blob "$work/back"; out_ns=$(( $(date +%s%N) - s ))
cmp "$work/blob" "$work/back"

/usr/bin/python3 - "$work" "$in_ns" "$out_ns" <<'PY'
import statistics, sys
work, in_ns, out_ns = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def load(path, tag, scale):
    return [float(l.split()[1]) * scale for l in open(path) if l.startswith(tag + " ")]
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]
api = load(f"{work}/api.txt", "exec", 1)
ping = load(f"{work}/api.txt", "ping", 1)
cli = load(f"{work}/cli.txt", "cli", 1e-3)
print(f"exec benchmark: {len(api)} runs each on one running sandbox")
for name, v in (("protocol ping (floor)", ping), ("exec `true`, C API", api), ("exec `true`, CLI", cli)):
    print(f"  {name:24s} p50 {pct(v, 50):8.2f} ms   p95 {pct(v, 95):8.2f} ms")
print(f"  C API exec / ping p50   {pct(api, 50) / pct(ping, 50):.1f}x")
mb = 100
print(f"  msb cp 100 MB in        {mb / (in_ns / 1e9):8.1f} MB/s")
print(f"  msb cp 100 MB out       {mb / (out_ns / 1e9):8.1f} MB/s")
PY
