"""The service shell: one Config shape for every service, declared as a table of options.

A service declares its settings once, as ``Option`` rows (name, kind,
default, TOML key, command-line flag, help, limits, extra check), in a
``Spec``.  ``Spec.parser`` builds the command line from it (``--config FILE``
plus one flag per option), ``Spec.load`` reads the TOML file strictly and
puts the flags on top.

Invariants:
- A flag given on the command line wins over the same setting in the file;
  a setting in neither has its declared default.
- Every value, from the file or a flag, goes through the same converter and
  the same limits; every problem is one ``ConfigError`` naming where it came
  from (``FILE: dotted.key: ...`` or ``command line: --flag: ...``), so
  ``lifecycle.guard_config`` prints one line and exits 2.
- Unknown keys in the file are errors (``Loaded.finish``), also inside
  tables the service reads itself (``Loaded.section``).
- A value flag always takes the next word, even one starting with ``-``
  (``--interval -1s`` says the interval must be positive, ``--count -1`` is
  out of range), rather than argparse's "expected one argument".
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from rezolus_core import address
from rezolus_core.config import (
    LARGEST,
    ConfigError,
    Section,
    abbreviate,
    check_size,
    format_duration,
    load,
    parse_duration,
    parse_size,
)
from rezolus_core.log import LEVELS

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

Kind = Literal[
    "string", "boolean", "integer", "number", "duration", "size",
    "listen", "source", "sources", "bind", "level", "floats", "strings",
]
COMMAND_LINE = "command line"
_SHORT = 24


@dataclass(frozen=True)
class Option:
    """One setting: where it is read from, its type, its limits and its help."""

    name: str
    kind: Kind
    default: Any
    help: str
    key: str | None = None
    flag: str | None = None
    minimum: int | float | None = None
    maximum: int | float | None = None
    check: Callable[[Any], str | None] | None = None
    metavar: str | None = None


def _bounded(value: int) -> int:
    if abs(value) > LARGEST:
        raise ValueError(f"{abbreviate(str(value))} is too large")
    return value


def _typed(kind: Kind, raw: Any, from_flag: bool) -> Any:  # noqa: C901, PLR0911, PLR0912 - one branch per kind
    """Convert a raw TOML value or flag text to the option's type (ValueError with the reason)."""
    if kind == "boolean":
        if not isinstance(raw, bool):
            raise ValueError(f"expected true or false, got {raw!r}")
        return raw
    if kind in {"floats", "strings"}:
        item = (int, float) if kind == "floats" else (str,)
        if not isinstance(raw, list) or not all(isinstance(v, item) and not isinstance(v, bool) for v in raw):
            raise ValueError(f"expected a list of {'numbers' if kind == 'floats' else 'strings'}, got {raw!r}")
        return [float(v) for v in raw] if kind == "floats" else list(raw)
    if kind == "integer":
        if from_flag:
            try:
                whole = int(raw)
            except ValueError:
                raise ValueError(f"expected an integer, got {abbreviate(str(raw))}") from None
            return _bounded(whole)
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise ValueError(f"expected an integer, got {raw!r}")
        return _bounded(raw)
    if kind == "number":
        if from_flag:
            try:
                number = float(raw)
            except ValueError:
                raise ValueError(f"expected a number, got {abbreviate(str(raw))}") from None
        elif not isinstance(raw, int | float) or isinstance(raw, bool):
            raise ValueError(f"expected a number, got {raw!r}")
        else:
            number = float(raw)
        if not math.isfinite(number):
            raise ValueError(f"{abbreviate(str(raw))} is not a finite number")
        return number
    if kind == "size" and isinstance(raw, int) and not isinstance(raw, bool):
        return check_size(raw)
    if kind == "sources":
        return _sources(raw)
    if not isinstance(raw, str):
        raise ValueError(f"expected a string, got {raw!r}")  # noqa: TRY004 - an operator's mistake: a ConfigError
    if kind == "duration":
        return parse_duration(raw)
    if kind == "size":
        return parse_size(raw)
    if kind == "listen":
        return address.parse_listen(raw)
    if kind == "source":
        return address.parse_source(raw)
    if kind == "bind":
        return address.parse_bind(raw)
    if kind == "level" and raw not in LEVELS:
        raise ValueError(f"{raw!r} is not one of {', '.join(LEVELS)}")
    return raw


