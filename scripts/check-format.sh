#!/usr/bin/env bash
# clang-format check of every tracked C file (--fix rewrites them).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=(--dry-run -Werror)
[ "${1:-}" = --fix ] && mode=(-i)
git ls-files --cached --others --exclude-standard '*.c' '*.h' | xargs -r clang-format "${mode[@]}"
