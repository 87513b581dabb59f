"""Agent metric names and units -> Prometheus names, scales and labels.

Invariants:
- Pure functions of a catalog entry; no state, no I/O.
- Names and label names match ``[a-zA-Z_][a-zA-Z0-9_]*``, are lower case
  (promtool flags camelCase) and never contain ``:`` (reserved for rules).
- Values are converted to base units: time -> seconds, data -> bytes,
  percent -> ratio; the base unit is appended to the name once
  (``cpu_usage`` in nanoseconds -> ``cpu_usage_seconds``).  A counter's
  exposed samples add ``_total`` (prometheus_client does that).
- Units that are counts of things ("operations", "syscalls", "packets",
  "frames", "cpus", ...) and any unit this module does not know are
  dimensionless: no suffix, no scaling, and the unit is named in HELP.
- ``naming = "rezolus"`` (``RAW``) keeps the original exporter's names:
  the agent's name as is, values in the agent's unit, no ``_total``.
- A label that would collide with one the exposition reserves (``le``,
  ``quantile``) or that starts with ``__`` is renamed ``exported_<name>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# unit string (lower case) -> (Prometheus base unit, multiplier, divisor)
_CONVERSIONS: dict[str, tuple[str, float, float]] = {
    "nanoseconds": ("seconds", 1.0, 1e9),
    "nanosecond": ("seconds", 1.0, 1e9),
    "ns": ("seconds", 1.0, 1e9),
    "microseconds": ("seconds", 1.0, 1e6),
    "microsecond": ("seconds", 1.0, 1e6),
    "us": ("seconds", 1.0, 1e6),
    "µs": ("seconds", 1.0, 1e6),
    "milliseconds": ("seconds", 1.0, 1e3),
    "millisecond": ("seconds", 1.0, 1e3),
    "ms": ("seconds", 1.0, 1e3),
    "seconds": ("seconds", 1.0, 1.0),
    "second": ("seconds", 1.0, 1.0),
    "s": ("seconds", 1.0, 1.0),
    "minutes": ("seconds", 60.0, 1.0),
    "hours": ("seconds", 3600.0, 1.0),
    "bytes": ("bytes", 1.0, 1.0),
    "byte": ("bytes", 1.0, 1.0),
    "kilobytes": ("bytes", 1e3, 1.0),
    "kibibytes": ("bytes", 1024.0, 1.0),
    "kib": ("bytes", 1024.0, 1.0),
    "megabytes": ("bytes", 1e6, 1.0),
    "mebibytes": ("bytes", 1024.0**2, 1.0),
    "mib": ("bytes", 1024.0**2, 1.0),
    "gigabytes": ("bytes", 1e9, 1.0),
    "gibibytes": ("bytes", 1024.0**3, 1.0),
    "gib": ("bytes", 1024.0**3, 1.0),
    "percent": ("ratio", 1.0, 100.0),
    "ratio": ("ratio", 1.0, 1.0),
    "hertz": ("hertz", 1.0, 1.0),
    "hz": ("hertz", 1.0, 1.0),
    "kilohertz": ("hertz", 1e3, 1.0),
    "megahertz": ("hertz", 1e6, 1.0),
    "mhz": ("hertz", 1e6, 1.0),
    "celsius": ("celsius", 1.0, 1.0),
    "volts": ("volts", 1.0, 1.0),
    "amperes": ("amperes", 1.0, 1.0),
    "joules": ("joules", 1.0, 1.0),
    "watts": ("watts", 1.0, 1.0),
    "meters": ("meters", 1.0, 1.0),
    "grams": ("grams", 1.0, 1.0),
}

# Name endings that spell the source unit and are replaced by the base unit.
_UNIT_ENDINGS: dict[str, tuple[str, ...]] = {
    "seconds": (
        "_nanoseconds",
        "_microseconds",
        "_milliseconds",
        "_seconds",
        "_nsec",
        "_usec",
        "_msec",
        "_secs",
        "_sec",
        "_ns",
        "_us",
        "_ms",
    ),
    "bytes": (
        "_kilobytes",
        "_megabytes",
        "_gigabytes",
        "_bytes",
        "_kib",
        "_mib",
        "_gib",
        "_kb",
        "_mb",
        "_gb",
    ),
    "ratio": ("_percent", "_pct", "_ratio"),
    "hertz": ("_kilohertz", "_megahertz", "_hertz", "_mhz", "_khz", "_hz"),
}

_INVALID = re.compile(r"[^a-zA-Z0-9_]")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_RESERVED_LABELS = frozenset({"le", "quantile"})


PROMETHEUS, REZOLUS = "prometheus", "rezolus"
NAMINGS = (PROMETHEUS, REZOLUS)


@dataclass(frozen=True)
class Unit:
    """How one catalog unit is exposed."""

    base: str | None
    multiplier: float = 1.0
    divisor: float = 1.0

    def convert(self, value: float) -> float:
        """Convert a value in the catalog unit to the base unit (exact division: ns / 1e9)."""
        return value * self.multiplier / self.divisor


RAW = Unit(None)
"""The original exporter's convention: values in the agent's own unit, nothing appended to names."""


def unit_of(unit: str) -> Unit:
    """Return how a catalog unit is exposed (dimensionless when unknown)."""
    conversion = _CONVERSIONS.get(unit.strip().lower())
    if conversion is None:
        return Unit(None)
    return Unit(*conversion)


def _snake(text: str) -> str:
    out = _INVALID.sub("_", _CAMEL.sub("_", text)).lower()
    out = re.sub(r"__+", "_", out) if not out.startswith("__") else out
    if not out or out[0].isdigit():
        out = f"_{out}"
    return out


def metric_name(name: str, unit: Unit, *, counter: bool) -> str:
    """Return the exposed family name (a counter's samples add ``_total`` to it)."""
    base = _snake(name).strip("_") or "metric"
    if base[0].isdigit():
        base = f"_{base}"
    if counter and base.endswith("_total"):
        base = base[: -len("_total")]
    if unit.base is not None:
        for ending in _UNIT_ENDINGS.get(unit.base, ()):
            if base.endswith(ending) and len(base) > len(ending):
                base = base[: -len(ending)]
                break
        base = f"{base}_{unit.base}"
    return base


def label_name(name: str) -> str:
    """Return a valid, non-reserved label name for a catalog label key."""
    out = _snake(name)
    if out.startswith("__") or out in _RESERVED_LABELS:
        out = f"exported_{out.lstrip('_')}"
    return out


def help_text(description: str, unit: str, exposed: Unit) -> str:
    """HELP line: the catalog description, naming the unit when it is not in the name."""
    text = " ".join(description.split()) or "Rezolus agent metric"
    if exposed.base is None and unit.strip():
        return f"{text} ({unit.strip()})"
    return text
