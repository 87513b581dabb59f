"""The exporter's configuration: config/exporter.toml plus command-line overrides.

Invariants:
- Every key of config/exporter.toml is read here, and an unknown key is a
  ``ConfigError`` (one line, exit 2), never a silent default.
- Quantiles are fractions strictly between 0 and 1, unique and sorted; they
  are also kept as exact percents for ``rezolus_core.histogram.percentiles``.
- ``window_ns`` is the requested trailing window; the effective window is
  never shorter than one agent interval (applied at run time, when the
  interval is known from the frames).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, TypeVar

from rezolus_core import config as core_config
from rezolus_core.bus import DEFAULT_ENDPOINT
from rezolus_core.config import ConfigError, Section
from rezolus_core.log import LEVELS
from rezolus_exporter import naming

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

DEFAULT_LISTEN = "0.0.0.0:4242"
DEFAULT_QUANTILES = (0.5, 0.9, 0.99, 0.999, 0.9999)
_T = TypeVar("_T")
_ENDPOINT = re.compile(r"^(tcp://[^\s]+:\d+|ipc://\S+|inproc://\S+)$")


@dataclass(frozen=True)
class ListenAddress:
    """Host and port the HTTP server binds."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class ExporterConfig:
    """Everything the exporter needs to run."""

    listen: ListenAddress
    source: str
    log_level: str = "info"
    stale_intervals: int = 3
    summaries: bool = True
    quantiles: tuple[float, ...] = DEFAULT_QUANTILES
    window_ns: int = 15_000_000_000
    histograms: bool = False
    native_histograms: bool = False
    histogram_grouping_power: int = 3
    naming: str = "prometheus"
    gzip_level: int = 1

    @property
    def percents(self) -> tuple[float, ...]:
        """The quantiles as exact percents (0.999 -> 99.9)."""
        return tuple(float(Decimal(repr(q)) * 100) for q in self.quantiles)


def parse_listen(text: str, where: str = "listen") -> ListenAddress:
    """Parse ``HOST:PORT`` or ``[V6]:PORT`` (ValueError with the reason otherwise)."""
    match = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d+)|([^\s:\[\]]+):(\d+)", text.strip())
    if not match:
        raise ValueError(f"{where}: {text!r} is not HOST:PORT (for example 0.0.0.0:4242)")
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4))
    if not 0 <= port <= 65535:
        raise ValueError(f"{where}: port {port} is outside 0..65535")
    return ListenAddress(host, port)


def check_source(text: str, where: str = "source") -> str:
    """Return the endpoint if it looks like a ZeroMQ endpoint, else raise ValueError."""
    if not _ENDPOINT.match(text):
        raise ValueError(f"{where}: {text!r} is not an endpoint like tcp://127.0.0.1:4241")
    return text


def _quantiles(section: Section) -> tuple[float, ...]:
    values = section.floats("quantiles", list(DEFAULT_QUANTILES))
    if not values:
        raise section.error("quantiles", "needs at least one quantile")
    for q in values:
        if not 0 < q < 1:
            raise section.error("quantiles", f"{q} is not strictly between 0 and 1")
    if len(set(values)) != len(values):
        raise section.error("quantiles", "has duplicates")
    return tuple(sorted(values))


def _checked(parse: Callable[[str, str], _T], flag: str | None, text: str, origin: str, key: str) -> _T:
    """Parse a value from the command line (if given) or the file, as a ConfigError."""
    try:
        return parse(flag, f"--{key}") if flag is not None else parse(text, key)
    except ValueError as exc:
        where = "command line" if flag is not None else origin
        raise ConfigError(where, "", str(exc)) from exc


def load(
    path: str | Path | None,
    *,
    listen: str | None = None,
    source: str | None = None,
    log_level: str | None = None,
    histograms: bool | None = None,
    native_histograms: bool | None = None,
) -> ExporterConfig:
    """Read the file (or defaults when ``path`` is None), then apply CLI overrides."""
    root = core_config.load(path)
    listen_text = root.string("listen", DEFAULT_LISTEN)
    source_text = root.string("source", DEFAULT_ENDPOINT)
    level = root.string("log_level", "info")
    stale = root.integer("stale_intervals", 3, minimum=1, maximum=1000)
    prom = root.section("prometheus")
    summaries = prom.boolean("summaries", default=True)
    quantiles = _quantiles(prom)
    window_ns = prom.duration("window", "15s", minimum_ns=1_000_000)
    classic = prom.boolean("histograms", default=False)
    native = prom.boolean("native_histograms", default=False)
    grouping = prom.integer("histogram_grouping_power", 3, minimum=0, maximum=3)
    names = prom.string("naming", naming.PROMETHEUS)
    if names not in naming.NAMINGS:
        raise prom.error("naming", f"{names!r} is not one of {', '.join(naming.NAMINGS)}")
    gzip_level = root.integer("gzip_level", 1, minimum=1, maximum=9)
    prom.finish()
    root.finish()
    origin = str(path or "<defaults>")
    address = _checked(parse_listen, listen, listen_text, origin, "listen")
    endpoint = _checked(check_source, source, source_text, origin, "source")
    level = log_level or level
    if level not in LEVELS:
        raise ConfigError(str(path or "<defaults>"), "log_level", f"{level!r} is not one of {', '.join(LEVELS)}")
    return ExporterConfig(
        listen=address,
        source=endpoint,
        log_level=level,
        stale_intervals=stale,
        summaries=summaries,
        quantiles=quantiles,
        window_ns=window_ns,
        histograms=classic if histograms is None else histograms,
        native_histograms=native if native_histograms is None else native_histograms,
        histogram_grouping_power=grouping,
        naming=names,
        gzip_level=gzip_level,
    )
