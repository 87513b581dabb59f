"""cgroup_resources and pressure on checked-in v2 and v1 trees: exact values, names, bad input."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from typing import TYPE_CHECKING

import pytest

from rezolus_agent import cgfiles, cgreader
from rezolus_agent.cgnames import identify
from rezolus_agent.sampler import SamplerUnavailable
from rezolus_agent.series import FrameBuilder
from support.cgroup_trees import FIXTURES, IDS, UID_B, UID_E, UID_G, v2_cgroup, write_v1, write_v2
from support.env import VENV_BIN
from support.sampling import Key, frame, k, start, strip_identity

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


Values = dict[Key, int]
US = 1000


def expected(n: int, *, v1: bool, pressure_n: int | None) -> Values:
    """What cgroup n of the fixture writers must read as (see tests/support/cgroup_trees.py)."""
    values = {
        k("cgroup_cpu_usage", state="user"): n * 200 * US,
        k("cgroup_cpu_usage", state="system"): n * 100 * US,
        k("cgroup_cpu_bandwidth_periods"): n * 10,
        k("cgroup_cpu_bandwidth_throttled_periods"): n * 3,
        k("cgroup_cpu_bandwidth_throttled_time"): n * 7 * US,
        k("cgroup_cpu_bandwidth_quota"): n * 1000 * US if n % 2 else 0,
        k("cgroup_cpu_bandwidth_period_duration"): 100_000 * US,
        k("cgroup_memory_current"): n * 1048576,
        k("cgroup_memory_limit"): n * 2097152 if n % 2 else 0,
        k("cgroup_memory_swap_current"): n * 4096,
        k("cgroup_memory_events", event="max"): n + 2,
        k("cgroup_memory_events", event="oom_kill"): n + 4,
        k("cgroup_blockio_bytes", op="read"): n * 4096 + n,
        k("cgroup_blockio_bytes", op="write"): n * 8192 + n,
        k("cgroup_blockio_operations", op="read"): n + 1,
        k("cgroup_blockio_operations", op="write"): n * 2 + 1,
    }
    if not v1:
        values |= {k("cgroup_memory_events", event=e): n + i for i, e in enumerate(("low", "high", "max", "oom"))}
    if pressure_n is not None:
        for i, resource in enumerate(("cpu", "memory", "io")):
            values[k("cgroup_pressure_stall_time", resource=resource, kind="some")] = ((pressure_n + i) * 1000 + 1) * US
            values[k("cgroup_pressure_stall_time", resource=resource, kind="full")] = ((pressure_n + i) * 1000 + 2) * US
    return values


def test_v2_tree_every_value_of_a_container() -> None:
    """Every value of a containerd container on the v2 tree, exactly; the root has no memory or bandwidth values."""
    sampler, registry = start("cgroup_resources", FIXTURES / "cgroup_v2")
    assert sampler.degraded == ""
    found = frame(sampler, registry)
    pod = f"kubepods-burstable-pod{UID_B.replace('-', '_')}.slice"
    name = f".../kubepods-burstable.slice/{pod}/cri-containerd-{IDS['a']}.scope"
    assert strip_identity(found[name]) == expected(5, v1=False, pressure_n=5)
    assert {dict(labels).get("container") for _, labels in found[name]} == {IDS["a"][:12]}
    root = found["/"]
    assert root[k("cgroup_cpu_usage", state="user")] == 200 * US
    assert k("cgroup_memory_current") not in root
    assert k("cgroup_cpu_bandwidth_periods") not in root
    sampler.close()


def test_v1_tree_merges_hierarchies_by_path() -> None:
    """On the v1 tree one path is one cgroup across cpu,cpuacct, memory, blkio and the hybrid v2 (pressure)."""
    sampler, registry = start("cgroup_resources", FIXTURES / "cgroup_v1")
    found = frame(sampler, registry)
    name = f"/kubepods/pod{UID_G}/{IDS['c']}"
    assert strip_identity(found[name]) == expected(7, v1=True, pressure_n=None)
    docker = f"/docker/{IDS['d']}"
    assert strip_identity(found[docker]) == expected(8, v1=True, pressure_n=8)
    assert k("cgroup_memory_events", event="max", container=IDS["d"][:12]) in found[docker]
    assert found["/kubepods"][k("cgroup_memory_limit")] == 0
    sampler.close()


@pytest.mark.parametrize(("path", "labels"), [
    ((f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_B.replace('-', '_')}.slice"
      f"/cri-containerd-{IDS['a']}.scope"), {"container": IDS["a"][:12], "pod_uid": UID_B, "qos": "burstable"}),
    ((f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_E.replace('-', '_')}.slice"
      f"/crio-{IDS['b']}.scope"), {"container": IDS["b"][:12], "pod_uid": UID_E, "qos": "besteffort"}),
    (f"/kubepods.slice/kubepods-pod{UID_G.replace('-', '_')}.slice/cri-containerd-{IDS['c']}.scope",
     {"container": IDS["c"][:12], "pod_uid": UID_G, "qos": "guaranteed"}),
    (f"/kubepods.slice/kubepods-pod{UID_G.replace('-', '_')}.slice", {"pod_uid": UID_G, "qos": "guaranteed"}),
    (f"/kubepods.slice/kubepods-pod{UID_G.replace('-', '_')}.slice/crio-conmon-{IDS['c']}.scope",
     {"pod_uid": UID_G, "qos": "guaranteed"}),
    ("/kubepods.slice/kubepods-burstable.slice", {"qos": "burstable"}),
    (f"/kubepods/burstable/pod{UID_B}/{IDS['a']}", {"container": IDS["a"][:12], "pod_uid": UID_B, "qos": "burstable"}),
    (f"/kubepods/besteffort/pod{UID_E}/crio-{IDS['b']}", {"container": IDS["b"][:12], "pod_uid": UID_E,
                                                          "qos": "besteffort"}),
    (f"/kubepods/pod{UID_G}/{IDS['c']}", {"container": IDS["c"][:12], "pod_uid": UID_G, "qos": "guaranteed"}),
    ((f"/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/"
      f"kubelet-kubepods-besteffort-pod{UID_E.replace('-', '_')}.slice/cri-containerd-{IDS['b']}.scope"),
     {"container": IDS["b"][:12]}),
    (f"/docker/{IDS['d']}/init", {"container": IDS["d"][:12]}),
    (f"/system.slice/docker-{IDS['d']}.scope", {"container": IDS["d"][:12]}),
    (f"/docker/{IDS['d'][:-1]}", {}),
    ("/user.slice/user-0.slice", {}),
])
def test_container_and_pod_identity(path: str, labels: dict[str, str]) -> None:
    """Docker and Kubernetes (containerd, CRI-O; systemd and cgroupfs drivers) paths give the right labels."""
    assert identify(path).labels() == labels


def test_fixture_tree_names_carry_pod_labels() -> None:
    """The series of a CRI-O container carry its pod UID and QoS class."""
    sampler, registry = start("cgroup_resources", FIXTURES / "cgroup_v2")
    out = FrameBuilder()
    sampler.sample(out)
    specs = [s for s in registry.catalog().series if s.labels.get("container") == IDS["b"][:12]]
    assert specs
    assert all(s.labels["pod_uid"] == UID_E and s.labels["qos"] == "besteffort" for s in specs)
    sampler.close()


def test_host_pressure() -> None:
    """Host PSI totals become ns counters; a kernel without cpu 'full' gets no such series."""
    sampler, registry = start("pressure", FIXTURES / "cgroup_v2")
    found = frame(sampler, registry)[""]
    assert found[k("pressure_stall_time", resource="cpu", kind="some")] == 11001 * US
    assert k("pressure_stall_time", resource="cpu", kind="full") not in found
    assert found[k("pressure_stall_time", resource="io", kind="full")] == 13002 * US


def test_no_psi_is_unavailable_with_reason(tmp_path: Path) -> None:
    """Without /proc/pressure the host sampler is unavailable and the cgroup one runs without pressure."""
    write_v2(tmp_path)
    shutil.rmtree(tmp_path / "proc" / "pressure")
    with pytest.raises(SamplerUnavailable, match="CONFIG_PSI"):
        start("pressure", tmp_path)
    sampler, registry = start("cgroup_resources", tmp_path)
    assert "no pressure" in sampler.degraded
    assert not any(s.name == "cgroup_pressure_stall_time" for s in registry.catalog().series)
    frame(sampler, registry)
    assert not any(s.name == "cgroup_pressure_stall_time" for s in registry.catalog().series)
    sampler.close()


def test_bad_input_skips_the_cgroup_once_per_cause(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Garbage and unreadable files skip their cgroups, one warning per cause, and recover when fixed."""
    cgroups = write_v1(tmp_path)
    sampler, registry = start("cgroup_resources", tmp_path)
    hier = tmp_path / "sys/fs/cgroup"
    garbled, unreadable, healthy = "/kubepods/burstable", f"/docker/{IDS['d']}", f"/kubepods/pod{UID_G}/{IDS['c']}"
    assert {garbled, unreadable, healthy} <= set(frame(sampler, registry))
    (hier / "memory" / garbled.lstrip("/") / "memory.oom_control").write_text("oom_kill lots\n")
    (hier / "memory/kubepods/memory.oom_control").write_text("oom_kill lots\n")
    sampler.close()
    blocked = hier / "blkio" / unreadable.lstrip("/") / "blkio.throttle.io_serviced"
    blocked.unlink()
    blocked.mkdir()  # open() of a directory for reading fails with EISDIR, as an unreadable file would
    sampler, registry = start("cgroup_resources", tmp_path)
    capsys.readouterr()
    for _ in range(3):
        found = frame(sampler, registry)
        assert garbled not in found
        assert "/kubepods" not in found
        assert unreadable not in found
        assert strip_identity(found[healthy]) == expected(cgroups[healthy], v1=True, pressure_n=None)
    warnings = [line for line in capsys.readouterr().out.splitlines() if "cgroup file skipped" in line]
    assert len([w for w in warnings if "unparseable" in w]) == 1, warnings
    assert len([w for w in warnings if "EISDIR" in w]) == 1, warnings
    assert len(warnings) == 2, warnings
    (hier / "memory" / garbled.lstrip("/") / "memory.oom_control").write_text("oom_kill_disable 0\noom_kill 9\n")
    blocked.rmdir()
    blocked.write_text("Total 0\n")
    found = frame(sampler, registry)
    assert strip_identity(found[garbled])[k("cgroup_memory_events", event="oom_kill")] == 9
    assert found[unreadable][k("cgroup_blockio_operations", op="read", container=IDS["d"][:12])] == 0
    sampler.close()


