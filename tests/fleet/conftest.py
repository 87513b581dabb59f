"""Fixtures ``pair`` (two namespaces joined by a veth pair) and ``star`` (a client and three agents)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from typing import TYPE_CHECKING

import pytest
from fleet_netns import AGENT_ADDRESS, CLIENT_ADDRESS, Pair, Star, ip, make_star

from support.env import require

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def pair() -> Iterator[Pair]:
    """Two fresh namespaces with a /30 between them."""
    require(os.geteuid() == 0 and shutil.which("ip") is not None, "network namespaces need root and iproute2")
    tag = uuid.uuid4().hex[:6]
    made = Pair(f"rzfa-{tag}", f"rzfb-{tag}")
    created: list[str] = []
    try:
        for ns in (made.agent_ns, made.client_ns):
            ip("netns", "add", ns)
            created.append(ns)
        ip("-n", made.agent_ns, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", made.client_ns)
        for ns, dev, address in ((made.agent_ns, "va", AGENT_ADDRESS), (made.client_ns, "vb", CLIENT_ADDRESS)):
            ip("-n", ns, "addr", "add", f"{address}/30", "dev", dev)
            ip("-n", ns, "link", "set", dev, "up")
            ip("-n", ns, "link", "set", "lo", "up")
        yield made
    finally:
        for ns in created:
            subprocess.run(["ip", "netns", "delete", ns], check=False)


@pytest.fixture
def star() -> Iterator[Star]:
    """A client namespace and three agent namespaces, one /30 to each."""
    require(os.geteuid() == 0 and shutil.which("ip") is not None, "network namespaces need root and iproute2")
    created: list[str] = []
    try:
        yield make_star(uuid.uuid4().hex[:6], 3, created)
    finally:
        for ns in created:
            subprocess.run(["ip", "netns", "delete", ns], check=False)
