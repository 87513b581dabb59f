"""The one BTF reader vs bpftool's dump of the same kernel BTF, its errors, and how a BTF gap reaches the operator."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import subprocess
from typing import TYPE_CHECKING

import pytest

from rezolus_agent import btf
from rezolus_agent.agent import Agent
from rezolus_agent.bpfload import BpfLoader
from rezolus_agent.config import AgentConfig
from rezolus_agent.registry import available
from rezolus_agent.sampler import SamplerContext
from rezolus_agent.samplers.blockio_requests import BlockioRequests
from rezolus_agent.series import SeriesRegistry
from rezolus_core.config import ConfigError, Section
from support.env import need_tool, require

if TYPE_CHECKING:
    from pathlib import Path

MEMBERS = (
    "request.cmd_flags", "request.__sector", "tcp_sock.srtt_us", "tcp_sock.mdev_us", "sock.sk_protocol",
    "sk_buff.len", "sk_buff.data", "css_set.dfl_cgrp", "cgroup.kn", "kernfs_node.id", "task_struct.cgroups",
    "task_struct.pid", "thread_info.cpu",
)
ENUMS = ("REQ_OP_READ", "REQ_OP_WRITE", "REQ_OP_FLUSH", "REQ_OP_DISCARD", "__REQ_FAILFAST_DEV")
TRACEPOINTS = ("sched_switch", "sched_wakeup", "sched_migrate_task", "tlb_flush")


@pytest.fixture(scope="module")
def bpftool_dump() -> str:
    """Bpftool's raw dump of the running kernel's BTF (a failure in CI when it cannot be had)."""
    require(btf.VMLINUX.is_file(), "this kernel exposes no BTF at /sys/kernel/btf/vmlinux")
    tool = need_tool("bpftool")
    run = subprocess.run([tool, "btf", "dump", "file", str(btf.VMLINUX), "format", "raw"],
                         capture_output=True, text=True, check=False)
    require(run.returncode == 0, f"bpftool cannot dump the kernel BTF: {run.stderr.strip()[:200]}")
    return run.stdout


def _members(dump: str) -> dict[str, dict[str, int]]:
    """First STRUCT/UNION of each name → direct member byte offsets."""
    members: dict[str, dict[str, int]] = {}
    current = None
    for line in dump.splitlines():
        head = re.match(r"\[\d+\] (STRUCT|UNION) '(\w+)'", line)
        if head:
            current = members.setdefault(head.group(2), {}) if head.group(2) not in members else None
            continue
        if not line.startswith("\t"):
            current = None
            continue
        member = re.match(r"\t'(\w+)' type_id=\d+ bits_offset=(\d+)", line)
        if member and current is not None:
            current[member.group(1)] = int(member.group(2)) // 8
    return members


def test_offsets_enums_and_tracepoints_match_bpftool(bpftool_dump: str) -> None:
    """Member offsets, enumerator values and raw tracepoint arities equal bpftool's reading of the same BTF."""
    kernel = btf.kernel()
    members = _members(bpftool_dump)
    for path in MEMBERS:
        struct, member = path.split(".")
        assert kernel.offset(path) == members[struct][member], path
    sk_common = members["sock"]["__sk_common"] + members["sock_common"]["skc_family"]
    assert kernel.offset("sock.__sk_common.skc_family") == sk_common
    for name in ENUMS:
        found = re.search(rf"^\t'{name}' val=(-?\d+)$", bpftool_dump, re.MULTILINE)
        assert found is not None, name
        assert kernel.enum_value(name) == int(found.group(1)), name
    types = dict(re.findall(r"^\[(\d+)\] (.*)$", bpftool_dump, re.MULTILINE))
    for tracepoint in TRACEPOINTS:
        typedef = re.search(rf"^\[\d+\] TYPEDEF 'btf_trace_{tracepoint}' type_id=(\d+)$", bpftool_dump,
                            re.MULTILINE)
        assert typedef is not None
        pointer = re.search(r"type_id=(\d+)", types[typedef.group(1)])
        assert pointer is not None
        vlen = re.search(r"FUNC_PROTO .* vlen=(\d+)", types[pointer.group(1)])
        assert vlen is not None
        assert kernel.raw_tracepoint_args(tracepoint) == int(vlen.group(1)) - 1


def test_missing_names_and_bad_files_are_clear_errors(tmp_path: Path, bpftool_dump: str) -> None:
    """Unknown structs, members, enumerators, and files that are not BTF raise BtfError naming the problem."""
    assert bpftool_dump
    kernel = btf.kernel()
    with pytest.raises(btf.BtfError, match="struct no_such_struct_xyz"):
        kernel.offset("no_such_struct_xyz.a")
    with pytest.raises(btf.BtfError, match=r"request.nope: no member nope"):
        kernel.offset("request.nope")
    with pytest.raises(btf.BtfError, match="enum value NO_SUCH_ENUMERATOR"):
        kernel.enum_value("NO_SUCH_ENUMERATOR")
    bad = tmp_path / "vmlinux"
    bad.write_bytes(b"\0" * 64)
    with pytest.raises(btf.BtfError, match="not little-endian BTF"):
        btf.kernel(bad)
    with pytest.raises(btf.BtfError, match="cannot read"):
        btf.kernel(tmp_path / "missing")


def test_blockio_latency_slots_must_be_a_power_of_two() -> None:
    """A slot count that is not a power of two is a configuration error naming the key."""
    ctx = SamplerContext(
        registry=SeriesRegistry("t", {}), options=Section({"slots": 1000}, "agent.toml", "samplers.blockio_latency")
    )
    sampler = available()["blockio_latency"](ctx)
    with pytest.raises(ConfigError, match="slots"):
        sampler.options()


def _missing_request() -> tuple[str, ...]:
    raise btf.BtfError("struct request is not in the kernel's BTF")


def test_btf_gap_fails_the_sampler_before_any_compile() -> None:
    """A sampler whose BTF flags cannot be had is reported with that reason and never compiled (no root needed)."""
    spec = dataclasses.replace(BlockioRequests.bpf, btf=_missing_request)
    sampler = type("Gap", (BlockioRequests,), {"bpf": spec})(SamplerContext(SeriesRegistry("t", {}), Section({}, "t")))
    loader = BpfLoader(cpus=1)
    maps, failures = loader.load([sampler])
    assert maps == {}
    assert failures == {"blockio_requests": "struct request is not in the kernel's BTF"}
    assert not loader.fds


@pytest.mark.usefixtures("root_bpf")
def test_btf_gap_makes_only_that_sampler_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent's status (what --check prints) carries the BTF reason; softirq still runs; the BTF copy is dropped."""
    monkeypatch.setattr(BlockioRequests, "bpf", dataclasses.replace(BlockioRequests.bpf, btf=_missing_request))
    samplers = {name: available()[name] for name in ("softirq", "blockio_requests", "tcp_retransmit", "tcp_traffic")}
    cfg = AgentConfig(options={n: Section({}, "t", f"samplers.{n}") for n in samplers})
    agent = Agent(cfg, samplers)
    try:
        agent.start_samplers()
        assert not btf.parsed(), "the parsed BTF must not outlive start-up"
    finally:
        asyncio.run(agent.shutdown())
    status = agent.statuses["blockio_requests"]
    assert (status.running, status.reason) == (False, "struct request is not in the kernel's BTF")
    assert all(agent.statuses[n].running for n in ("softirq", "tcp_retransmit", "tcp_traffic"))
