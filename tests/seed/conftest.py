"""The ``netns`` fixture: a private network namespace per seed test."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import TYPE_CHECKING

import pytest
from seed_netns import Namespace

from support.env import require

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def netns() -> Iterator[Namespace]:
    """A fresh network namespace with loopback up; its processes are stopped and it is removed at teardown."""
    require(os.geteuid() == 0 and shutil.which("ip") is not None, "network namespaces need root and ip(8)")
    ns = Namespace()
    created = subprocess.run(["ip", "netns", "add", ns.name], capture_output=True, text=True, check=False)
    require(created.returncode == 0, f"cannot create a network namespace: {created.stderr.strip()}")
    try:
        subprocess.run(["ip", "-n", ns.name, "link", "set", "lo", "up"], check=True)
        yield ns
    finally:
        for proc in ns.processes:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.communicate(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.communicate()
        subprocess.run(["ip", "netns", "delete", ns.name], check=False)
