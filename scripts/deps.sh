#!/usr/bin/env bash
# Installs the Debian packages given as arguments that are not installed yet.
# Quick when everything is present: one dpkg-query, no apt.
set -euo pipefail

missing=()
for pkg in "$@"; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
        [ "$status" = installed ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq || echo "deps: apt-get update failed; trying with the current lists" >&2
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
