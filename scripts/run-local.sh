#!/usr/bin/env bash
# `make run`: the agent in the background and a live view of its frames in the
# foreground. Ctrl-C stops both.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/rezolus-agent --config config/agent.toml &
agent=$!
cleanup() { kill -TERM "$agent" 2>/dev/null; wait "$agent" 2>/dev/null; }
trap cleanup EXIT
trap 'exit 0' INT TERM
echo "agent publishing on tcp://127.0.0.1:4241; live frames follow (Ctrl-C stops)" >&2
.venv/bin/rezolus tap --timeout 30
