#!/usr/bin/env bash
# Installs what is needed, builds, and runs walfeed's whole test suite. This is the README's
# test command and what CI runs (.ci/run).
#
# 1. GCC build, warnings as errors, every unit and integration test (real PostgreSQL, RocksDB,
#    gRPC over loopback).
# 2. Clang build with AddressSanitizer + UndefinedBehaviorSanitizer and -Wthread-safety as
#    errors, the same tests again.
#    Then a short libFuzzer run of the pgoutput decoding path, the value converter, the cursor and
#    request parsers and the large-value path on their corpus (fuzz/corpus/).
# 3. The example consumers (examples/), push delivery into the example web app (examples/push/),
#    the deployment checks (scripts/check-deploy.sh: the files,
#    and the image built and run with podman), a quick run of each benchmark (they must keep
#    working). A clang-format check runs first, so a formatting slip fails at once.
# WALFEED_TEST_SANITIZERS=0 skips step 2 for a quicker local loop; CI always runs it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

started=$SECONDS
# A phase's heading, with the minutes the command has run so far (CI has a time budget).
phase() { printf '== %s (at %d min %02d s)\n' "$1" $(((SECONDS - started) / 60)) $(((SECONDS - started) % 60)); }

bash scripts/install-deps.sh

# Formatting first: a mis-formatted line fails in seconds, not after the whole suite.
phase "clang-format"
bash scripts/check-format.sh

run_suite() {
  local name="$1" dir="$2"
  shift 2
  phase "$name: build"
  bash scripts/build.sh "$dir" "$@"
  phase "$name: test"
  # Three at a time on two cores: most integration tests wait on PostgreSQL, NATS or a process
  # they started, and their waits are generous bounds on conditions (walfeed_process.h).
  (cd "$dir" && ctest --output-on-failure --parallel 3 --timeout 600)
}

# Line tables only (-g1, -gline-tables-only): stack traces keep file and line, and the builds take
# a quarter less time than with full debug information. Unity builds (sources compiled a few to a
# file) halve the time of a build from scratch: 7:50 -> 3:56 for GCC, 9:00 -> 4:52 for ASan.
run_suite "gcc" "$here/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
  -DWALFEED_WERROR=ON -DWALFEED_BUILD_TESTS=ON -DWALFEED_UNITY_BUILD=ON

# The Python and Node.js example consumers against a real walfeed and PostgreSQL.
phase "example consumers"
/usr/bin/python3 examples/run_examples_test.py "$here/build"

# Push delivery into the example FastAPI app under uvicorn, through faults (examples/push/).
phase "push delivery (examples/push)"
/usr/bin/python3 examples/push/run_push_test.py "$here/build"

# The deployment files (deploy/): checked as files, then the image built with podman (with this
# build's binaries; WALFEED_DEPLOY_FROM_SOURCE=1 compiles them in the image instead) and run
# against a private PostgreSQL.
phase "deployment checks"
bash scripts/check-deploy.sh "$here/build" --containers

# The benchmarks must keep working: a quick run of the whole suite checks that each runs, not how
# fast (bench/run_all.py; its summary and plot go to a temporary directory).
phase "benchmark smoke (bench/run_all.py --quick)"
bench_out="$(mktemp -d)"
/usr/bin/python3 bench/run_all.py --quick --out "$bench_out" >"$bench_out/run.log" 2>&1 ||
  { cat "$bench_out/run.log"; exit 1; }
rm -rf "$bench_out"

if [ "${WALFEED_TEST_SANITIZERS:-1}" != "0" ] || [ "${CI:-}" = "true" ]; then
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  export LSAN_OPTIONS="suppressions=$here/tests/lsan.supp"
  # -O1, as AddressSanitizer's documentation advises for a usable speed; Debug keeps assertions.
  # The benchmark programs are built, and their smoke run, by the GCC build only.
  run_suite "clang asan+ubsan" "$here/build-asan" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -gline-tables-only" -DWALFEED_WERROR=ON \
    -DWALFEED_SANITIZE=ON -DWALFEED_BUILD_TESTS=ON -DWALFEED_FUZZ=ON -DWALFEED_BUILD_BENCH=OFF \
    -DCMAKE_CXX_COMPILER=clang++-14 -DWALFEED_UNITY_BUILD=ON
  # A short fuzz run of every libFuzzer target on its corpus.
  phase "fuzz"
  bash scripts/fuzz.sh "$here/build-asan" "${WALFEED_FUZZ_SECONDS:-20}"
fi

phase "all walfeed tests passed"
