#!/bin/sh
# Entrypoint of the agent image: prepare kernel headers and the bus socket
# directory, then exec rezolus-agent with the given arguments.
#
# Headers: bcc compiles against /lib/modules/$(uname -r)/build. The host's
# /lib/modules is mounted read-only at /host/lib/modules and /usr/src at
# /usr/src; this links the running kernel's tree when the host has one, and
# otherwise falls back to the newest Debian linux-headers-*-amd64 tree, as
# scripts/setup.sh does (the BPF code reads no struct layouts from headers).
# Bus: the ipc:// socket lives in a volume shared with the other services,
# which run as group rezolus (gid 4240); the setgid directory and umask 0007
# let them connect and nobody else.
set -eu
release=$(uname -r)
if [ ! -e "/lib/modules/$release/build/include" ]; then
  mkdir -p /lib/modules
  if [ -e "/host/lib/modules/$release/build/include" ]; then
    ln -sfn "/host/lib/modules/$release" "/lib/modules/$release"
  else
    amd64=$(ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$amd64" ] && [ -d "${amd64%-amd64}-common" ]; then
      mkdir -p "/lib/modules/$release"
      ln -sfn "$amd64" "/lib/modules/$release/build"
      ln -sfn "${amd64%-amd64}-common" "/lib/modules/$release/source"
      echo "rezolus-agent-entrypoint: no headers for kernel $release; using $(basename "$amd64")" >&2
    else
      echo "rezolus-agent-entrypoint: no kernel headers under /host/lib/modules or /usr/src; BPF samplers will be unavailable" >&2
    fi
  fi
fi
if [ -d /run/rezolus ] && [ "$(stat -c %g:%a /run/rezolus)" != "4240:2770" ]; then
  chgrp 4240 /run/rezolus && chmod 2770 /run/rezolus \
    || echo "rezolus-agent-entrypoint: cannot give /run/rezolus to group 4240; other services may not connect" >&2
fi
umask 0007
exec rezolus-agent "$@"