@pytest.mark.parametrize(("parser", "data"), [
    (cgfiles.v2_cpu_stat, b"usage_usec 1\nuser_usec\n"),
    (cgfiles.v2_cpu_stat, b"usage_usec 1\n"),
    (cgfiles.v2_cpu_max, b"max\n"),
    (cgfiles.single("x"), b"12 13\n"),
    (cgfiles.single("x"), b""),
    (cgfiles.v2_io_stat, b"rbytes=1\n"),
    (cgfiles.v1_blkio("bytes"), b"8:0 Read\n"),
    (cgfiles.pressure("cpu"), b"some avg10=0.00\n"),
    (cgfiles.pressure("cpu"), b"\x00\x01"),
])
def test_parsers_reject_garbage(parser: Callable[[bytes], dict[str, int]], data: bytes) -> None:
    """Every parser raises ValueError on malformed input instead of returning partial values."""
    with pytest.raises(ValueError):  # noqa: PT011 - every parser failure is a ValueError
        parser(data)


def test_layouts_and_one_source_per_value() -> None:
    """Pure v2 and hybrid roots are told apart and each value gets exactly one source file."""
    v2 = cgreader.discover(FIXTURES / "cgroup_v2/sys/fs/cgroup")
    assert v2.v2 is not None
    assert not v2.v1
    v1 = cgreader.discover(FIXTURES / "cgroup_v1/sys/fs/cgroup")
    assert set(v1.v1) == {"cpu", "cpuacct", "memory", "blkio"}
    assert v1.v2 is not None
    assert v1.v2.name == "unified"
    names = [(s.hierarchy, s.name) for s in cgreader.plan(v1, pressure=True)]
    assert ("v2", "cpu.stat") not in names
    assert ("cpuacct", "cpuacct.usage_user") in names
    assert ("v2", "cpu.pressure") in names


