#!/usr/bin/env bash
# `make run`: the agent in the background and a live view of its frames in the
# foreground. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/rezolus-agent --config config/agent.toml &
agent=$!
trap 'kill -TERM $agent 2>/dev/null; wait $agent 2>/dev/null' EXIT INT TERM
.venv/bin/rezolus tap --timeout 30 || true
