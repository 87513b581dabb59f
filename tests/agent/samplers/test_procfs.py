"""procfs/sysfs samplers read a checked-in fixture host and emit exactly its values."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from rezolus_agent.registry import available
from rezolus_agent.sampler import SamplerContext, SamplerUnavailable
from rezolus_agent.series import FrameBuilder, SeriesRegistry
from rezolus_core.config import Section
from rezolus_core.frame import HistogramValue, iter_values

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "host"


def run_sampler(name: str, root: Path = FIXTURE) -> dict[tuple[str, tuple[tuple[str, str], ...]], int]:
    """Start one sampler on a fixture tree and return its first frame as {(name, labels): value}."""
    registry = SeriesRegistry("i" * 32, {})
    ctx = SamplerContext(registry, Section({}, "test"), proc=root / "proc", sys=root / "sys", cpus=2)
    sampler = available()[name](ctx)
    sampler.options()
    sampler.start()
    out = FrameBuilder()
    sampler.sample(out)
    frame = out.build(registry=registry, seq=1, timestamp_ns=1, monotonic_ns=1, interval_ns=1, host="h")
    values = {}
    for spec, value in iter_values(frame, registry.catalog()):
        assert not isinstance(value, HistogramValue)
        values[spec.key()] = value
    return values


def key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Series identity as used by SeriesSpec.key()."""
    return name, tuple(sorted(labels.items()))


def test_cpu_usage_converts_ticks_to_nanoseconds() -> None:
    """cpu_usage emits every state of every CPU, ticks times 10^9/USER_HZ."""
    tick = 10**9 // os.sysconf("SC_CLK_TCK")
    values = run_sampler("cpu_usage")
    assert values[key("cpu_usage", state="user", id="0")] == 100 * tick
    assert values[key("cpu_usage", state="system", id="1")] == 50 * tick
    assert values[key("cpu_usage", state="guest_nice", id="1")] == 1 * tick
    assert values[key("cpu_usage", state="softirq", id="1")] == 4 * tick
    assert len(values) == 20


def test_cpu_cores_counts_online_list() -> None:
    """cpu_cores counts the online CPU list."""
    assert run_sampler("cpu_cores") == {key("cpu_cores"): 2}


def test_meminfo_in_bytes() -> None:
    """Meminfo kB fields become bytes."""
    values = run_sampler("memory_meminfo")
    assert values[key("memory_total")] == 16384000 * 1024
    assert values[key("memory_available")] == 12288000 * 1024
    assert values[key("memory_cached")] == 2048000 * 1024


def test_vmstat_numa() -> None:
    """The six NUMA counters are read from vmstat."""
    values = run_sampler("memory_vmstat")
    assert values[key("memory_numa_hit")] == 1000
    assert values[key("memory_numa_other")] == 30
    assert len(values) == 6


def test_network_traffic_excludes_loopback() -> None:
    """Traffic sums every interface but lo."""
    values = run_sampler("network_traffic")
    assert values[key("network_bytes", direction="receive")] == 1300
    assert values[key("network_bytes", direction="transmit")] == 2400
    assert values[key("network_packets", direction="receive")] == 13
    assert values[key("network_packets", direction="transmit")] == 24


def test_network_interfaces_sum_sysfs() -> None:
    """Interface counters sum sysfs files of every interface but lo."""
    values = run_sampler("network_interfaces")
    assert values[key("network_carrier_changes")] == 3
    assert values[key("network_receive_errors_crc")] == 1
    assert values[key("network_receive_dropped")] == 5
    assert values[key("network_receive_errors_missed")] == 5
    assert values[key("network_transmit_dropped")] == 8


def test_missing_files_make_sampler_unavailable(tmp_path: Path) -> None:
    """A sampler whose source file is missing says which file, instead of crashing."""
    (tmp_path / "proc").mkdir()
    (tmp_path / "sys").mkdir()
    with pytest.raises(SamplerUnavailable, match="stat"):
        run_sampler("cpu_usage", tmp_path)


def test_removed_interface_does_not_decrease_totals(tmp_path: Path) -> None:
    """When an interface disappears the traffic counter keeps its total instead of dropping."""
    root = tmp_path / "host"
    shutil.copytree(FIXTURE, root)
    registry = SeriesRegistry("i" * 32, {})
    ctx = SamplerContext(registry, Section({}, "t"), proc=root / "proc", sys=root / "sys", cpus=2)
    sampler = available()["network_traffic"](ctx)
    sampler.start()
    sampler.sample(FrameBuilder())
    dev = root / "proc" / "net" / "dev"
    lines = dev.read_text().splitlines()
    dev.write_text("\n".join(line for line in lines if "eth1" not in line) + "\n")
    out = FrameBuilder()
    sampler.sample(out)
    frame = out.build(registry=registry, seq=2, timestamp_ns=2, monotonic_ns=2, interval_ns=1, host="h")
    got = {spec.key(): v for spec, v in iter_values(frame, registry.catalog())}
    assert got[key("network_bytes", direction="receive")] == 1300


def test_cgroup_index_keeps_cgroups_a_walk_missed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cgroup that one walk misses stays indexed while its directory still exists; a removed one goes."""
    from rezolus_agent import cgroups  # noqa: PLC0415 - test-local import keeps the module list short

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    index = cgroups.CgroupIndex(tmp_path, min_refresh_s=0)
    full = index.refresh()
    assert set(full.values()) == {"/", "/a", "/b"}
    monkeypatch.setattr(cgroups, "scan", lambda mount: {mount.stat().st_ino: "/"})
    assert set(index.refresh().values()) == {"/", "/a", "/b"}
    (tmp_path / "b").rmdir()
    assert set(index.refresh().values()) == {"/", "/a"}


def test_cgroup_walk_lists_only_directories_with_subdirectories(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Every cgroup is found; leaves (link count 2: no subdirectories) are not listed, only stat'ed."""
    from rezolus_agent import cgroups  # noqa: PLC0415 - test-local import keeps the module list short

    for rel in ("a/b/c", "a/d", "e"):
        (tmp_path / rel).mkdir(parents=True)
    (tmp_path / "a/d/cpu.stat").write_text("usage_usec 1\n")
    listed: list[str] = []
    real = os.scandir

    def counting(path: str) -> object:
        listed.append(os.path.relpath(path, tmp_path))
        return real(path)

    monkeypatch.setattr(cgroups.os, "scandir", counting)
    found = cgroups.scan(tmp_path)
    assert sorted(found.values()) == ["/", "/a", "/a/b", "/a/b/c", "/a/d", "/e"]
    assert found[(tmp_path / "a/b/c").stat().st_ino] == "/a/b/c"
    assert sorted(listed) == [".", "a", "a/b"]
    (tmp_path / "a/d/new").mkdir()
    listed.clear()
    assert "/a/d/new" in cgroups.scan(tmp_path).values()
    assert "a/d" in listed
