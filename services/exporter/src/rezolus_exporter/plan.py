"""A catalog's exposition plan: which family every agent series is exposed in.

Invariants:
- Built once per catalog (instance and version) and immutable afterwards.
- Every family name and every sample name it implies (``_total``, ``_sum``,
  ``_count``, ``_bucket``) is unique across the plan and never starts with
  ``rezolus_exporter_`` (the exporter's own namespace), so the exposition can
  never carry two families or two series with one name.
- A series that would break that (same exposed name with another type or
  unit, a duplicate label set after sanitising) is dropped and reported in
  ``dropped`` with the reason; nothing is dropped silently.
- Families are sorted by name and series keep catalog order, so the
  exposition of a given frame sequence is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rezolus_core.frame import MetricType
from rezolus_exporter import naming

if TYPE_CHECKING:
    from rezolus_core.frame import Catalog, SeriesSpec

SELF_PREFIX = "rezolus_exporter_"
HISTOGRAM_INFIX = "distribution"

COUNTER, GAUGE, SUMMARY, HISTOGRAM = "counter", "gauge", "summary", "histogram"
_SAMPLE_SUFFIXES = {
    COUNTER: ("_total", "_created"),
    GAUGE: (),
    SUMMARY: ("_sum", "_count", "_created"),
    HISTOGRAM: ("_bucket", "_sum", "_count", "_created"),
}


@dataclass
class Family:
    """One exposed metric family and the catalog series it carries."""

    name: str
    kind: str
    help: str
    unit: naming.Unit
    source: str
    series: list[tuple[int, dict[str, str]]] = field(default_factory=list)


@dataclass(frozen=True)
class Plan:
    """Families in name order, plus the series left out and why."""

    instance: str
    version: int
    families: tuple[Family, ...]
    dropped: tuple[tuple[str, str], ...]


def histogram_family_name(summary_name: str, unit: naming.Unit, *, with_summaries: bool) -> str:
    """Name the full histogram: as the summary, or with ``_distribution`` when both exist."""
    if not with_summaries:
        return summary_name
    if unit.base is not None:
        stem = summary_name[: -len(unit.base) - 1]
        return f"{stem}_{HISTOGRAM_INFIX}_{unit.base}"
    return f"{summary_name}_{HISTOGRAM_INFIX}"


def _rezolus_outputs(spec: SeriesSpec, summaries: bool, histograms: bool) -> list[tuple[str, str]]:
    """The original exporter's names: the agent's name as is, histograms as ``<name>_distribution``."""
    name = naming.metric_name(spec.name, naming.RAW, counter=False)
    if spec.type is MetricType.COUNTER:
        return [(COUNTER, name)]
    if spec.type is MetricType.GAUGE:
        return [(GAUGE, name)]
    out = []
    if summaries:
        out.append((SUMMARY, name))
    if histograms:
        out.append((HISTOGRAM, f"{name}_{HISTOGRAM_INFIX}"))
    return out


def _outputs(spec: SeriesSpec, summaries: bool, histograms: bool) -> list[tuple[str, str]]:
    unit = naming.unit_of(spec.unit)
    if spec.type is MetricType.COUNTER:
        return [(COUNTER, naming.metric_name(spec.name, unit, counter=True))]
    if spec.type is MetricType.GAUGE:
        return [(GAUGE, naming.metric_name(spec.name, unit, counter=False))]
    name = naming.metric_name(spec.name, unit, counter=False)
    out = []
    if summaries:
        out.append((SUMMARY, name))
    if histograms:
        out.append((HISTOGRAM, histogram_family_name(name, unit, with_summaries=summaries)))
    return out


def _labels(spec: SeriesSpec, kind: str) -> dict[str, str]:
    labels = {naming.label_name(k): v for k, v in spec.labels.items()}
    if len(labels) != len(spec.labels):
        raise ValueError("two label names become one after sanitising")
    if kind in {SUMMARY, HISTOGRAM}:
        reserved = "quantile" if kind == SUMMARY else "le"
        if kind == SUMMARY and "percentile" in labels:
            raise ValueError("label 'percentile' is reserved")
        if reserved in labels:
            raise ValueError(f"label {reserved!r} is reserved")
    return labels


def build(catalog: Catalog, *, summaries: bool, histograms: bool, names: str = naming.PROMETHEUS) -> Plan:
    """Group the catalog's series into exposed families (``names``: Prometheus conventions or the original's)."""
    builder = _Builder(raw=names == naming.REZOLUS)
    outputs = _rezolus_outputs if builder.raw else _outputs
    for spec in catalog.series:
        for kind, name in outputs(spec, summaries, histograms):
            reason = builder.admit(spec, kind, name)
            if reason is not None:
                builder.dropped.append((_describe(spec), reason))
    families = builder.families
    ordered = tuple(families[name] for name in sorted(families) if families[name].series)
    return Plan(catalog.instance, catalog.version, ordered, tuple(builder.dropped))


@dataclass
class _Builder:
    raw: bool = False
    families: dict[str, Family] = field(default_factory=dict)
    claimed: dict[str, str] = field(default_factory=dict)
    keys: dict[str, set[tuple[tuple[str, str], ...]]] = field(default_factory=dict)
    dropped: list[tuple[str, str]] = field(default_factory=list)

    def admit(self, spec: SeriesSpec, kind: str, name: str) -> str | None:
        """Add the series to its family; return why it cannot be added, if so."""
        unit = naming.RAW if self.raw else naming.unit_of(spec.unit)
        if name.startswith(SELF_PREFIX):
            return f"{name} is in the exporter's own namespace"
        family = self.families.get(name)
        if family is None:
            samples = [name, *(name + suffix for suffix in _SAMPLE_SUFFIXES[kind])]
            clash = next((s for s in samples if s in self.claimed), None)
            if clash is not None:
                return f"{clash} is already used by {self.claimed[clash]}"
            text = naming.help_text(spec.description, spec.unit, unit)
            family = Family(name, kind, text, unit, spec.name)
            self.families[name] = family
            self.keys[name] = set()
            for sample in samples:
                self.claimed[sample] = f"{spec.name} ({kind})"
        elif family.kind != kind or family.unit != unit or family.source != spec.name:
            return f"{name} is already a {family.kind} of {family.source} ({spec.unit!r})"
        try:
            labels = _labels(spec, kind)
        except ValueError as exc:
            return str(exc)
        key = tuple(sorted(labels.items()))
        if key in self.keys[name]:
            return f"duplicate label set in {name}"
        self.keys[name].add(key)
        family.series.append((spec.id, labels))
        return None


def _describe(spec: SeriesSpec) -> str:
    inner = ",".join(f"{k}={v}" for k, v in sorted(spec.labels.items()))
    return f"{spec.name}{{{inner}}}"