def test_files_are_read_on_their_own_cadence(tmp_path: Path) -> None:
    """At 100 ms frames and a 1 s interval the files are read every tenth frame; frames between repeat."""
    write_v2(tmp_path)
    sampler, registry = start("cgroup_resources", tmp_path, {"interval": "1s"})
    sampler.clock = itertools.count(0, 100_000_000).__next__  # type: ignore[attr-defined]  # 100 ms frames
    current = tmp_path / "sys/fs/cgroup/kubepods.slice/memory.current"
    seen = []
    for i in range(25):
        current.write_text(f"{i}\n")
        seen.append(frame(sampler, registry)["/kubepods.slice"][k("cgroup_memory_current")])
    assert seen == [0] * 10 + [10] * 10 + [20] * 5
    sampler.close()


def test_slow_files_are_read_on_the_slow_cadence(tmp_path: Path) -> None:
    """At 1 s reads with slow_interval 3s: memory.current every read, io.stat and memory.max every third."""
    write_v2(tmp_path)
    sampler, registry = start("cgroup_resources", tmp_path, {"interval": "1s", "slow_interval": "3s"})
    sampler.clock = itertools.count(0, 1_000_000_000).__next__  # type: ignore[attr-defined]  # 1 s frames
    cgroup = tmp_path / "sys/fs/cgroup/kubepods.slice"
    seen = []
    for i in range(7):
        (cgroup / "memory.current").write_text(f"{i}\n")
        (cgroup / "memory.max").write_text(f"{100 + i}\n")
        (cgroup / "io.stat").write_text(f"8:0 rbytes={i} wbytes=0 rios=0 wios=0 dbytes=0 dios=0\n")
        values = frame(sampler, registry)["/kubepods.slice"]
        seen.append((values[k("cgroup_memory_current")], values[k("cgroup_memory_limit")],
                     values[k("cgroup_blockio_bytes", op="read")]))
    assert seen == [(0, 100, 0), (1, 100, 0), (2, 100, 0), (3, 103, 3), (4, 103, 3), (5, 103, 3), (6, 106, 6)]
    sampler.close()


