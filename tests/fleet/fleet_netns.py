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


@dataclass(frozen=True)
class Star:
    """A client namespace joined to ``len(agents)`` agent namespaces, one veth pair each.

    Agent ``k`` has ``10.201.k.1/30``, the client ``10.201.k.2/30`` on its side.
    """

    client_ns: str
    agents: tuple[str, ...]

    @staticmethod
    def address(k: int) -> str:
        """The address of agent ``k``."""
        return f"10.201.{k}.1"

    @staticmethod
    def inside(ns: str, *args: str) -> list[str]:
        """``args`` run in namespace ``ns``."""
        return Pair.inside(ns, *args)


def make_star(tag: str, count: int, created: list[str]) -> Star:
    """Create the namespaces and links of a ``Star`` (names appended to ``created`` for cleanup)."""
    star = Star(f"rzfc-{tag}", tuple(f"rzf{k}-{tag}" for k in range(count)))
    for ns in (star.client_ns, *star.agents):
        ip("netns", "add", ns)
        created.append(ns)
    ip("-n", star.client_ns, "link", "set", "lo", "up")
    for k, ns in enumerate(star.agents):
        ip("-n", ns, "link", "add", "va", "type", "veth", "peer", "name", f"vc{k}", "netns", star.client_ns)
        ip("-n", ns, "addr", "add", f"{Star.address(k)}/30", "dev", "va")
        ip("-n", star.client_ns, "addr", "add", f"10.201.{k}.2/30", "dev", f"vc{k}")
        for where, dev in ((ns, "va"), (ns, "lo"), (star.client_ns, f"vc{k}")):
            ip("-n", where, "link", "set", dev, "up")
    return star
