"""BPF map → frame shortcuts give the frames the plain way gives (issue #19).

The emitters of per-CPU histogram maps (``wiring.Histograms``) and of the
kernel-filled per-cgroup slot tables (``cgroup_table.CgroupRows``) compute
sparse histograms for a whole block at once, reuse the values of unchanged
rows and re-plan the owned slots only when the owner table changes.  Here
they replay a recording of map contents (seeded: rows that change, frames
where nothing changes, cgroups that claim a slot, a cgroup removed with
final counts, the overflow row appearing) and every frame is compared, by
series name and labels, with a reference computed the plain way from the
same recording: per CPU sums and ``histogram.to_sparse`` row by row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rezolus_agent import cgroup_table, wiring
from rezolus_agent.bpfload import BpfMaps
from rezolus_agent.cgroups import CgroupLabeler
from rezolus_agent.sampler import BpfSampler, BpfSpec, SamplerContext
from rezolus_agent.samplers.scheduler_runqueue import SchedulerRunqueue
from rezolus_agent.series import FrameBuilder, HistogramArrays, HistogramBlock, SeriesRegistry
from rezolus_core import histogram
from rezolus_core.config import Section

CPUS = 3
CAPACITY = 8
FRAMES = 12
Key = tuple[str, tuple[tuple[str, str], ...]]
Hists = dict[Key, tuple[list[int], list[int]]]


def frame_by_name(out: FrameBuilder, reg: SeriesRegistry) -> tuple[dict[Key, int], Hists]:
    """Counters and histograms of a built frame, keyed by series name and labels."""
    frame = out.build(registry=reg, seq=1, timestamp_ns=1, monotonic_ns=1, interval_ns=1, host="h")
    specs = {s.id: (s.name, tuple(sorted(s.labels.items()))) for s in reg.catalog().series}
    counters = dict(zip([specs[i] for i in frame.counter_ids.tolist()], frame.counter_values.tolist(), strict=True))
    hists = {specs[h.id]: (h.indices.tolist(), h.counts.tolist()) for h in frame.histograms}
    assert len(hists) == len(frame.histograms)
    return counters, hists


def key(metric: str, **labels: str) -> Key:
    """A series' name and sorted labels."""
    return metric, tuple(sorted(labels.items()))


