#!/usr/bin/env bash
# Fails when a C++ file differs from clang-format's Google style (see .clang-format).
# scripts/check-format.sh --fix rewrites the files instead.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
format="$(command -v clang-format-14 || command -v clang-format)"
# Tracked and new (not ignored) files alike.
mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.cc' '*.h')
if [ "${1:-}" = "--fix" ]; then
  "$format" -i "${files[@]}"
  exit 0
fi
"$format" --dry-run --Werror "${files[@]}"
