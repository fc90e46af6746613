#!/usr/bin/env bash
# make demo: boot a sandbox on the built-in image, run a few commands in it,
# and say what happened and how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."
msb=$1/cmd/msb/msb
export MSB_HOME=${MSB_HOME:-$HOME/.msb}

ms() { date +%s%3N; }
say() { printf '\n\033[1m%s\033[0m\n' "$*"; }

say "\$ msb doctor"
"$msb" doctor || true

say "\$ msb run base -- uname -a"
t0=$(ms)
"$msb" run base -- uname -a
t1=$(ms)
echo "(booted a microVM, ran the command, removed the sandbox: $((t1 - t0)) ms)"

say "\$ echo 'hello from the host' | msb run base -- sh -c 'tr a-z A-Z; echo \"kernel \$(uname -r), \$(nproc) cpu, \$(free -m | awk \"/Mem/{print \\\$2}\") MiB\"'"
echo 'hello from the host' | "$msb" run -q base -- sh -c 'tr a-z A-Z; echo "kernel $(uname -r), $(nproc) cpu, $(free -m | awk "/Mem/{print \$2}") MiB"'

say "\$ msb run -m 256M -c 2 base -- sh -c 'nproc; exit 3'"
set +e
"$msb" run -q -m 256M -c 2 base -- sh -c 'nproc; exit 3'
echo "(exit code $?: msb exits with the command's code)"
set -e

say "\$ msb create --name demo base; msb exec demo ...; msb stop demo; msb start demo"
"$msb" rm -f demo >/dev/null 2>&1 || true
t0=$(ms)
"$msb" create -q --name demo base >/dev/null
"$msb" exec demo -- sh -c 'echo "written before stop" > /root/note'
"$msb" stop -q demo
"$msb" start -q demo
"$msb" exec demo -- cat /root/note
"$msb" ls
"$msb" rm -f -q demo
t1=$(ms)
echo "(a sandbox that outlives its commands, its disk kept across stop/start: $((t1 - t0)) ms)"

say "Try it yourself:  $msb run -t base"
