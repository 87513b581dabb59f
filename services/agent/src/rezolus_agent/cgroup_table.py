"""Per-cgroup series from slot tables that the kernel fills (``samplers/rezolus_cgroup.h``).

The kernel gives a cgroup a slot on its first event, so counting never waits
for the agent.  Once per frame the agent reads the slot owners, names new
cgroups, emits every owned slot's rows, and frees the slots of removed
cgroups.

Invariants:
- A slot is emitted in every frame while it has an owner; a cgroup that came
  and went within one interval is emitted once, with its final counts, in the
  next frame, then its series stop.  Slots that stay owned are emitted
  together (one gather per map); a slot to be freed is emitted on its own
  right before it is freed.
- A removed cgroup's slot is freed only after its final counts were copied
  into the frame: the id leaves the hash, the owner is cleared (tasks with a
  cached slot stop using it), the rows are zeroed, then the slot is pushed
  back onto the free queue.
- Slots whose cgroup is gone without a ``cgroup_rmdir`` seen by the kernel
  (a dying task's last event after the slot was freed claims a new one) are
  found by a periodic walk and freed the same way.
- The owner table's last word is a generation the kernel bumps after each
  change of an owner or removal flag; while it and the periodic walk say
  nothing changed (and the agent freed nothing), the slots of the last frame
  are emitted again without re-reading the owners.  That relies on the
  reader's loads not being reordered (x86-64); elsewhere the owners are
  read every frame.
- The overflow row (events of cgroups that found no free slot) becomes
  series labelled ``name="(overflow)"`` once it is non-zero, and
  ``rezolus_cgroup_overflow{sampler}`` counts the cgroups that overflowed.
- Names come from the shared ``CgroupIndex`` walk, else from the paths the
  kernel recorded at ``cgroup_mkdir`` (an LRU map shared by all samplers, so
  no sampler deletes from it), else ``name="id:<cgroup id>"``.
- Per-cgroup histograms have grouping power 2 in the kernel; each coarse
  bucket is carried in the 496-bucket layout at the fine bucket holding its
  upper bound, so percentiles read the coarse bucket's inclusive upper bound.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from rezolus_agent import bpfsys
from rezolus_agent.cgroups import CgroupIndex, CgroupLabeler, shared
from rezolus_agent.series import HistogramBlock
from rezolus_core.histogram import layout

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from rezolus_agent.bpfload import BpfMaps
    from rezolus_agent.sampler import BpfSampler
    from rezolus_agent.series import FrameBuilder, SeriesRegistry
    from rezolus_agent.wiring import Series

CGROUP_HIST_GROUPING_POWER = 2
NAMES_MAP = "rz_cgroup_names"
PATH_LEN = 256
OVERFLOW = "(overflow)"
SWEEP_S = 30.0
RECORDED_MAX = 4096


@cache
def widen_index() -> NDArray[np.intp]:
    """For each coarse (grouping power 2) bucket, the fine bucket that holds its upper bound."""
    coarse = layout(CGROUP_HIST_GROUPING_POWER)
    return layout().index(coarse.upper)


def table_maps(prefix: str) -> tuple[str, ...]:
    """The maps of one slot table (for a sampler's ``BpfSpec.maps``)."""
    return (f"{prefix}_cgroup_slot", f"{prefix}_cgroup_free", f"{prefix}_cgroup_owner", NAMES_MAP)


@dataclass
class _Slot:
    cgroup: int
    counters: NDArray[np.uint32]
    histograms: list[int]


@dataclass
class Namer:
    """Labels of a cgroup id: walk first, then the kernel's mkdir record."""

    index: CgroupIndex
    labeler: CgroupLabeler
    names_fd: int
    recorded: dict[int, str] = field(default_factory=dict)

    def path(self, cgroup: int) -> str | None:
        """The cgroup's path below the cgroup2 mount, if known."""
        path = self.index.paths.get(cgroup) or self.recorded.get(cgroup)
        if path is not None:
            return path
        raw = bpfsys.lookup(self.names_fd, cgroup.to_bytes(8, "little"), PATH_LEN)
        if raw is not None:
            path = raw.split(b"\0", 1)[0].decode(errors="replace") or "/"
            if len(self.recorded) >= RECORDED_MAX:
                self.recorded.pop(next(iter(self.recorded)))
            self.recorded[cgroup] = path
            return path
        return self.index.refresh().get(cgroup)

    def labels(self, cgroup: int) -> dict[str, str]:
        """``name`` (and container labels) of a cgroup."""
        path = self.path(cgroup)
        if path is None:
            return {"name": f"id:{cgroup}"}
        return self.labeler.labels(path)

class CgroupRows:
    """One sampler's kernel-filled slot table and the series of its slots."""

    def __init__(self, *, sampler: BpfSampler, maps: BpfMaps, prefix: str, namer: Namer,
                 counters: tuple[str, int, tuple[Series, ...]],
                 histograms: tuple[str, tuple[Series, ...]] | None, per_cpu: bool = False) -> None:
        self.capacity = sampler.sizes["max_cgroups"]
        self.registry: SeriesRegistry = sampler.ctx.registry
        self.namer = namer
        self._slot_fd = maps.fds[f"{prefix}_cgroup_slot"]
        self._free_fd = maps.fds[f"{prefix}_cgroup_free"]
        self.owners = maps.array(f"{prefix}_cgroup_owner").reshape(self.capacity + 1, 2)
        cmap, width, self.counter_series = counters
        cpus = sampler.ctx.cpus if per_cpu else 1
        self._counter_rows = maps.array(cmap).reshape(cpus, self.capacity + 1, -1)
        self.rows = self._counter_rows[:, :, :width]
        self.hist_series: tuple[Series, ...] = ()
        self.hists: NDArray[np.uint64] | None = None
        if histograms is not None:
            hmap, self.hist_series = histograms
            coarse = layout(CGROUP_HIST_GROUPING_POWER).buckets
            self.hists = maps.array(hmap).reshape(self.capacity + 1, len(self.hist_series), coarse)
        self.slots: dict[int, _Slot] = {}
        self.overflow: _Slot | None = None
        self.overflow_id = self.registry.counter(
            "rezolus_cgroup_overflow", {"sampler": sampler.name}, "cgroups",
            'Cgroups that found every per-cgroup slot taken; their events are in name="(overflow)".')
        self._swept = time.monotonic()
        self._kept_key: tuple[tuple[int, int], ...] | None = None
        self._kept_index = np.zeros(0, dtype=np.intp)
        self._kept_ids = np.zeros(0, dtype=np.uint32)
        self._kept_hists: HistogramBlock | None = None
        self._generation: int | None = None
        self._trust_generation = platform.machine() == "x86_64"

    def _register(self, cgroup: int, labels: dict[str, str]) -> _Slot:
        reg = self.registry
        counters = [reg.counter(s.name, {**labels, **dict(s.labels)}, s.unit, s.description)
                    for s in self.counter_series]
        hists = [reg.histogram(s.name, {**labels, **dict(s.labels)}, s.unit, s.description)
                 for s in self.hist_series]
        return _Slot(cgroup, np.array(counters, dtype=np.uint32), hists)

    def _emit_row(self, out: FrameBuilder, slot: int, entry: _Slot) -> None:
        out.counters(entry.counters, self.rows[:, slot].sum(axis=0, dtype=np.uint64))
        if self.hists is not None and entry.histograms:
            fine = np.zeros((len(entry.histograms), layout().buckets), dtype=np.uint64)
            fine[:, widen_index()] = self.hists[slot]
            for sid, dense in zip(entry.histograms, fine, strict=True):
                out.histogram(sid, dense)

    def _free(self, slot: int, cgroup: int) -> None:
        bpfsys.delete(self._slot_fd, cgroup.to_bytes(8, "little"))
        self.owners[slot, 0] = 0
        self._counter_rows[:, slot] = 0
        if self.hists is not None:
            self.hists[slot] = 0
        self.owners[slot, 1] = 0
        bpfsys.push(self._free_fd, slot.to_bytes(4, "little"))
        self.slots.pop(slot, None)

    def _gone(self, live: list[tuple[int, int]]) -> set[int]:
        """Slots whose cgroup a fresh walk no longer finds (checked every ``SWEEP_S``)."""
        now = time.monotonic()
        if now - self._swept < SWEEP_S:
            return set()
        self._swept = now
        known_before = {s for s, c in live if s in self.slots and self.slots[s].cgroup == c}
        self.namer.index.min_refresh_s, saved = 0.0, self.namer.index.min_refresh_s
        try:
            paths = self.namer.index.refresh()
        finally:
            self.namer.index.min_refresh_s = saved
        return {s for s, c in live if s in known_before and c not in paths}

    def _plan_kept(self, slots: list[int]) -> None:
        """Ids, gather index and histogram block of the slots that stay owned, rebuilt when the owners change."""
        key = tuple((slot, self.slots[slot].cgroup) for slot in slots)
        if key != self._kept_key:
            self._kept_key = key
            self._kept_index = np.array(slots, dtype=np.intp)
            self._kept_ids = np.array([sid for s in slots for sid in self.slots[s].counters], dtype=np.uint32)
            hists = [sid for s in slots for sid in self.slots[s].histograms]
            self._kept_hists = HistogramBlock(hists, widen_index()) if hists and self.hists is not None else None

    def _emit_kept(self, out: FrameBuilder) -> None:
        """Emit the slots that stay owned: one gather per map.

        Per-CPU rows of a table a third or more in use are summed whole and
        then gathered: gathering first copies every CPU's rows (3-4 times
        slower at 192 CPUs and 2,000 cgroups).
        """
        if not self._kept_index.size:
            return
        if 3 * self._kept_index.size >= self.capacity:
            totals = np.add.reduce(self.rows, axis=0, dtype=np.uint64)[self._kept_index]
        else:
            totals = np.add.reduce(self.rows[:, self._kept_index], axis=0, dtype=np.uint64)
        out.counters(self._kept_ids, totals)
        if self._kept_hists is not None and self.hists is not None:
            block = self.hists[self._kept_index]
            out.histograms(self._kept_hists.values(block.reshape(-1, block.shape[-1]), owned=True))

    def _replan(self, out: FrameBuilder) -> bool:
        """Read the owners, name new cgroups, emit every owned slot, free removed ones; whether any was freed."""
        owners = self.owners[: self.capacity].copy()
        live = [(int(s), int(owners[s, 0])) for s in np.flatnonzero(owners[:, 0])]
        gone = self._gone(live)
        for slot, cgroup in live:
            entry = self.slots.get(slot)
            if entry is None or entry.cgroup != cgroup:
                self.slots[slot] = self._register(cgroup, self.namer.labels(cgroup))
        freeing = [(slot, cgroup) for slot, cgroup in live if owners[slot, 1] or slot in gone]
        self._plan_kept([slot for slot, _ in live if not (owners[slot, 1] or slot in gone)])
        self._emit_kept(out)
        for slot, cgroup in freeing:
            self._emit_row(out, slot, self.slots[slot])
            self._free(slot, cgroup)
        return bool(freeing)

    def emit(self, out: FrameBuilder) -> None:
        """Emit every owned slot and the overflow row; free removed cgroups' slots after emitting.

        A slot to be freed is emitted on its own just before it is freed (as
        close to the zeroing as possible); the others are emitted together.
        """
        generation = int(self.owners[self.capacity, 1])
        if generation != self._generation or time.monotonic() - self._swept >= SWEEP_S:
            freed = self._replan(out)
            self._generation = None if freed or not self._trust_generation else generation
        else:
            self._emit_kept(out)
        overflowed = int(self.owners[self.capacity, 0])
        out.counter(self.overflow_id, overflowed)
        if self.overflow is None and (overflowed or self.rows[:, self.capacity].any()):
            self.overflow = self._register(0, {"name": OVERFLOW})
        if self.overflow is not None:
            self._emit_row(out, self.capacity, self.overflow)


class _Nothing:
    def emit(self, out: FrameBuilder) -> None:
        """No cgroup v2 here: nothing to emit."""


def bind(sampler: BpfSampler, maps: BpfMaps, prefix: str,
         counters: tuple[str, int, tuple[Series, ...]],
         histograms: tuple[str, tuple[Series, ...]] | None, *, per_cpu: bool = False) -> CgroupRows | _Nothing:
    """The per-cgroup emitter of one sampler (nothing without cgroup v2)."""
    found = shared(sampler)
    if found is None:
        return _Nothing()
    index, labeler = found
    namer = sampler.ctx.extra.get("cgroup_namer")
    if not isinstance(namer, Namer):
        namer = sampler.ctx.extra["cgroup_namer"] = Namer(index, labeler, maps.fds[NAMES_MAP])
    index.refresh()
    return CgroupRows(sampler=sampler, maps=maps, prefix=prefix, namer=namer,
                      counters=counters, histograms=histograms, per_cpu=per_cpu)
