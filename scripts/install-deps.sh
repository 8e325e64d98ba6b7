#!/usr/bin/env bash
# Installs everything walfeed needs to build, test and run its demo on Debian 12:
# the C++ toolchain and libraries from Debian's packages, PostgreSQL 15, and `buf`
# (a grpcurl-like client) from the npm registry into tools/node_modules.
# Safe to run again: apt-get and npm skip what is already there.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

packages=(
  build-essential cmake ninja-build pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  librocksdb-dev libabsl-dev libpq-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev prometheus-cpp-dev
  postgresql postgresql-contrib
  # the log's replication into NATS JetStream (--replicate-to): the C client, and the server for
  # the tests and the demo
  libnats-dev nats-server libzstd-dev
  # the server's allocator (server/CMakeLists.txt)
  libjemalloc-dev
  clang-14 libclang-rt-14-dev clang-format openssl
  # scripts/check-deploy.sh: YAML parsing and linting, systemd-analyze, shell linting, objdump,
  # setpriv
  python3-yaml yamllint systemd dash shellcheck binutils util-linux
  # examples/python: gRPC for Python (stubs are generated with protoc's grpc_python_plugin)
  python3-grpcio python3-protobuf
  # bench/run_all.py's plot
  python3-matplotlib
  # push delivery (server/push): HTTP through libcurl, HMAC signatures through OpenSSL's libcrypto;
  # the example receiver (examples/push) is a FastAPI app under uvicorn
  libcurl4-openssl-dev libssl-dev python3-fastapi python3-uvicorn
)
# Some images ship Node.js with its own npm; Debian's npm would conflict with it.
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
# scripts/check-deploy.sh --containers: podman (with its recommended network and storage helpers),
# the runc runtime, debootstrap for a base image from Debian's packages, podman-compose.
container_packages=(podman runc debootstrap podman-compose)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing_containers=()
for p in "${container_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing_containers+=("$p")
done

if [ "${#missing[@]}" -gt 0 ] || [ "${#missing_containers[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]} ${missing_containers[*]}"
  $SUDO apt-get update -qq
fi
if [ "${#missing[@]}" -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ "${#missing_containers[@]}" -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing_containers[@]}" >/dev/null
fi

# buf: the project-local copy keeps the global npm prefix untouched.
if [ ! -x "$here/tools/node_modules/.bin/buf" ]; then
  echo "install-deps: installing @bufbuild/buf into tools/"
  (cd "$here/tools" && npm install --no-audit --no-fund --silent >/dev/null)
fi
# The Node.js example consumer's gRPC packages, from its lockfile.
if [ ! -d "$here/examples/node/node_modules/@grpc/grpc-js" ]; then
  echo "install-deps: installing the Node.js example's packages into examples/node/"
  (cd "$here/examples/node" && npm ci --no-audit --no-fund --silent >/dev/null)
fi
echo "install-deps: ready"
