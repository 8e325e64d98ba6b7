#!/usr/bin/env bash
# Runs each libFuzzer target for a short while on its corpus (fuzz/corpus/<name>/, read-only:
# new inputs go to a scratch directory), failing on any crash, leak or sanitizer report.
#   scripts/fuzz.sh BUILD_DIR [SECONDS_PER_TARGET]
# BUILD_DIR must be configured with -DWALFEED_FUZZ=ON and clang. To grow the corpus, run a
# target by hand with fuzz/corpus/<name> as its first directory.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="$1"
seconds="${2:-20}"
for name in pgoutput values cursor request out_of_line; do
  scratch="$(mktemp -d)"
  echo "== fuzz $name (${seconds}s)"
  "$build_dir/bin/${name}_fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$scratch/" "$scratch" "$here/fuzz/corpus/$name" \
    2>"$scratch/log" || { tail -50 "$scratch/log"; exit 1; }
  grep -E "stat::number_of_executed_units|stat::new_units_added" "$scratch/log" || true
  rm -rf "$scratch"
done
