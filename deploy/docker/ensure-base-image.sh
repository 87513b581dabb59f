#!/usr/bin/env bash
# Create the `debian:bookworm-slim` image tag locally when it is missing and
# no registry is reachable: debootstrap a minbase bookworm root and
# `docker import` it. On a machine that can reach Docker Hub, `docker pull`
# is tried first, so the Dockerfiles stay standard. Idempotent.
set -euo pipefail

TAG=${BASE_IMAGE:-debian:bookworm-slim}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
say() { echo "ensure-base-image: $*" >&2; }

if docker image inspect "$TAG" >/dev/null 2>&1; then
  exit 0
fi
if timeout 30 docker pull "$TAG" >/dev/null 2>&1; then
  say "pulled $TAG"
  exit 0
fi
command -v debootstrap >/dev/null 2>&1 || {
  say "debootstrap missing (run deploy/docker/start-dockerd.sh first)"; exit 1; }

root=$(mktemp -d /var/tmp/rezolus-bookworm.XXXXXX)
trap 'rm -rf "$root"' EXIT
say "debootstrapping bookworm (minbase) into $root"
debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$root.log" 2>&1 || {
  tail -n 20 "$root.log" >&2; rm -f "$root.log"; exit 1; }
rm -f "$root.log"
# Trim what the real slim image also leaves out: apt lists, caches, docs.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
       "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb http://deb.debian.org/debian-security bookworm-security main\n' \
  "$MIRROR" "$MIRROR" > "$root/etc/apt/sources.list"
tar -C "$root" -c . | docker import \
  --change 'CMD ["bash"]' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  - "$TAG" >/dev/null
say "imported $TAG from debootstrap"
