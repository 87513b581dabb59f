"""The owner table's generation decides when ``CgroupRows`` re-reads the owners (issue #19).

The kernel bumps the last word of the owner table after every change of an
owner or removal flag (``rezolus_cgroup_table.h``); between bumps the agent
emits the slots of the last frame again, with their rows read fresh.  Here a
fake kernel changes the owners without a bump to show which frames re-read
them: none while the generation stands (x86-64), every frame elsewhere, and
the frame after the agent freed a slot or when the periodic walk is due.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rezolus_agent import cgroup_table
from rezolus_agent.bpfload import BpfMaps
from rezolus_agent.cgroups import CgroupLabeler
from rezolus_agent.sampler import SamplerContext
from rezolus_agent.samplers.cpu_migrations import CpuMigrations
from rezolus_agent.series import FrameBuilder, SeriesRegistry
from rezolus_agent.wiring import one
from rezolus_core.config import Section

if TYPE_CHECKING:
    import pytest

CAPACITY = 4
PATHS = {11: "/a", 12: "/b", 13: "/c"}


class _Index:
    min_refresh_s = 1.0
    paths = PATHS

    def refresh(self) -> dict[int, str]:
        return PATHS


def _table(monkeypatch: pytest.MonkeyPatch, machine: str) -> tuple[cgroup_table.CgroupRows, np.ndarray,
                                                                    np.ndarray, SeriesRegistry]:
    monkeypatch.setattr(cgroup_table.platform, "machine", lambda: machine)
    monkeypatch.setattr(cgroup_table.bpfsys, "delete", lambda _fd, _key: None)
    monkeypatch.setattr(cgroup_table.bpfsys, "push", lambda _fd, _value: None)
    reg = SeriesRegistry("t", {})
    sampler = CpuMigrations(SamplerContext(registry=reg, options=Section({"max_cgroups": CAPACITY}, "t"), cpus=1))
    sampler.options()
    owners = np.zeros((CAPACITY + 1) * 2, dtype=np.uint64)
    rows = np.zeros(CAPACITY + 1, dtype=np.uint64)
    maps = BpfMaps(arrays={"t_cgroup_owner": owners, "rows": rows}, fds={"t_cgroup_slot": -1, "t_cgroup_free": -1})
    namer = cgroup_table.Namer(_Index(), CgroupLabeler(docker_socket=Path("/nonexistent")), -1)  # type: ignore[arg-type]
    table = cgroup_table.CgroupRows(sampler=sampler, maps=maps, prefix="t", namer=namer,
                                    counters=("rows", 1, one("c", "x", "d")), histograms=None)
    return table, owners.reshape(CAPACITY + 1, 2), rows, reg


def _frame(table: cgroup_table.CgroupRows, reg: SeriesRegistry) -> dict[str, int]:
    out = FrameBuilder()
    table.emit(out)
    frame = out.build(registry=reg, seq=1, timestamp_ns=1, monotonic_ns=1, interval_ns=1, host="h")
    specs = {s.id: s for s in reg.catalog().series}
    return {specs[i].labels["name"]: v for i, v in zip(frame.counter_ids.tolist(), frame.counter_values.tolist(),
                                                        strict=True) if specs[i].name == "c"}


def test_owners_reread_only_when_the_generation_moves(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unbumped owner changes are not read; rows are read fresh every frame; a bump brings the new slot."""
    table, owners, rows, reg = _table(monkeypatch, "x86_64")
    owners[1] = (11, 0)
    owners[CAPACITY, 1] = 1
    rows[1] = 5
    assert _frame(table, reg) == {"/a": 5}
    owners[2] = (12, 0)
    rows[1], rows[2] = 6, 3
    assert _frame(table, reg) == {"/a": 6}
    owners[CAPACITY, 1] = 2
    assert _frame(table, reg) == {"/a": 6, "/b": 3}


def test_a_freed_slot_or_a_due_walk_rereads_the_owners(monkeypatch: pytest.MonkeyPatch) -> None:
    """After the agent freed a slot, and when the walk is due, the owners are read whatever the generation."""
    table, owners, rows, reg = _table(monkeypatch, "x86_64")
    owners[1] = (11, 1)
    owners[2] = (12, 0)
    owners[CAPACITY, 1] = 1
    rows[1], rows[2] = 4, 2
    assert _frame(table, reg) == {"/a": 4, "/b": 2}
    assert owners[1].tolist() == [0, 0]
    owners[3] = (13, 0)
    assert _frame(table, reg) == {"/b": 2, "/c": 0}
    owners[3] = (0, 0)
    assert _frame(table, reg) == {"/b": 2, "/c": 0}
    table._swept -= cgroup_table.SWEEP_S
    assert _frame(table, reg) == {"/b": 2}


def test_without_x86_ordering_the_owners_are_read_every_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where loads may be reordered the generation is not trusted: an unbumped claim shows in the next frame."""
    table, owners, rows, reg = _table(monkeypatch, "aarch64")
    owners[1] = (11, 0)
    owners[CAPACITY, 1] = 1
    rows[1] = 5
    assert _frame(table, reg) == {"/a": 5}
    owners[2] = (12, 0)
    assert _frame(table, reg) == {"/a": 5, "/b": 0}


def test_per_cpu_rows_sum_over_cpus_whether_few_or_most_slots_are_owned(monkeypatch: pytest.MonkeyPatch) -> None:
    """Owned slots' per-CPU rows are summed over CPUs and unowned slots stay out, for one and for most slots owned.

    One owned slot of four is gathered before the sum; three are summed with the whole table first.
    """
    monkeypatch.setattr(cgroup_table.platform, "machine", lambda: "aarch64")
    cpus = 3
    reg = SeriesRegistry("t", {})
    sampler = CpuMigrations(SamplerContext(registry=reg, options=Section({"max_cgroups": CAPACITY}, "t"), cpus=cpus))
    sampler.options()
    owners = np.zeros((CAPACITY + 1) * 2, dtype=np.uint64)
    rows = np.arange(1, cpus * (CAPACITY + 1) * 2 + 1, dtype=np.uint64) ** 2
    maps = BpfMaps(arrays={"t_cgroup_owner": owners, "rows": rows}, fds={"t_cgroup_slot": -1, "t_cgroup_free": -1})
    namer = cgroup_table.Namer(_Index(), CgroupLabeler(docker_socket=Path("/nonexistent")), -1)  # type: ignore[arg-type]
    table = cgroup_table.CgroupRows(sampler=sampler, maps=maps, prefix="t", namer=namer,
                                    counters=("rows", 1, one("c", "x", "d")), histograms=None, per_cpu=True)
    owners = owners.reshape(CAPACITY + 1, 2)
    per_cpu = rows.reshape(cpus, CAPACITY + 1, 2)[:, :, 0]
    per_cpu[:, CAPACITY] = 0
    owners[2] = (12, 0)
    assert _frame(table, reg) == {"/b": int(per_cpu[:, 2].sum())}
    owners[0], owners[3] = (11, 0), (13, 0)
    assert _frame(table, reg) == {"/a": int(per_cpu[:, 0].sum()), "/b": int(per_cpu[:, 2].sum()),
                                  "/c": int(per_cpu[:, 3].sum())}