def _sources(raw: Any) -> tuple[str, ...]:
    """One agent endpoint or a list of them (a repeated flag), each checked, none twice."""
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items or not all(isinstance(v, str) for v in items):
        raise ValueError(f"expected an endpoint or a list of endpoints, got {abbreviate(repr(raw))}")
    endpoints = tuple(address.parse_source(v) for v in items)
    twice = sorted({e for e in endpoints if endpoints.count(e) > 1})
    if twice:
        raise ValueError(f"{twice[0]} is given twice")
    return endpoints


def _range(low: float | None, high: float | None, value: float, raw: Any) -> None:
    if (low is not None and value < low) or (high is not None and value > high):
        shown = abbreviate(str(raw)) if len(str(raw)) > _SHORT else raw
        if high is None:
            raise ValueError(f"must be at least {low}, got {shown}")
        if low is None:
            raise ValueError(f"must be at most {high}, got {shown}")
        raise ValueError(f"{shown} is outside {low}..{high}")


def _limits(option: Option, value: Any, raw: Any) -> None:
    """Apply the option's limits and check (ValueError with the reason)."""
    low = option.minimum
    if option.kind == "duration" and value is not None:
        if value <= 0:
            raise ValueError(f"{raw} must be positive")
        if low is not None and value < low:
            raise ValueError(f"{raw} is shorter than the minimum {format_duration(int(low))}")
    elif option.kind == "size" and value is not None:
        if low is not None and value < low:
            raise ValueError(f"must be at least {int(low)} bytes, got {raw}")
    elif option.kind in {"integer", "number"}:
        _range(low, option.maximum, value, raw)
    if option.check is not None and value is not None:
        problem = option.check(value)
        if problem:
            raise ValueError(problem)


@dataclass
class Loaded:
    """The settings of one service, with the file's tables for service-specific reading."""

    values: dict[str, Any]
    origins: dict[str, tuple[str, str]]
    root: Section
    _sections: dict[str, Section] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def section(self, dotted: str) -> Section:
        """The file's table at ``dotted`` (read once; finished by ``finish``)."""
        if dotted not in self._sections:
            parent, _, last = dotted.rpartition(".")
            base = self.section(parent) if parent else self.root
            self._sections[dotted] = base.section(last)
        return self._sections[dotted]

    def error(self, name: str, problem: str) -> ConfigError:
        """A ConfigError about a setting, naming where its value came from."""
        source, key = self.origins[name]
        return ConfigError(source, key, problem)

    def finish(self) -> None:
        """Raise on the first key of the file that nothing read (deepest tables first)."""
        for dotted in sorted(self._sections, key=lambda d: -d.count(".")):
            self._sections[dotted].finish()
        self.root.finish()


