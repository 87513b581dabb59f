"""Addresses every service accepts: HTTP listen addresses and the agent's bus endpoint.

One set of rules for all services:

- ``parse_listen`` (HTTP servers: exporter, hindsight, viewer) takes
  ``HOST:PORT`` or ``[IPV6]:PORT``.  HOST is a name or an IPv4 address (no
  spaces, colons or brackets); an IPv6 address must be in brackets.  PORT is
  0..65535, where 0 lets the system pick a free port.
- ``parse_source`` (subscribers: exporter, recorder, hindsight, tap) takes
  ``tcp://HOST:PORT``, ``ipc://PATH`` or ``inproc://NAME``, and also
  ``http://HOST:PORT`` or a bare ``HOST:PORT``: both name the agent's bus at
  that host and port and become ``tcp://HOST:PORT`` (the original Rezolus
  names its agent with an http URL).
- ``parse_bind`` (the agent's own bus) takes ``tcp://HOST:PORT``,
  ``ipc://PATH`` or ``inproc://NAME``.

Every function raises ``ValueError`` with a one-line reason; callers wrap it
in a ``ConfigError`` naming the key or flag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rezolus_core.config import abbreviate

_LISTEN = re.compile(r"\[([0-9a-fA-F:.]+)\]:(\d+)|([^\s:\[\]/]+):(\d+)")
_TCP = re.compile(r"tcp://(\[[0-9a-fA-F:.]+\]|[^\s:\[\]/]+|\*):(\d+)")
_OTHER = re.compile(r"(ipc|inproc)://\S+")
_AGENT = re.compile(r"(?:https?://)?(\[[0-9a-fA-F:.]+\]|[^\s:\[\]/]+):(\d+)/?")
_MAX_PORT = 65535


@dataclass(frozen=True)
class ListenAddress:
    """Host and port an HTTP server binds (port 0: any free port)."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def _port(text: str, whole: str) -> int:
    port = int(text) if len(text) <= len(str(_MAX_PORT)) else _MAX_PORT + 1
    if port > _MAX_PORT:
        raise ValueError(f"{abbreviate(whole)}: port {abbreviate(str(port))} is outside 0..{_MAX_PORT}")
    return port


def parse_listen(text: str) -> ListenAddress:
    """``HOST:PORT`` or ``[IPV6]:PORT`` into a ListenAddress (ValueError otherwise)."""
    match = _LISTEN.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{abbreviate(text)} is not HOST:PORT or [IPV6]:PORT (for example 127.0.0.1:4242)")
    host = match.group(1) or match.group(3)
    return ListenAddress(host, _port(match.group(2) or match.group(4), text))


def parse_bind(text: str) -> str:
    """An endpoint the agent can bind: ``tcp://HOST:PORT``, ``ipc://PATH`` or ``inproc://NAME``."""
    text = text.strip()
    tcp = _TCP.fullmatch(text)
    if tcp:
        _port(tcp.group(2), text)
        return text
    if _OTHER.fullmatch(text):
        return text
    raise ValueError(f"{abbreviate(text)} is not a tcp:// or ipc:// endpoint, like tcp://127.0.0.1:4241")


def parse_source(text: str) -> str:
    """The agent's endpoint for a subscriber, as a ZeroMQ endpoint (ValueError otherwise)."""
    text = text.strip()
    if text.startswith(("tcp://", "ipc://", "inproc://")):
        return parse_bind(text)
    agent = _AGENT.fullmatch(text)
    if agent:
        return f"tcp://{agent.group(1)}:{_port(agent.group(2), text)}"
    raise ValueError(
        f"{abbreviate(text)} is not an endpoint like tcp://127.0.0.1:4241, http://localhost:4241 or localhost:4241"
    )
