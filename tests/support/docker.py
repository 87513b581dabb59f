"""Docker for tests: start dockerd and make the local base image when the test may (root), else report why not.

Every test that runs a container goes through :func:`require_docker`, so the
first one on a fresh machine starts the daemon whatever order pytest picks.
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

from support.env import require

DOCKER_SCRIPTS = Path(__file__).resolve().parents[2] / "deploy" / "docker"

SCRIPTS = ("start-dockerd.sh", "ensure-base-image.sh")
BASE_IMAGE = "debian:bookworm-slim"


@functools.cache
def _docker_problem() -> str:
    """Empty when dockerd answers and the base image exists; else one line saying what is missing."""
    if os.geteuid() != 0:
        return "needs root to run dockerd"
    for script in SCRIPTS:
        try:
            proc = subprocess.run(["bash", str(DOCKER_SCRIPTS / script)], capture_output=True,
                                  text=True, timeout=1800, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{script}: {exc}"
        if proc.returncode != 0:
            return f"{script} exited {proc.returncode}: {proc.stderr.strip()[-500:]}"
    probe = subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True, timeout=60, check=False)
    return "" if probe.returncode == 0 else f"no local {BASE_IMAGE} image after ensure-base-image.sh"


def require_docker() -> None:
    """Skip locally (fail in CI) unless dockerd runs with the local base image, starting both if needed."""
    problem = _docker_problem()
    require(not problem, f"docker with a local {BASE_IMAGE} image: {problem}")
