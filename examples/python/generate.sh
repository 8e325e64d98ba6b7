#!/usr/bin/env bash
# Generates the Python stubs of walfeed's API from proto/ into examples/python/gen/ (gitignored).
# Needs Debian's protobuf-compiler and protobuf-compiler-grpc (protoc, grpc_python_plugin).
# consumer.py runs this by itself when the stubs are missing or older than the .proto.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
proto="$here/../../proto"
mkdir -p "$here/gen"
protoc -I "$proto" --python_out="$here/gen" --grpc_out="$here/gen" \
  --plugin=protoc-gen-grpc="$(command -v grpc_python_plugin)" "$proto/walfeed/v1/walfeed.proto"
