"""Declared map → metric wiring of BPF samplers.

A BPF sampler's counter and histogram maps have one row per CPU (see
``samplers/rezolus.h``); most samplers only name which columns of a row are
which series.  They declare that here instead of writing code:

- ``Counters``: the first ``len(series)`` u64 of each CPU's row are counters,
  summed over CPUs, or kept per CPU with an ``id`` label (``per_cpu``).
- ``Histograms``: each CPU's row holds ``len(series)`` histograms of the
  shared bucket layout, summed over CPUs, then one word per histogram
  counting the CPU's events in it (``RZ_HIST_ROW`` in
  ``samplers/rezolus.h``).  The kernel bumps a count after the bucket, so a
  histogram whose counts on every CPU are those read before the last sum
  did not change since: only histograms whose count moved on some CPU are
  summed again, the others keep their last values.  That relies on the
  reader's loads not being reordered (x86-64); elsewhere the whole map is
  summed every frame.  A kept value holds the arrays of the frame its
  histogram last changed in (at most one such frame per histogram).
- ``CgroupTable``: rows of a per-cgroup slot table that the kernel fills
  (``samplers/rezolus_cgroup.h``, ``cgroup_table``): counters and optional
  coarse histograms per cgroup, series labelled with the cgroup's labels;
  the sampler's ``max_cgroups`` size is the capacity.

Invariants: series are registered when the sampler attaches (cgroup series
when their cgroup gets a slot), in declaration order; values are copied out
of the live maps once per frame.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from rezolus_agent import cgroup_table
from rezolus_agent.series import HistogramArrays, HistogramBlock
from rezolus_core.histogram import layout

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from rezolus_agent.bpfload import BpfMaps
    from rezolus_agent.sampler import BpfSampler
    from rezolus_agent.series import FrameBuilder, SeriesRegistry


@dataclass(frozen=True)
class Series:
    """One series (or one per CPU / per cgroup) a column of a map becomes."""

    name: str
    unit: str
    description: str
    labels: tuple[tuple[str, str], ...] = ()


def one(name: str, unit: str, description: str) -> tuple[Series]:
    """A single unlabelled series."""
    return (Series(name, unit, description),)


def each(name: str, unit: str, description: str, label: str, values: tuple[str, ...]) -> tuple[Series, ...]:
    """One series per label value, in column order."""
    return tuple(Series(name, unit, description, ((label, v),)) for v in values)


class Emitter(Protocol):
    """Bound wiring: writes its values into a frame."""

    def emit(self, out: FrameBuilder) -> None:
        """Add current values."""


class Wiring(Protocol):
    """Declared wiring: binds to a sampler's maps when it attaches."""

    def bind(self, sampler: BpfSampler, maps: BpfMaps) -> Emitter:
        """Register the series and return what emits them."""


def _counter(reg: SeriesRegistry, series: Series, before: dict[str, str], after: dict[str, str]) -> int:
    labels = {**before, **dict(series.labels), **after}
    return reg.counter(series.name, labels, series.unit, series.description)


@dataclass
class _Rows:
    ids: NDArray[np.uint32]
    rows: NDArray[np.uint64]
    per_cpu: bool

    def emit(self, out: FrameBuilder) -> None:
        out.counters(self.ids, self.rows if self.per_cpu else np.add.reduce(self.rows, axis=0, dtype=np.uint64))


@dataclass(frozen=True)
class Counters:
    """Counters in the first columns of each CPU's row of ``map``."""

    map: str
    series: tuple[Series, ...]
    per_cpu: bool = False

    def bind(self, sampler: BpfSampler, maps: BpfMaps) -> Emitter:
        """Register one series per column (per CPU when ``per_cpu``)."""
        cpus, reg = sampler.ctx.cpus, sampler.ctx.registry
        rows = maps.array(self.map).reshape(cpus, -1)[:, : len(self.series)]
        if self.per_cpu:
            grid = [[_counter(reg, s, {}, {"id": str(cpu)}) for s in self.series] for cpu in range(cpus)]
            return _Rows(np.array(grid, dtype=np.uint32), rows, per_cpu=True)
        return _Rows(np.array([_counter(reg, s, {}, {}) for s in self.series], dtype=np.uint32), rows, per_cpu=False)


