#!/usr/bin/env bash
# Regenerate the exporter's protobuf module from its .proto (the output is committed).
set -euo pipefail
cd "$(dirname "$0")/.."
src=services/exporter/src
.venv/bin/python -m grpc_tools.protoc -I "$src" --python_out="$src" --pyi_out="$src" "$src/rezolus_exporter/metrics.proto"