@dataclass(frozen=True)
class Spec:
    """A service's settings: its program name and its table of options."""

    prog: str
    description: str
    options: tuple[Option, ...]
    config_help: str = "TOML configuration file (default: built-in defaults)"

    def parser(self, *, config_flag: bool = True) -> argparse.ArgumentParser:
        """The command line: ``--config FILE`` plus one flag per option with a flag."""
        parser = argparse.ArgumentParser(prog=self.prog, description=self.description)
        if config_flag:
            parser.add_argument("--config", metavar="FILE", help=self.config_help)
        for option in self.options:
            if option.flag is None:
                continue
            shown = "" if option.default is None else f" (default {self._shown(option)})"
            if option.kind == "boolean":
                parser.add_argument(option.flag, dest=option.name, action="store_const", const=True,
                                    default=None, help=option.help + shown)
            elif option.kind == "sources":
                parser.add_argument(option.flag, dest=option.name, action="append", default=None,
                                    help=option.help + shown + "; repeat it for several",
                                    metavar=option.metavar or option.name.upper())
            else:
                parser.add_argument(option.flag, dest=option.name, default=None, help=option.help + shown,
                                    metavar=option.metavar or option.name.upper().replace("_", "-"))
        return parser

    @staticmethod
    def _shown(option: Option) -> str:
        if option.kind == "duration" and isinstance(option.default, int):
            return format_duration(option.default)
        if option.kind == "sources" and isinstance(option.default, tuple):
            return " ".join(option.default)
        return str(option.default).replace("%", "%%")

    def value_flags(self) -> set[str]:
        """Flags that take a value."""
        return {o.flag for o in self.options if o.flag is not None and o.kind != "boolean"} | {"--config"}

    def normalize(self, argv: Sequence[str], extra_value_flags: set[str] | None = None) -> list[str]:
        """Join ``--flag VALUE`` into ``--flag=VALUE`` when VALUE starts with ``-``."""
        takes = self.value_flags() | (extra_value_flags or set())
        out: list[str] = []
        args = list(argv)
        i = 0
        while i < len(args):
            word = args[i]
            if word == "--":
                out.extend(args[i:])
                break
            if word in takes and i + 1 < len(args) and args[i + 1].startswith("-") and args[i + 1] != "--":
                out.append(f"{word}={args[i + 1]}")
                i += 2
                continue
            out.append(word)
            i += 1
        return out

    def flags(self, namespace: argparse.Namespace) -> dict[str, Any]:
        """The flag values given on the command line (None: not given)."""
        return {o.name: getattr(namespace, o.name, None) for o in self.options if o.flag is not None}

    def load(self, path: str | Path | None, flags: Mapping[str, Any] | None = None) -> Loaded:
        """Read the file (defaults when None), put the given flags on top, check every value.

        Call ``finish`` on the result after reading any service-specific tables.
        """
        loaded = Loaded({}, {}, load(path))
        given = {k: v for k, v in (flags or {}).items() if v is not None}
        for option in self.options:
            file_value = self._from_file(loaded, option)
            if option.name in given:
                where = (COMMAND_LINE, option.flag or option.name)
                loaded.origins[option.name] = where
                loaded.values[option.name] = self._convert(option, given[option.name], where, from_flag=True)
            else:
                loaded.values[option.name] = file_value
        return loaded

    def _from_file(self, loaded: Loaded, option: Option) -> Any:
        if option.key is None:
            loaded.origins[option.name] = (loaded.root.source, option.name)
            return option.default
        parent, _, last = option.key.rpartition(".")
        section = loaded.section(parent) if parent else loaded.root
        where = (section.source, section.where(last))
        loaded.origins[option.name] = where
        raw = section.value(last)
        if raw is None:
            return option.default
        return self._convert(option, raw, where, from_flag=False)

    @staticmethod
    def _convert(option: Option, raw: Any, where: tuple[str, str], *, from_flag: bool) -> Any:
        try:
            value = _typed(option.kind, raw, from_flag)
            _limits(option, value, raw)
        except ValueError as exc:
            raise ConfigError(where[0], where[1], str(exc)) from None
        return value


def config_path(namespace: argparse.Namespace, positional: str = "config_file") -> str | None:
    """The configuration file from ``--config`` or an optional positional (not both)."""
    flag = getattr(namespace, "config", None)
    given = getattr(namespace, positional, None)
    if flag and given and flag != given:
        raise ConfigError(COMMAND_LINE, "--config", f"two configuration files given: {given} and {flag}")
    return flag or given


__all__ = ["COMMAND_LINE", "ConfigError", "Loaded", "Option", "Spec", "config_path"]