def grow(rng: np.random.Generator, arr: np.ndarray, frame: int) -> None:
    """Counts only grow; every third frame nothing changes, others touch a few cells."""
    if frame % 3 == 2:
        return
    hot = rng.integers(0, arr.size, max(1, arr.size // 50))
    arr[hot] += rng.integers(1, 1000, hot.size, dtype=np.uint64)


class _Hist(BpfSampler):
    name = "hist_test"
    bpf = BpfSpec(hooks=(), maps=("h",), metrics=(
        wiring.Histograms("h", wiring.each("lat", "nanoseconds", "d", "op", ("a", "b", "c", "d"))),))


def test_histogram_wiring_equals_per_row_sparse() -> None:
    """Summed over CPUs, row by row ``to_sparse``: the same values in every frame, changed or not.

    The recording bumps each CPU's event count of a histogram as the kernel
    does, by the events added to it on that CPU; the emitter sums again only
    the histograms whose count moved.
    """
    rng = np.random.default_rng(1919)
    buckets = histogram.layout().buckets
    arr = np.zeros(CPUS * wiring.hist_row(4), dtype=np.uint64)
    per_cpu = arr.reshape(CPUS, wiring.hist_row(4))
    cells, events = per_cpu[:, : 4 * buckets].reshape(CPUS, 4, buckets), per_cpu[:, 4 * buckets : 4 * buckets + 4]
    reg = SeriesRegistry("t", {})
    sampler = _Hist(SamplerContext(registry=reg, options=Section({}, "t"), cpus=CPUS))
    sampler.attach(BpfMaps(arrays={"h": arr}))
    reused = 0
    last: dict[Key, tuple[list[int], list[int]]] = {}
    for frame in range(FRAMES):
        before = cells.sum(axis=2, dtype=np.uint64)
        flat = cells.reshape(-1).copy()
        grow(rng, flat, frame)
        cells[:] = flat.reshape(cells.shape)
        events += cells.sum(axis=2, dtype=np.uint64) - before
        out = FrameBuilder()
        sampler.sample(out)
        _, hists = frame_by_name(out, reg)
        dense = cells.sum(axis=0, dtype=np.uint64)
        expected = {}
        for op, row in zip("abcd", dense, strict=True):
            idx, cnt = histogram.to_sparse(row)
            expected[key("lat", op=op)] = (idx.tolist(), cnt.tolist())
        assert hists == expected, frame
        reused += hists == last
        last = hists
    assert reused >= FRAMES // 3 - 1


class _Index:
    def __init__(self, paths: dict[int, str]) -> None:
        self.paths = paths
        self.min_refresh_s = 1.0

    def refresh(self) -> dict[int, str]:
        return self.paths


def _recording(rng: np.random.Generator, width: int, coarse: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Owner table, per-CPU counter rows and coarse histograms, frame by frame."""
    owners = np.zeros((CAPACITY + 1, 2), dtype=np.uint64)
    rows = np.zeros((CPUS, CAPACITY + 1, width), dtype=np.uint64)
    hists = np.zeros((CAPACITY + 1, 2, coarse), dtype=np.uint64)
    frames = []
    for frame in range(FRAMES):
        if frame in {0, 4, 7}:  # cgroups claim slots
            for slot in rng.choice(np.flatnonzero(owners[:CAPACITY, 0] == 0), 2, replace=False):
                owners[slot] = (5000 + frame * 10 + slot, 0)
                owners[CAPACITY, 1] += np.uint64(1)  # the kernel bumps the generation after each claim
        if frame == 5:  # one removed: final counts in this frame, freed after
            owners[np.flatnonzero(owners[:CAPACITY, 0])[0], 1] = 1
            owners[CAPACITY, 1] += np.uint64(1)
        if frame == 9:  # the overflow row gets events
            owners[CAPACITY, 0] = 3
        live = np.flatnonzero(owners[:, 0])
        if frame % 3 != 2 and live.size:
            rows[:, live] += rng.integers(0, 50, (CPUS, live.size, width), dtype=np.uint64)
            hists[live] += rng.integers(0, 3, (live.size, 2, coarse), dtype=np.uint64)
        frames.append((owners.copy(), rows.copy(), hists.copy()))
        freed = np.flatnonzero(owners[:CAPACITY, 1])
        owners[freed] = 0
        rows[:, freed] = 0
        hists[freed] = 0
    return frames


def _expected(table: wiring.CgroupTable, paths: dict[int, str], snapshot: tuple[np.ndarray, ...],
              overflow_seen: bool) -> tuple[dict[Key, int], dict[Key, tuple[list[int], list[int]]]]:
    owners, rows, hists = snapshot
    widen = cgroup_table.widen_index()
    counters: dict[Key, int] = {key("rezolus_cgroup_overflow", sampler="scheduler_runqueue"): int(owners[CAPACITY, 0])}
    out_hists: dict[Key, tuple[list[int], list[int]]] = {}
    slots = [(s, {"name": paths[int(owners[s, 0])]}) for s in range(CAPACITY) if owners[s, 0]]
    if overflow_seen:
        slots.append((CAPACITY, {"name": cgroup_table.OVERFLOW}))
    for slot, labels in slots:
        summed = rows[:, slot].sum(axis=0, dtype=np.uint64)
        for series, value in zip(table.series, summed, strict=True):
            counters[key(series.name, **labels, **dict(series.labels))] = int(value)
        for series, coarse in zip(table.hist_series, hists[slot], strict=True):
            fine = np.zeros(histogram.layout().buckets, dtype=np.uint64)
            fine[widen] = coarse
            idx, cnt = histogram.to_sparse(fine)
            out_hists[key(series.name, **labels)] = (idx.tolist(), cnt.tolist())
    return counters, out_hists


def test_cgroup_rows_equal_plain_per_slot_emission(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every frame of a recording equals the per-slot reference; removed slots are freed after their last frame."""
    freed: list[int] = []
    monkeypatch.setattr(cgroup_table.bpfsys, "delete", lambda _fd, _key: None)
    monkeypatch.setattr(cgroup_table.bpfsys, "push", lambda _fd, value: freed.append(int.from_bytes(value, "little")))
    table = next(w for w in SchedulerRunqueue.bpf.metrics if isinstance(w, wiring.CgroupTable))
    coarse = histogram.layout(cgroup_table.CGROUP_HIST_GROUPING_POWER).buckets
    frames = _recording(np.random.default_rng(13), table.width, coarse)
    paths = {int(c): f"/system.slice/unit-{int(c)}.service" for o, _, _ in frames for c in o[:CAPACITY, 0] if c}
    reg = SeriesRegistry("t", {})
    ctx = SamplerContext(registry=reg, options=Section({"max_cgroups": CAPACITY}, "t"), cpus=CPUS)
    sampler = SchedulerRunqueue(ctx)
    sampler.options()
    owners = np.zeros((CAPACITY + 1) * 2, dtype=np.uint64)
    rows = np.zeros(CPUS * (CAPACITY + 1) * table.width, dtype=np.uint64)
    hists = np.zeros((CAPACITY + 1) * 2 * coarse, dtype=np.uint64)
    maps = BpfMaps(arrays={"scheduler_cgroup_owner": owners, table.map: rows, str(table.hist_map): hists},
                   fds={"scheduler_cgroup_slot": -1, "scheduler_cgroup_free": -1})
    namer = cgroup_table.Namer(_Index(paths), CgroupLabeler(docker_socket=Path("/nonexistent")), -1)  # type: ignore[arg-type]
    emitter = cgroup_table.CgroupRows(
        sampler=sampler, maps=maps, prefix="scheduler", namer=namer,
        counters=(table.map, table.width, table.series), histograms=(str(table.hist_map), table.hist_series),
        per_cpu=True)
    overflow_seen = False
    for number, snapshot in enumerate(frames):
        np.copyto(owners, snapshot[0].ravel())
        np.copyto(rows, snapshot[1].ravel())
        np.copyto(hists, snapshot[2].ravel())
        out = FrameBuilder()
        emitter.emit(out)
        overflow_seen = overflow_seen or bool(snapshot[0][CAPACITY, 0])
        got, want = frame_by_name(out, reg), _expected(table, paths, snapshot, overflow_seen)
        assert got[0] == want[0], number
        assert got[1] == want[1], number
        removed = np.flatnonzero(snapshot[0][:CAPACITY, 1]).tolist()
        assert freed == removed, number
        freed.clear()


def _per_row(dense: np.ndarray, columns: np.ndarray | None) -> list[tuple[list[int], list[int]]]:
    out = []
    for row in dense:
        idx, cnt = histogram.to_sparse(row)
        out.append(((idx if columns is None else columns[idx]).tolist(), cnt.tolist()))
    return out


def _split(arrays: HistogramArrays) -> list[tuple[list[int], list[int]]]:
    ends = np.cumsum(arrays.sizes).tolist()
    starts = [0, *ends[:-1]]
    return [(arrays.indices[a:b].tolist(), arrays.counts[a:b].tolist()) for a, b in zip(starts, ends, strict=True)]


@pytest.mark.parametrize("owned", [False, True])
@pytest.mark.parametrize("coarse", [False, True])
def test_histogram_block_equals_per_row_sparse_whatever_rows_change(coarse: bool, owned: bool) -> None:
    """Whatever rows change, the block's flat arrays are row by row ``to_sparse``.

    Some, none, all or one row changing, rows emptying, counts growing in
    place, a row trading one non-zero cell for another.

    Arrays handed out for one frame are never written by later frames.  A
    block read from one live array written in place between frames (not
    ``owned``) sees every change, as does one handed a fresh array each frame.
    Every other frame replaces the changed rows instead (as the wiring does
    with the histograms whose event counts moved): few rows are spliced in,
    more are scattered into place, and ``values`` then picks up from there.
    """
    rng = np.random.default_rng(4242)
    rows, buckets = 60, histogram.layout().buckets
    columns = np.arange(buckets, dtype=np.intp) * 2 // 3 if coarse else None
    if columns is not None:
        columns = np.unique(columns)
        buckets = columns.size
    block = HistogramBlock(list(range(100, 100 + rows)), columns)
    dense = np.zeros((rows, buckets), dtype=np.uint64)
    handed: list[tuple[HistogramArrays, list[tuple[list[int], list[int]]]]] = []
    spliced = scattered = 0
    for frame in range(120):
        if owned:
            dense = dense.copy()
        pick = rng.choice(["none", "one", "some", "all", "clear", "bump", "swap"])
        chosen = {"none": [], "one": [int(rng.integers(rows))], "all": list(range(rows)),
                  "some": rng.choice(rows, int(rng.integers(1, rows)), replace=False).tolist(),
                  "clear": rng.choice(rows, 3, replace=False).tolist(),
                  "bump": rng.choice(rows, 5, replace=False).tolist(),
                  "swap": [int(rng.integers(rows))]}[pick]
        for row in chosen:
            held = np.flatnonzero(dense[row])
            if pick == "clear":
                dense[row] = 0
            elif pick == "bump":
                dense[row, held] += np.uint64(1)
            elif pick == "swap" and 0 < held.size < buckets:
                empty = np.flatnonzero(dense[row] == 0)
                dense[row, held[0]] = 0
                dense[row, empty[-1]] = 7
            else:
                hot = rng.integers(0, buckets, int(rng.integers(1, 6)))
                dense[row, hot] += rng.integers(1, 1000, hot.size, dtype=np.uint64)
        changed = np.array(sorted(set(chosen)), dtype=np.intp)
        if frame % 2:
            spliced += 0 < changed.size <= HistogramBlock.FEW_ROWS
            scattered += HistogramBlock.FEW_ROWS < changed.size < rows
            arrays = block.replace(changed, dense[changed])
        else:
            arrays = block.values(dense, owned=owned)
        assert arrays.ids.tolist() == list(range(100, 100 + rows)), frame
        assert _split(arrays) == _per_row(dense, columns), (frame, pick)
        assert (arrays.indices.dtype, arrays.counts.dtype, arrays.sizes.dtype) == (np.uint16, np.uint64, np.uint32)
        handed.append((arrays, _split(arrays)))
    for arrays, then in handed:
        assert _split(arrays) == then
    assert spliced >= 5, "few changed rows are spliced in"
    assert scattered >= 5, "more changed rows are scattered into place"


def test_histogram_block_values_after_replace_uses_the_replaced_cells() -> None:
    """After ``replace`` gave a row a new cell, ``values`` reads the cells as replaced, not as they were before."""
    buckets = histogram.layout().buckets
    block = HistogramBlock([1, 2])
    first = np.zeros((2, buckets), dtype=np.uint64)
    first[0, 3], first[1, 5] = 10, 20
    block.values(first, owned=True)
    second = first.copy()
    second[0, 7] = 4
    block.replace(np.array([0], dtype=np.intp), second[:1])
    third = first.copy()
    third[1, 5] = 21
    assert _split(block.values(third, owned=True)) == _per_row(third, None)
