"""Compare the per-interval samples of two recordings series by series, and rank the changes.

Invariants:
- Series match by column name and, for histograms, quantile; a series whose
  metric type differs between the two sides, or that has no sample on one
  side, is listed apart (``only_base`` / ``only_target`` / ``unusable``)
  and never ranked.
- Every matched series gets exactly one test; the false discovery rate is
  controlled over all of them together (``stats.decide``).
- Ranking: significant rows first, then by ``score``: the change as a
  ratio (``fold``, floored as the test's log scale is, capped at
  ``FOLD_CAP``) times the standardized effect (capped at ``EFFECT_CAP``),
  so a series that moved far *and* consistently comes before one that moved
  far once; then by the effect; ties keep column order.  ``FOLD_CAP`` is
  the fold of a 100-fold change, where the floor has grown to the smaller
  side's size: beyond it the floor, not the data, sets most of the fold
  (a series from zero gets 6.66, one that grew 10^6-fold 6.65), so such
  changes tie on the fold and the effect orders them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rezolus_viewer import stats

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from rezolus_viewer.samples import Samples


EFFECT_CAP = 10.0


@dataclass(frozen=True)
class Row:
    """One ranked comparison."""

    column: str
    metric: str
    labels: Mapping[str, str]
    kind: str
    quantile: float | None
    unit: str
    base: float
    target: float
    test: stats.Test
    significant: bool

    @property
    def change(self) -> float:
        """Target minus base."""
        return self.target - self.base

    @property
    def relative(self) -> float:
        """Change relative to the base."""
        return stats.relative_change(self.base, self.target)

    @property
    def label(self) -> str:
        """Column name, with the quantile for histogram rows."""
        return self.column if self.quantile is None else f"{self.column} p{self.quantile:g}"


@dataclass
class Result:
    """Ranked rows and the series that could not be compared."""

    rows: list[Row] = field(default_factory=list)
    only_base: list[str] = field(default_factory=list)
    only_target: list[str] = field(default_factory=list)
    unusable: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Describe:
    """What the caller knows about a column: metric, labels, unit."""

    metric: str
    labels: Mapping[str, str]
    unit: str


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def fold(base: float, target: float) -> float:
    """``|log2|`` of the ratio of the magnitudes, each floored at ``stats.LOG_FLOOR`` of the larger (as tested).

    A series that starts from zero or stops gets ``log2(1 / LOG_FLOOR + 1)``
    (about 6.66): large but finite; with the floor a 100-fold change gets
    ``log2(101 / 2)`` (5.66), a 10,000-fold one 6.64.  NaN when unknown.
    """
    b, t = abs(base), abs(target)
    if math.isnan(b) or math.isnan(t):
        return math.nan
    floor = stats.LOG_FLOOR * max(b, t)
    if floor == 0:
        return 0.0
    return abs(math.log2((t + floor) / (b + floor)))


FOLD_CAP = fold(1.0, 1 / stats.LOG_FLOOR)


def score(row: Row) -> float:
    """How far a series moved: its fold change (capped at ``FOLD_CAP``) times its effect (capped at ``EFFECT_CAP``)."""
    size = min(fold(row.base, row.target), FOLD_CAP)
    effect = min(abs(row.test.effect), EFFECT_CAP)
    if math.isnan(size) or math.isnan(effect) or effect == 0:
        return 0.0
    return size * effect


def _rank_key(row: Row) -> tuple[int, float, float]:
    effect = abs(row.test.effect) if not math.isnan(row.test.effect) else -1.0
    return (0 if row.significant else 1, -score(row), -effect)


def compare(
    base: Sequence[Samples], target: Sequence[Samples], describe: Mapping[str, Describe],
    *, q: float = stats.FDR_Q, min_effect: float = stats.MIN_EFFECT, min_relative: float = stats.MIN_RELATIVE,
) -> Result:
    """Test every series present on both sides and rank the results."""
    result = Result()
    theirs = {s.key: s for s in target}
    ours = {s.key: s for s in base}
    pending: list[tuple[Samples, Samples, stats.Test]] = []
    for key, b in ours.items():
        t = theirs.get(key)
        if t is None:
            if b.quantile in {None, 50.0}:
                result.only_base.append(b.column)
            continue
        if b.kind != t.kind:
            result.unusable.append(b.column)
            continue
        test = stats.welch(b.values, t.values, log=b.kind != "gauge")
        if test.base_n == 0 or test.target_n == 0:
            if b.quantile in {None, 50.0}:
                result.unusable.append(b.column)
            continue
        pending.append((b, t, test))
    result.only_target = [s.column for k, s in theirs.items() if k not in ours and s.quantile in {None, 50.0}]
    relative = [stats.relative_change(b.reported, t.reported) for b, t, _ in pending]
    verdicts = stats.decide([p[2] for p in pending], relative, q, min_effect, min_relative)
    for (b, t, test), significant in zip(pending, verdicts, strict=True):
        info = describe.get(b.column, Describe(b.column, {}, ""))
        result.rows.append(Row(b.column, info.metric, info.labels, b.kind, b.quantile, info.unit,
                               b.reported, t.reported, test, significant))
    result.rows.sort(key=_rank_key)
    return result


def to_json(row: Row) -> dict[str, Any]:
    """One ranked row as a JSON-ready object."""
    test = row.test
    return {
        "series": {"column": row.column, "metric": row.metric, "labels": dict(row.labels),
                   "quantile": row.quantile},
        "kind": row.kind,
        "unit": row.unit,
        "base": _finite(row.base),
        "target": _finite(row.target),
        "change": _finite(row.change),
        "relative_change": _finite(row.relative),
        "effect_size": _finite(test.effect),
        "p_value": _finite(test.p_value),
        "significant": row.significant,
        "base_intervals": test.base_n,
        "target_intervals": test.target_n,
        "base_effective_intervals": round(test.base_ess, 2),
        "target_effective_intervals": round(test.target_ess, 2),
    }
