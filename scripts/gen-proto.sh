#!/usr/bin/env bash
# Regenerates the C code for the model file schema (proto/model.proto) into the
# CModelProto target, and for the ONNX subset (proto/onnx_subset.proto) into COnnxProto. The generated files are committed; run this after editing
# the schema, with protobuf-c-compiler (protoc-c 1.4) installed.
set -euo pipefail
cd "$(dirname "$0")/.."

out=Sources/CModelProto
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

protoc-c --proto_path=proto --c_out="$tmp" proto/model.proto

mkdir -p "$out/include"
mv "$tmp/model.pb-c.c" "$out/model.pb-c.c"
mv "$tmp/model.pb-c.h" "$out/include/model.pb-c.h"
protoc-c --proto_path=proto --c_out="$tmp" proto/onnx_subset.proto
mkdir -p Sources/COnnxProto/include
mv "$tmp/onnx_subset.pb-c.c" Sources/COnnxProto/onnx_subset.pb-c.c
mv "$tmp/onnx_subset.pb-c.h" Sources/COnnxProto/include/onnx_subset.pb-c.h

echo "generated $out/model.pb-c.c and $out/include/model.pb-c.h, Sources/COnnxProto/ with $(protoc-c --version | head -n 1)"
