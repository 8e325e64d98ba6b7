#!/usr/bin/env bash
# Configures and builds walfeed with CMake + Ninja.
#   scripts/build.sh [BUILD_DIR] [extra cmake arguments...]
# BUILD_DIR defaults to build/. Binaries land in BUILD_DIR/bin. WALFEED_BUILD_TARGETS, when set,
# builds only those targets (space-separated).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${1:-$here/build}"
shift || true
jobs="$(nproc 2>/dev/null || echo 2)"
cmake -S "$here" -B "$build_dir" -G Ninja "$@" >/dev/null
targets=()
for target in ${WALFEED_BUILD_TARGETS:-}; do targets+=(--target "$target"); done
cmake --build "$build_dir" --parallel "$jobs" "${targets[@]}"
