"""The terminal table of ``rezolus compare`` (rich): the top rows, then the series found on one side only."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from rezolus_viewer.compare import Result

_LISTED = 10
WIDE = 200


def number(value: float | None) -> str:
    """A short human form of a value (4 significant digits, SI suffix)."""
    if value is None or math.isnan(value):
        return "-"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    size = abs(value)
    for limit, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if size >= limit:
            return f"{value / limit:.4g}{suffix}"
    return f"{value:.4g}"


def _percent(value: float) -> str:
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return "new" if value > 0 else "gone"
    return f"{value * 100:+.1f}%"


def _unit(kind: str, unit: str) -> str:
    return f"{unit}/s" if kind == "counter" and unit else unit


def show(result: Result, top: int, console: Console | None = None) -> None:
    """Print the ranked table and the one-sided series."""
    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=WIDE)
    shown = result.rows[:top]
    significant = sum(r.significant for r in result.rows)
    table = Table(title=f"{significant} of {len(result.rows)} series changed significantly (top {len(shown)} shown)")
    for name, justify in (("#", "right"), ("series", "left"), ("kind", "left"), ("base", "right"),
                          ("target", "right"), ("change", "right"), ("effect", "right"), ("p", "right"),
                          ("sig", "center")):
        table.add_column(name, justify=justify, no_wrap=name != "series", overflow="fold")  # type: ignore[arg-type]
    for rank, row in enumerate(shown, 1):
        unit = _unit(row.kind, row.unit)
        table.add_row(
            str(rank), row.label, row.kind,
            f"{number(row.base)} {unit}".strip(), f"{number(row.target)} {unit}".strip(),
            _percent(row.relative), number(row.test.effect), f"{row.test.p_value:.2g}",
            "[bold green]yes[/]" if row.significant else "", style=None if row.significant else "dim",
        )
    console.print(table)
    for what, names in (("only in base", result.only_base), ("only in target", result.only_target),
                        ("not comparable", result.unusable)):
        if names:
            more = f" … and {len(names) - _LISTED} more" if len(names) > _LISTED else ""
            console.print(f"{what}: {len(names)} series: {', '.join(names[:_LISTED])}{more}", highlight=False)
