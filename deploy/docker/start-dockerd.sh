#!/usr/bin/env bash
# Make a Docker daemon and docker-compose available on a Debian bookworm host.
# Idempotent: does nothing when `docker info` already answers. Installs
# Debian's docker.io, docker-compose and debootstrap when missing, then starts
# dockerd in the background (log: /var/log/rezolus-dockerd.log) and waits
# until it answers or the timeout passes (exit 1 with the log's tail).
set -euo pipefail

TIMEOUT=${DOCKERD_TIMEOUT:-90}
say() { echo "start-dockerd: $*" >&2; }

if docker info >/dev/null 2>&1 && command -v docker-compose >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  say "dockerd is not running and this is not root; start it yourself"
  exit 1
fi

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "${missing[@]}" iptables >/dev/null
fi

if docker info >/dev/null 2>&1; then
  exit 0
fi

log=/var/log/rezolus-dockerd.log
say "starting dockerd (log: $log)"
# setsid: the daemon must outlive the shell (and test) that started it.
setsid dockerd >>"$log" 2>&1 < /dev/null &
deadline=$((SECONDS + TIMEOUT))
until docker info >/dev/null 2>&1; do
  if [ $SECONDS -ge $deadline ]; then
    say "dockerd did not answer within ${TIMEOUT}s; last log lines:"
    tail -n 20 "$log" >&2
    exit 1
  fi
  sleep 1
done
say "dockerd is up"
