#!/usr/bin/env bash
# Idempotent set-up for a Debian bookworm machine, run as root by `make setup`.
# Installs what is missing (Debian packages, kernel headers link, tracefs,
# uv, the project venv) and does nothing else when everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
APT_PACKAGES=(python3-bpfcc bpfcc-tools python3-venv python3-dev linux-headers-amd64
              bpftrace bpftool prometheus prometheus-node-exporter iproute2 util-linux procps chromium)

say() { echo "setup: $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  say "warning: not root; skipping system packages (BPF samplers and root tests need root)"
else
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi

  kdir="/lib/modules/$(uname -r)"
  if [ ! -e "$kdir/build/include" ]; then
    amd64=$(ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V | tail -n 1 || true)
    common=${amd64%-amd64}-common
    if [ -n "$amd64" ] && [ -d "$common" ]; then
      mkdir -p "$kdir"
      ln -sfn "$amd64" "$kdir/build"
      ln -sfn "$common" "$kdir/source"
      say "warning: no headers for kernel $(uname -r); linked $(basename "$amd64") (BPF code reads no struct layouts from them)"
    else
      say "warning: no kernel headers found; BPF samplers will be unavailable"
    fi
  fi

  if [ ! -d /sys/kernel/tracing/events ]; then
    mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || say "warning: cannot mount tracefs"
  fi
fi

if [ ! -x .tools/bin/uv ] || [ "$(.tools/bin/uv --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  say "installing uv $UV_VERSION into .tools/"
  /usr/bin/python3 -m venv .tools
  .tools/bin/pip install -q "uv==$UV_VERSION"
fi

if [ ! -x .venv/bin/python ] || ! grep -q "include-system-site-packages = true" .venv/pyvenv.cfg; then
  say "creating .venv (with system site packages, for Debian's bcc)"
  rm -rf .venv
  /usr/bin/python3 -m venv --system-site-packages .venv
fi

UV_PROJECT_ENVIRONMENT=.venv .tools/bin/uv sync --frozen --quiet --python .venv/bin/python

# Bytecode for the venv's packages and ours, so a service does not recompile
# every module it imports at each start (about half a second of CPU; Python
# still checks each file's source stamp, so an edited module is never stale).
# The venv is compiled once per lock; our sources every time (a fraction of a second).
lock_sum=$(sha256sum uv.lock | cut -d' ' -f1)
if [ "$(cat .venv/.compiled 2>/dev/null)" != "$lock_sum" ]; then
  say "compiling the venv's bytecode"
  .venv/bin/python -m compileall -q -j 0 .venv/lib > /dev/null
  echo "$lock_sum" > .venv/.compiled
fi
.venv/bin/python -m compileall -q -j 0 core/src recording/src services/*/src > /dev/null
