"""Hindsight's configuration: the TOML file, with command-line flags on top.

Invariants:
- Every value is checked before anything starts; problems are ``ConfigError``
  (one line naming the key, exit 2).  Unknown keys are errors.
- A flag given on the command line overrides the same key of the file.
- Listening on anything but loopback requires a bearer token (``token`` or
  ``token_file``); a configured token is always enforced on the snapshot
  endpoints.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rezolus_core import config as core_config
from rezolus_core.bus import DEFAULT_ENDPOINT
from rezolus_core.config import ConfigError, Section
from rezolus_core.log import LEVELS
from rezolus_hindsight.buffer import MIN_MAX_BYTES

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")

DEFAULT_LISTEN = "127.0.0.1:4243"
DEFAULT_DIRECTORY = "/var/lib/rezolus/hindsight"
DEFAULT_OUTPUT = "/var/lib/rezolus/snapshots"
MIN_INTERVAL_NS = 1_000_000

# flag name -> config key, for flags that override the file
FLAG_KEYS = {
    "source": "source",
    "interval": "interval",
    "duration": "duration",
    "max_bytes": "max_bytes",
    "directory": "directory",
    "output": "output",
    "listen": "listen",
}


@dataclass(frozen=True)
class HindsightConfig:
    """Everything hindsight needs to run."""

    source: str
    interval_ns: int
    duration_ns: int
    max_bytes: int
    segment_ns: int | None
    directory: Path
    output: Path
    host: str
    port: int
    token: str | None
    log_level: str

    @property
    def listen(self) -> str:
        """The HTTP address as written in the config."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen(section: Section, key: str, text: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` into a host and a port."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise section.error(key, f"{text!r} is not host:port (like {DEFAULT_LISTEN})")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    port = int(port_text)
    if not 0 < port < 65536:
        raise section.error(key, f"port {port} is outside 1..65535")
    return host, port


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _token(section: Section) -> str | None:
    token = section.string("token", "") or None
    token_file = section.string("token_file", "")
    if token and token_file:
        raise section.error("token_file", "give token or token_file, not both")
    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise section.error("token_file", f"cannot read {token_file}: {exc.strerror}") from exc
        if token is None:
            raise section.error("token_file", f"{token_file} is empty")
    if token is not None and len(token) < 16:
        raise section.error("token", "a token needs at least 16 characters")
    return token


def load(path: str | None, overrides: dict[str, Any]) -> HindsightConfig:
    """Read the file (if any), apply flag overrides, and check everything."""
    file = core_config.load(path)
    flags = Section({k: v for k, v in overrides.items() if v is not None}, "command line")

    def pick(key: str, read: Callable[[Section, str], T]) -> tuple[T, Section]:
        value = read(file, key)
        return (read(flags, key), flags) if flags.has(key) else (value, file)

    source, _ = pick("source", lambda s, k: s.string(k, DEFAULT_ENDPOINT))
    interval, _ = pick("interval", lambda s, k: s.duration(k, "1s", minimum_ns=MIN_INTERVAL_NS))
    duration, where = pick("duration", lambda s, k: s.duration(k, "15m"))
    if duration < 2 * interval:
        raise where.error("duration", "must be at least two intervals")
    max_bytes, where = pick("max_bytes", lambda s, k: s.size(k, "1GiB"))
    if max_bytes < MIN_MAX_BYTES:
        raise where.error("max_bytes", f"must be at least {MIN_MAX_BYTES} bytes (1MiB)")
    segment = file.string("segment", "")
    segment_ns = None
    if segment:
        segment_ns = file.duration("segment", segment, minimum_ns=interval)
        if segment_ns > duration:
            raise file.error("segment", "must not be longer than duration")
    directory, where = pick("directory", lambda s, k: s.string(k, DEFAULT_DIRECTORY))
    output, _ = pick("output", lambda s, k: s.string(k, DEFAULT_OUTPUT))
    if not directory or not output:
        raise where.error("directory", "directory and output must not be empty")
    listen, where = pick("listen", lambda s, k: s.string(k, DEFAULT_LISTEN))
    host, port = parse_listen(where, "listen", listen)
    section = file
    token = _token(section)
    if token is None and not is_loopback(host):
        raise where.error(
            "listen", f"{host} is not loopback; set token or token_file to protect snapshots"
        )
    log_level = section.string("log_level", "info")
    if log_level not in LEVELS:
        raise section.error("log_level", f"{log_level!r} is not one of {', '.join(LEVELS)}")
    section.finish()
    flags.finish()
    return HindsightConfig(
        source=source,
        interval_ns=interval,
        duration_ns=duration,
        max_bytes=max_bytes,
        segment_ns=segment_ns,
        directory=Path(directory),
        output=Path(output),
        host=host,
        port=port,
        token=token,
        log_level=log_level,
    )


__all__ = ["ConfigError", "HindsightConfig", "is_loopback", "load"]
