"""Configuration loading: TOML files read through a strict, typed reader.

Invariants:
- Every problem is a ``ConfigError`` whose text names the file, the dotted key
  and the problem in one line; services print it and exit with code 2.
- Unknown keys are errors (``Section.finish``), so a typo never silently
  falls back to a default.
- Durations are returned as integer nanoseconds and sizes as integer bytes,
  both at most ``LARGEST`` (2**63 - 1): a longer number is a ``ValueError``
  (so a ``ConfigError``), never an overflow deeper down.
- Negative durations and sizes are refused with "must be positive".
"""

from __future__ import annotations

import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

EXIT_CONFIG = 2
LARGEST = 2**63 - 1
_MAX_DIGITS = 40

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|m|h|d)\s*$")
_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


class ConfigError(ValueError):
    """A configuration problem, phrased for the operator."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source, self.key, self.problem = source, key, problem
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {problem}")


def _scaled(number: str, unit: int, text: str, what: str) -> int:
    """``number * unit`` as an exact integer, refused beyond ``LARGEST``."""
    too_large = ValueError(f"{abbreviate(text.strip())} is too large for a {what}")
    if len(number) > _MAX_DIGITS:
        raise too_large
    value = int((Decimal(number) * unit).to_integral_value())
    if value > LARGEST:
        raise too_large
    return value


def abbreviate(text: str, keep: int = 24) -> str:
    """``text`` quoted, or its head and length when it is long (keeps error lines short)."""
    return repr(text) if len(text) <= keep else f"{text[:keep]!r}... ({len(text)} characters)"


def parse_duration(text: str) -> int:
    """Parse ``500ms``, ``1s``, ``15m``, ``2h`` into nanoseconds (ValueError if malformed)."""
    if text.strip().startswith("-"):
        raise ValueError(f"{text.strip()!r} is not a duration: it must be positive, like 500ms, 1s or 15m")
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like 500ms, 1s, 15m or 2h")
    return _scaled(match.group(1), _DURATION_UNITS[match.group(2)], text, "duration")


def format_duration(ns: int) -> str:
    """Shortest exact human form of a nanosecond duration."""
    for unit in ("d", "h", "m", "s", "ms", "us"):
        if ns and ns % _DURATION_UNITS[unit] == 0:
            return f"{ns // _DURATION_UNITS[unit]}{unit}"
    return f"{ns}ns"


def parse_size(text: str) -> int:
    """Parse ``512MiB``, ``2GB`` or a plain byte count into bytes (ValueError if malformed)."""
    if text.strip().startswith("-"):
        raise ValueError(f"{text.strip()!r} is not a size: it must be positive, like 512MiB or 2GB")
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size like 512MiB or 2GB")
    unit = (match.group(2) or "B").lower()
    return _scaled(match.group(1), _SIZE_UNITS[unit], text, "size")


def check_size(value: int) -> int:
    """A byte count given as a TOML integer: 0..LARGEST (ValueError otherwise)."""
    if value < 0:
        raise ValueError(f"{value} is not a size: it must be positive")
    if value > LARGEST:
        raise ValueError(f"{abbreviate(str(value))} is too large for a size")
    return value


class Section:
    """A view of one TOML table that reads typed values and rejects unknown keys."""

    def __init__(self, data: dict[str, Any], source: str, prefix: str = "") -> None:
        self._data = data
        self._source = source
        self._prefix = prefix
        self._seen: set[str] = set()

    def _key(self, key: str) -> str:
        return f"{self._prefix}{key}"

    def error(self, key: str, problem: str) -> ConfigError:
        """A ConfigError about a key of this section."""
        return ConfigError(self._source, self._key(key), problem)

    def _raw(self, key: str) -> Any:
        self._seen.add(key)
        return self._data.get(key)

    def value(self, key: str) -> Any:
        """The raw TOML value of ``key`` (None when absent); marks it as read."""
        return self._raw(key)

    @property
    def source(self) -> str:
        """The file this section came from."""
        return self._source

    def where(self, key: str) -> str:
        """The dotted key as reported in errors."""
        return self._key(key)

    def has(self, key: str) -> bool:
        """Whether the key is present."""
        return key in self._data

    def keys(self) -> list[str]:
        """Keys present in this section."""
        return list(self._data)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._data))

    def string(self, key: str, default: str) -> str:
        """A string value."""
        value = self._raw(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.error(key, f"expected a string, got {value!r}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        """A boolean value."""
        value = self._raw(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {value!r}")
        return value

    def integer(self, key: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
        """An integer value within optional bounds."""
        value = self._raw(key)
        if value is None:
            return default
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.error(key, f"expected an integer, got {value!r}")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            shown = value if abs(value) <= LARGEST else abbreviate(str(value))
            raise self.error(key, f"{shown} is outside {minimum}..{maximum}")
        return value

    def duration(self, key: str, default: str, minimum_ns: int = 1) -> int:
        """A duration string, in nanoseconds."""
        text = self.string(key, default)
        try:
            ns = parse_duration(text)
        except ValueError as exc:
            raise self.error(key, str(exc)) from exc
        if ns < minimum_ns:
            raise self.error(key, f"{text} is shorter than the minimum {format_duration(minimum_ns)}")
        return ns

    def size(self, key: str, default: str) -> int:
        """A size (string like 512MiB, or an integer byte count), in bytes."""
        value = self._raw(key)
        try:
            if isinstance(value, int) and not isinstance(value, bool):
                return check_size(value)
            return parse_size(default if value is None else str(value))
        except ValueError as exc:
            raise self.error(key, str(exc)) from exc

    def floats(self, key: str, default: list[float]) -> list[float]:
        """A list of numbers."""
        value = self._raw(key)
        if value is None:
            return list(default)
        if not isinstance(value, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value
        ):
            raise self.error(key, f"expected a list of numbers, got {value!r}")
        return [float(v) for v in value]

    def strings(self, key: str, default: list[str]) -> list[str]:
        """Read a list of strings."""
        value = self._raw(key)
        if value is None:
            return list(default)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, f"expected a list of strings, got {value!r}")
        return list(value)

    def section(self, key: str) -> Section:
        """A nested table (empty when absent)."""
        value = self._raw(key)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise self.error(key, "expected a table")
        return Section(value, self._source, f"{self._key(key)}.")

    def finish(self) -> None:
        """Raise on the first key that no reader asked for."""
        for key in self._data:
            if key not in self._seen:
                raise self.error(key, "unknown key")


def load(path: str | Path | None) -> Section:
    """Read a TOML file into a root Section; None gives an empty configuration."""
    if path is None:
        return Section({}, "<defaults>")
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, "", f"cannot read: {exc.strerror}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "", f"not valid TOML: {exc}") from exc
    return Section(data, source)
