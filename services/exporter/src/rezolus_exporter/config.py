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

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from rezolus_core.address import ListenAddress, parse_listen
from rezolus_core.bus import CLIENT_OPTIONS, DEFAULT_ENDPOINT, client_keys
from rezolus_core.shell import Option, Spec
from rezolus_exporter import naming

if TYPE_CHECKING:
    from pathlib import Path

    from rezolus_core.curve import ClientKeys

PROG = "rezolus-exporter"
DEFAULT_LISTEN = "0.0.0.0:4242"
DEFAULT_QUANTILES = (0.5, 0.9, 0.99, 0.999, 0.9999)


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
    naming: str = naming.PROMETHEUS
    gzip_level: int = 1
    curve: ClientKeys | None = None

    @property
    def percents(self) -> tuple[float, ...]:
        """The quantiles as exact percents (0.999 -> 99.9)."""
        return tuple(float(Decimal(repr(q)) * 100) for q in self.quantiles)


def _check_quantiles(values: list[float]) -> str | None:
    if not values:
        return "needs at least one quantile"
    outside = next((q for q in values if not 0 < q < 1), None)
    if outside is not None:
        return f"{outside} is not strictly between 0 and 1"
    if len(set(values)) != len(values):
        return "has duplicates"
    return None


def _check_naming(value: str) -> str | None:
    if value in naming.NAMINGS:
        return None
    return f"{value!r} is not one of {', '.join(naming.NAMINGS)}"


SPEC = Spec(
    prog=PROG,
    description="Serve Rezolus agent frames as Prometheus metrics.",
    options=(
        Option("listen", "listen", parse_listen(DEFAULT_LISTEN), "HOST:PORT for HTTP", key="listen",
               flag="--listen", metavar="HOST:PORT"),
        Option("source", "source", DEFAULT_ENDPOINT, "the agent's endpoint", key="source", flag="--source",
               metavar="ENDPOINT"),
        Option("log_level", "level", "info", "debug, info, warning or error", key="log_level",
               flag="--log-level", metavar="LEVEL"),
        Option("stale_intervals", "integer", 3, "agent intervals without a frame before agent_up is 0",
               key="stale_intervals", minimum=1, maximum=1000),
        Option("gzip_level", "integer", 1, "gzip compression level", key="gzip_level", minimum=1, maximum=9),
        Option("summaries", "boolean", default=True, help="expose histograms as summaries", key="prometheus.summaries"),
        Option("quantiles", "floats", list(DEFAULT_QUANTILES), "summary quantiles",
               key="prometheus.quantiles", check=_check_quantiles),
        Option("window_ns", "duration", 15_000_000_000, "trailing window of the summaries",
               key="prometheus.window", minimum=1_000_000),
        Option("histograms", "boolean", default=False, help="expose full histograms", key="prometheus.histograms",
               flag="--histograms"),
        Option("native_histograms", "boolean", default=False,
               help="answer Prometheus's protobuf format with native histograms",
               key="prometheus.native_histograms", flag="--native-histograms"),
        Option("histogram_grouping_power", "integer", 3, "histogram resolution",
               key="prometheus.histogram_grouping_power", minimum=0, maximum=3),
        Option("naming", "string", naming.PROMETHEUS, "prometheus or rezolus (the original exporter's names)",
               key="prometheus.naming", check=_check_naming),
        *CLIENT_OPTIONS,
    ),
)


def load(path: str | Path | None, **flags: Any) -> ExporterConfig:
    """Read the file (or defaults when ``path`` is None), then apply command-line flags."""
    loaded = SPEC.load(path, flags)
    loaded.finish()
    values = dict(loaded.values)
    values["quantiles"] = tuple(sorted(values["quantiles"]))
    for option in CLIENT_OPTIONS:
        del values[option.name]
    values["curve"] = client_keys(loaded)
    return ExporterConfig(**values)


__all__ = ["SPEC", "ExporterConfig", "ListenAddress", "load", "parse_listen"]
