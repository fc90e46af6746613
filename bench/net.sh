#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Network throughput and latency through our gateway, beside pasta and
# slirp4netns on the same harness (issue 5):
#
#   bench/net.sh [BUILD_DIR] [SECONDS]
#
# Each contender serves a TAP device in its own "guest" network namespace;
# iperf3 and a 1-byte request/response client run there and talk to servers
# on the loopback of a "host" namespace, reached through each one's host
# alias (ours: the gateway address; pasta: its mapped gateway; slirp4netns:
# 10.0.2.2). Everything stays inside namespaces made for the run. MTU 65520
# for all three. Ours runs twice: "msb" is the production path (frames over
# a stream socketpair, as QEMU's -netdev stream sends them, shuttled to the
# TAP by the harness), "msb-tap" serves the TAP fd directly like the others.
# Prints Mbit/s both ways (median of three runs), the mean and p99 round
# trip, and our ratios.
# Needs root, iproute2, iperf3, passt (pasta), slirp4netns, python3.
set -eu

build=${1:-build}
secs=${2:-5}
here=$(cd "$(dirname "$0")" && pwd)
harness=$build/tests/net/net-harness
for tool in ip iperf3 pasta slirp4netns python3; do
        command -v $tool >/dev/null || { echo "net.sh: $tool is missing" >&2; exit 1; }
done
[ -x "$harness" ] || { echo "net.sh: $harness not built" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "net.sh: needs root (network namespaces)" >&2; exit 1; }

tag=$$
H=msbbh$tag W=msbbw$tag
tmp=$(mktemp)
pids=()
namespaces=($H $W)
cleanup() {
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
        for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
        for n in "${namespaces[@]}"; do ip netns del "$n" 2>/dev/null || true; done
        rm -f "$tmp"
}
trap cleanup EXIT

# The host namespace: a default route (pasta copies it) to a world namespace.
for n in $H $W; do ip netns add $n; ip -n $n link set lo up; done
ip -n $H link add hv type veth peer name wv netns $W
ip -n $H addr add 44.1.0.1/24 dev hv
ip -n $W addr add 44.1.0.2/24 dev wv
ip -n $H link set hv up
ip -n $W link set wv up
ip -n $H route add default via 44.1.0.2
ip netns exec $H iperf3 -s -B 127.0.0.1 -p 5201 >/dev/null 2>&1 &
pids+=($!)
ip netns exec $H python3 "$here/net-rr.py" server 5202 > "$tmp" &
pids+=($!)
until grep -q ready "$tmp"; do sleep 0.05; done

# new_guest NS: the namespace of one contender.
new_guest() {
        ip netns add "$1"
        ip -n "$1" link set lo up
        namespaces+=("$1")
}

# mbits NS HOST [-R]: the median Mbit/s of three iperf3 runs (one run can
# stall: pasta's upload does, often, on Debian 12's passt).
mbits() {
        for _ in 1 2 3; do
                ip netns exec "$1" iperf3 -c "$2" -p 5201 -t "$secs" -O 1 -J ${3:-} |
                        python3 -c 'import json,sys; print(int(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e6))'
        done | sort -n | sed -n 2p
}

measure() { # NAME NS HOST
        local name=$1 ns=$2 host=$3 up down rr
        up=$(mbits "$ns" "$host")
        down=$(mbits "$ns" "$host" -R)
        rr=$(ip netns exec "$ns" python3 "$here/net-rr.py" client "$host" 5202 2000)
        printf '%-12s %10s %10s %10s %10s\n' "$name" "$up" "$down" ${rr}
        eval "up_${name//-/_}=$up down_${name//-/_}=$down rr_${name//-/_}=${rr%% *}"
}

printf '%-12s %10s %10s %10s %10s\n' contender "up Mbit/s" "down Mbit/s" "rr us" "rr p99 us"

run_msb() { # NAME LINK
        local ns=msbbgm$1$tag
        new_guest "$ns"
        ip netns exec $H "$harness" --guest-ns "$ns" --tap tap0 --net all --link "$2" \
                --dns 127.0.0.1 > "$tmp" 2>&1 &
        pids+=($!)
        until grep -q ready "$tmp"; do sleep 0.05; done
        ip -n "$ns" link set tap0 address 02:6d:73:00:00:02 mtu 65520 up
        ip -n "$ns" addr add 10.115.0.2/30 dev tap0
        ip -n "$ns" route add default via 10.115.0.1
        measure "msb$3" "$ns" 10.115.0.1
}

run_msb s stream ""
run_msb t tap "-tap"

ns=msbbgp$tag
new_guest $ns
ip netns exec $H pasta -q -f --runas 0 --config-net --netns /run/netns/$ns --mtu 65520 -4 \
        -t none -u none -T none -U none &
pids+=($!)
gw=""
for _ in $(seq 100); do
        gw=$(ip -n $ns route show default 2>/dev/null | awk '/via/ {print $3}')
        [ -n "$gw" ] && break
        sleep 0.05
done
measure pasta $ns "$gw"

ns=msbbgs$tag
new_guest $ns
ip netns exec $H slirp4netns --configure --mtu=65520 --netns-type=path /run/netns/$ns tap0 \
        >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do
        ip -n $ns addr show tap0 2>/dev/null | grep -q 10.0.2 && break
        sleep 0.05
done
measure slirp4netns $ns 10.0.2.2

ratio() { python3 -c "print('%.2f' % ($1 / max($2, 1)))"; }
echo
for m in msb msb_tap; do
        up=up_$m down=down_$m rr=rr_$m
        echo "$m: throughput vs slirp4netns up $(ratio ${!up} $up_slirp4netns)x down" \
             "$(ratio ${!down} $down_slirp4netns)x; vs pasta up $(ratio ${!up} $up_pasta)x down" \
             "$(ratio ${!down} $down_pasta)x; round trip vs pasta $(ratio ${!rr} $rr_pasta)x" \
             "(lower is better)"
done
