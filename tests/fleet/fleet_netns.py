"""Two network namespaces joined by a veth pair (for the fleet tests).

``agent_ns`` holds 10.200.0.1/30, ``client_ns`` 10.200.0.2/30; the link is
created inside the namespaces (never in the host's), so the addresses and
their traffic exist only there.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

AGENT_ADDRESS = "10.200.0.1"
CLIENT_ADDRESS = "10.200.0.2"


@dataclass(frozen=True)
class Pair:
    """The agent's and the subscribers' namespaces."""

    agent_ns: str
    client_ns: str

    @staticmethod
    def inside(ns: str, *args: str) -> list[str]:
        """``args`` run in namespace ``ns``."""
        return ["ip", "netns", "exec", ns, *args]


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"ip {' '.join(args)}: {done.stderr.strip()}"


def ip(*args: str) -> None:
    """Run ``ip ARGS`` and fail the test with its message."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"ip {' '.join(args)}: {done.stderr.strip()}"
