"""Image build times and sizes for docs/performance-history.md ("Deployment").

Builds each service image from the one ``Dockerfile`` (``--build-arg
SERVICE=<name>``) from scratch (``--no-cache``, base image present), one after
the other, then an incremental rebuild after touching one source file, and
prints a markdown table: cold and incremental build time, image size and size
over the base image. Run as root with dockerd up
(deploy/docker/start-dockerd.sh, deploy/docker/ensure-base-image.sh).

With the classic builder (Debian's Docker 20.10) a cold build runs every
stage of the file, the agent's python3-bpfcc install included, whichever
service is built; BuildKit runs only the chosen service's stages. The table
says which builder ran.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BASE = "debian:bookworm-slim"
SERVICES = ("agent", "exporter", "recorder", "hindsight", "viewer")


def size(tag: str) -> int:
    """Image size in bytes."""
    out = subprocess.run(["docker", "image", "inspect", tag], capture_output=True, check=True)
    return int(json.loads(out.stdout)[0]["Size"])


def build(tag: str, service: str, ca: str, *, cache: bool) -> float:
    """Build one service's image from the repository root; seconds taken."""
    args = ["docker", "build", "-q", "-t", tag, "--build-arg", f"SERVICE={service}",
            "--build-arg", f"EXTRA_CA_CERTS={ca}"]
    if not cache:
        args.append("--no-cache")
    start = time.monotonic()
    subprocess.run([*args, "."], cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - start


def main() -> int:
    """Build, measure, print the table."""
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    ca = subprocess.run(["bash", "deploy/docker/local-ca.sh"], cwd=REPO, capture_output=True,
                        text=True, check=True).stdout
    base = size(BASE)
    load = os.getloadavg()[0]
    rows = []
    for name in SERVICES:
        tag = f"rezolus-{name}:bench"
        cold = build(tag, name, ca, cache=False)
        marker = REPO / "services" / name / "src" / f"rezolus_{name}" / "__init__.py"
        original = marker.read_bytes()
        try:
            marker.write_bytes(original + b"# bench: a source change\n")
            warm = build(tag, name, ca, cache=True)
        finally:
            marker.write_bytes(original)
        rows.append((name, cold, warm, size(tag)))
        print(f"{name}: cold {cold:.0f}s, incremental {warm:.0f}s", file=sys.stderr)
    builder = "BuildKit" if os.environ.get("DOCKER_BUILDKIT") == "1" else "classic builder"
    print(f"Builder: {builder}; load average before: {load:.1f} (other work on the machine slows builds)")
    print(f"| image | cold build (s) | rebuild after a source change (s) | size (MB) | × base ({base / 1e6:.0f} MB) |")
    print("|---|---|---|---|---|")
    for name, cold, warm, nbytes in rows:
        print(f"| rezolus-{name} | {cold:.0f} | {warm:.0f} | {nbytes / 1e6:.0f} | {nbytes / base:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