CACHELINE_U64 = 8


def hist_row(histograms: int) -> int:
    """u64 per CPU of a map of ``histograms`` histograms and their event counts (``RZ_HIST_ROW``)."""
    return histograms * layout().buckets + -(-histograms // CACHELINE_U64) * CACHELINE_U64


@dataclass
class _Hists:
    block: HistogramBlock
    rows: NDArray[np.uint64]
    events: NDArray[np.uint64]
    trust_events: bool = field(default_factory=lambda: platform.machine() == "x86_64")
    _seen: bytes = b""
    _arrays: HistogramArrays | None = None

    def emit(self, out: FrameBuilder) -> None:
        seen = self.events.tobytes()
        if seen != self._seen or self._arrays is None:
            if self._seen and self._arrays is not None:
                self._arrays = self._update(seen)
            else:
                self._arrays = self.block.values(np.add.reduce(self.rows, axis=0, dtype=np.uint64), owned=True)
            self._seen = seen if self.trust_events else b""
        out.histograms(self._arrays)

    def _update(self, seen: bytes) -> HistogramArrays:
        now = np.frombuffer(seen, dtype=np.uint64).reshape(self.events.shape)
        before = np.frombuffer(self._seen, dtype=np.uint64).reshape(self.events.shape)
        changed = np.flatnonzero((now != before).any(axis=0))
        if changed.size == self.rows.shape[1]:
            dense = np.add.reduce(self.rows, axis=0, dtype=np.uint64)
        else:
            dense = np.empty((changed.size, self.rows.shape[2]), dtype=np.uint64)
            for row, hist in enumerate(changed.tolist()):
                np.add.reduce(self.rows[:, hist], axis=0, dtype=np.uint64, out=dense[row])
        return self.block.replace(changed, dense)


@dataclass(frozen=True)
class Histograms:
    """Histograms laid out one after another in each CPU's row of ``map``, then their event counts; summed over CPUs."""

    map: str
    series: tuple[Series, ...]

    def bind(self, sampler: BpfSampler, maps: BpfMaps) -> Emitter:
        """Register one histogram series per block."""
        cpus, reg, buckets = sampler.ctx.cpus, sampler.ctx.registry, layout().buckets
        per_cpu = maps.array(self.map).reshape(cpus, hist_row(len(self.series)))
        rows = per_cpu[:, : len(self.series) * buckets].reshape(cpus, len(self.series), buckets)
        ids = [reg.histogram(s.name, dict(s.labels), s.unit, s.description) for s in self.series]
        counts = per_cpu[:, len(self.series) * buckets : len(self.series) * (buckets + 1)]
        return _Hists(HistogramBlock(ids), rows, counts)


@dataclass(frozen=True)
class CgroupTable:
    """Per-cgroup rows of the slot table ``prefix`` (maps ``cgroup_table.table_maps(prefix)``).

    ``map`` holds ``max_cgroups + 1`` rows of at least ``width`` u64 (the last
    row is the overflow row); ``hist_map`` optionally holds, per slot, one
    grouping-power-2 histogram per ``hist_series``.  ``per_cpu``: ``map`` has
    one such block of rows per CPU (summed when emitted).
    """

    prefix: str
    map: str
    width: int
    series: tuple[Series, ...]
    hist_map: str | None = None
    hist_series: tuple[Series, ...] = ()
    per_cpu: bool = False

    def bind(self, sampler: BpfSampler, maps: BpfMaps) -> Emitter:
        """Follow the cgroups the kernel gives slots to (nothing without cgroup v2)."""
        hists = (self.hist_map, self.hist_series) if self.hist_map else None
        counters = (self.map, self.width, self.series)
        return cgroup_table.bind(sampler, maps, self.prefix, counters, hists, per_cpu=self.per_cpu)