def test_check_prints_why_pressure_is_missing(tmp_path: Path) -> None:
    """``rezolus-agent --check`` names the missing PSI for both samplers."""
    write_v2(tmp_path)
    shutil.rmtree(tmp_path / "proc" / "pressure")
    config = tmp_path / "agent.toml"
    config.write_text(f'[general]\nproc_root = "{tmp_path}/proc"\nsys_root = "{tmp_path}/sys"\n'
                      "[defaults]\nenabled = false\n[samplers.cgroup_resources]\nenabled = true\n"
                      "[samplers.pressure]\nenabled = true\n")
    done = subprocess.run([str(VENV_BIN / "rezolus-agent"), "--config", str(config), "--check"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line.strip()}
    assert "unavailable" in lines["pressure"]
    assert "CONFIG_PSI" in lines["pressure"]
    assert "running" in lines["cgroup_resources"]
    assert "no pressure" in lines["cgroup_resources"]


def test_host_pressure_garbage_drops_one_resource(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A garbled /proc/pressure file leaves that resource out of the frame, warned once; the others stay."""
    write_v2(tmp_path)
    sampler, registry = start("pressure", tmp_path)
    (tmp_path / "proc/pressure/memory").write_text("some avg10=garbage\n")
    capsys.readouterr()
    for _ in range(3):
        found = frame(sampler, registry)[""]
        assert k("pressure_stall_time", resource="memory", kind="some") not in found
        assert found[k("pressure_stall_time", resource="io", kind="some")] == 13001 * US
    assert capsys.readouterr().out.count("pressure file skipped") == 1


def test_deep_paths_sharing_a_short_name_report_one_cgroup(tmp_path: Path) -> None:
    """``/a/x/y/z`` and ``/b/x/y/z`` both label as ``.../x/y/z``: one is reported, never two values in a series."""
    write_v2(tmp_path)
    for top, n in (("a", 3), ("b", 5)):
        v2_cgroup(tmp_path / "sys/fs/cgroup" / top / "x/y/z", n)
    sampler, registry = start("cgroup_resources", tmp_path)
    out = FrameBuilder()
    sampler.sample(out)
    built = out.build(registry=registry, seq=1, timestamp_ns=1, monotonic_ns=1, interval_ns=1, host="h")
    assert len(set(built.counter_ids.tolist())) == len(built.counter_ids)
    assert len(set(built.gauge_ids.tolist())) == len(built.gauge_ids)
    assert frame(sampler, registry)[".../x/y/z"][k("cgroup_memory_current")] == 3 * 1048576
    sampler.close()
