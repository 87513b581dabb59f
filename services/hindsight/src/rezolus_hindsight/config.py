"""Hindsight's configuration: the TOML file, with command-line flags on top.

Invariants:
- Every value is checked before anything starts; problems are ``ConfigError``
  (one line naming the key, exit 2).  Unknown keys are errors.
- A flag given on the command line overrides the same key of the file.
- ``source`` is one endpoint or a list (``--source`` repeated); each is
  followed on its own and gets an equal share of ``max_bytes``.
- Listening on anything but loopback requires a bearer token (``token`` or
  ``token_file``); a configured token is always enforced on the snapshot
  endpoints.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rezolus_core.address import parse_listen
from rezolus_core.bus import CLIENT_OPTIONS, DEFAULT_ENDPOINT, client_keys
from rezolus_core.config import ConfigError
from rezolus_core.shell import Loaded, Option, Spec
from rezolus_hindsight.buffer import MIN_MAX_BYTES

if TYPE_CHECKING:
    from rezolus_core.curve import ClientKeys

PROG = "rezolus-hindsight"
DEFAULT_LISTEN = "127.0.0.1:4243"
DEFAULT_DIRECTORY = "/var/lib/rezolus/hindsight"
DEFAULT_OUTPUT = "/var/lib/rezolus/snapshots"
MIN_INTERVAL_NS = 1_000_000
MIN_TOKEN_CHARS = 16


def _not_empty(text: str) -> str | None:
    return "must not be empty" if not text else None


SPEC = Spec(
    prog=PROG,
    description="Keep a rolling high-resolution buffer of the agent's frames on disk; "
    "snapshot it to parquet with POST /snapshot or SIGHUP. "
    "Run `rezolus-hindsight snapshot --help` for the client.",
    config_help="TOML configuration (see config/hindsight.toml)",
    options=(
        Option("source", "sources", (DEFAULT_ENDPOINT,), "the agent's endpoint", key="source", flag="--source",
               metavar="ENDPOINT"),
        Option("interval", "duration", 1_000_000_000, "one frame per interval is kept, like 1s or 100ms",
               key="interval", flag="--interval", minimum=MIN_INTERVAL_NS),
        Option("duration", "duration", 900_000_000_000, "how far back the buffer reaches, like 15m",
               key="duration", flag="--duration"),
        Option("max_bytes", "size", 2**30, "hard cap on disk use, like 1GiB", key="max_bytes",
               flag="--max-bytes", minimum=MIN_MAX_BYTES, metavar="SIZE"),
        Option("segment", "duration", None, "span of one sealed segment", key="segment"),
        Option("directory", "string", DEFAULT_DIRECTORY, "where the buffer lives", key="directory",
               flag="--directory", check=_not_empty, metavar="DIR"),
        Option("output", "string", DEFAULT_OUTPUT, "directory for snapshots", key="output", flag="--output",
               check=_not_empty, metavar="DIR"),
        Option("listen", "listen", parse_listen(DEFAULT_LISTEN), "HTTP address, like 127.0.0.1:4243",
               key="listen", flag="--listen", metavar="HOST:PORT"),
        Option("token", "string", "", "bearer token for the snapshot endpoints", key="token"),
        Option("token_file", "string", "", "file holding the bearer token", key="token_file"),
        Option("log_level", "level", "info", "debug, info, warning or error", key="log_level",
               flag="--log-level", metavar="LEVEL"),
        *CLIENT_OPTIONS,
    ),
)


@dataclass(frozen=True)
class HindsightConfig:
    """Everything hindsight needs to run."""

    sources: tuple[str, ...]
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
    curve: ClientKeys | None = None

    @property
    def source(self) -> str:
        """The first (with one source: the) agent endpoint."""
        return self.sources[0]

    @property
    def listen(self) -> str:
        """The HTTP address as written in the config."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _token(loaded: Loaded) -> str | None:
    token = loaded["token"] or None
    token_file = loaded["token_file"]
    if token and token_file:
        raise loaded.error("token_file", "give token or token_file, not both")
    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise loaded.error("token_file", f"cannot read {token_file}: {exc.strerror}") from exc
        if token is None:
            raise loaded.error("token_file", f"{token_file} is empty")
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise loaded.error("token", f"a token needs at least {MIN_TOKEN_CHARS} characters")
    return token


def load(path: str | None, overrides: dict[str, Any]) -> HindsightConfig:
    """Read the file (if any), apply flag overrides, and check everything."""
    loaded = SPEC.load(path, overrides)
    loaded.finish()
    interval, duration = loaded["interval"], loaded["duration"]
    if duration < 2 * interval:
        raise loaded.error("duration", "must be at least two intervals")
    segment = loaded["segment"]
    if segment is not None and segment < interval:
        raise loaded.error("segment", "must not be shorter than interval")
    if segment is not None and segment > duration:
        raise loaded.error("segment", "must not be longer than duration")
    sources = loaded["source"]
    if loaded["max_bytes"] // len(sources) < MIN_MAX_BYTES:
        raise loaded.error("max_bytes", f"must be at least {MIN_MAX_BYTES} bytes per source ({len(sources)} sources)")
    listen = loaded["listen"]
    token = _token(loaded)
    if token is None and not is_loopback(listen.host):
        raise loaded.error("listen", f"{listen.host} is not loopback; set token or token_file to protect snapshots")
    return HindsightConfig(
        curve=client_keys(loaded),
        sources=sources,
        interval_ns=interval,
        duration_ns=duration,
        max_bytes=loaded["max_bytes"],
        segment_ns=segment,
        directory=Path(loaded["directory"]),
        output=Path(loaded["output"]),
        host=listen.host,
        port=listen.port,
        token=token,
        log_level=loaded["log_level"],
    )


__all__ = ["ConfigError", "HindsightConfig", "is_loopback", "load"]
