"""The BTF reader vs bpftool's dump of the same kernel BTF, and its errors."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from conftest import need_tool
from rezolus_agent.registry import available
from rezolus_agent.sampler import SamplerContext
from rezolus_agent.samplers._btf import VMLINUX, BtfError, lookup
from rezolus_agent.series import SeriesRegistry
from rezolus_core.config import ConfigError, Section

WANTED = {"request": ("cmd_flags", "__sector"), "tcp_sock": ("srtt_us", "mdev_us"), "sock": ("sk_protocol",)}


def _bpftool_offsets(tool: str) -> dict[str, dict[str, int]]:
    dump = subprocess.run(
        [tool, "btf", "dump", "file", str(VMLINUX), "format", "raw"], capture_output=True, text=True, check=True
    ).stdout
    out: dict[str, dict[str, int]] = {}
    current = None
    for line in dump.splitlines():
        head = re.match(r"\[\d+\] STRUCT '(\w+)'", line)
        if head:
            current = head.group(1) if head.group(1) in WANTED and head.group(1) not in out else None
            if current:
                out[current] = {}
            continue
        if current and line.startswith("\t"):
            member = re.match(r"\t'(\w+)' type_id=\d+ bits_offset=(\d+)$", line)
            if member:
                out[current][member.group(1)] = int(member.group(2)) // 8
        elif not line.startswith("\t"):
            current = None
    return out


def test_member_offsets_match_bpftool():
    """Offsets of the members the samplers read equal bpftool's reading of the running kernel's BTF."""
    if not VMLINUX.is_file():
        pytest.skip("this kernel exposes no BTF")
    tool = need_tool("bpftool")
    ours, enums = lookup(WANTED, ("REQ_OP_READ", "REQ_OP_WRITE", "__REQ_FAILFAST_DEV"))
    reference = _bpftool_offsets(tool)
    for struct_name, members in WANTED.items():
        for member in members:
            assert ours[struct_name][member] == reference[struct_name][member], (struct_name, member)
    assert enums["REQ_OP_READ"] == 0
    assert enums["REQ_OP_WRITE"] == 1


def test_missing_names_and_bad_files_are_clear_errors(tmp_path):
    """Unknown structs/members and a file that is not BTF raise BtfError naming the problem."""
    if not VMLINUX.is_file():
        pytest.skip("this kernel exposes no BTF")
    with pytest.raises(BtfError, match="struct no_such_struct_xyz"):
        lookup({"no_such_struct_xyz": ("a",)})
    with pytest.raises(BtfError, match="no byte-aligned member nope"):
        lookup({"request": ("nope",)})
    bad = tmp_path / "vmlinux"
    bad.write_bytes(b"\0" * 64)
    with pytest.raises(BtfError, match="not little-endian BTF"):
        lookup({"request": ("cmd_flags",)}, path=bad)
    with pytest.raises(BtfError, match="cannot read"):
        lookup({"request": ("cmd_flags",)}, path=Path(tmp_path / "missing"))


def test_blockio_latency_slots_must_be_a_power_of_two():
    """A slot count that is not a power of two is a configuration error naming the key."""
    ctx = SamplerContext(
        registry=SeriesRegistry("t", {}), options=Section({"slots": 1000}, "agent.toml", "samplers.blockio_latency")
    )
    sampler = available()["blockio_latency"](ctx)
    with pytest.raises(ConfigError, match="slots"):
        sampler.options()


@pytest.mark.usefixtures("root_bpf")
def test_missing_btf_makes_only_that_sampler_unavailable(monkeypatch):
    """When the kernel's BTF lacks what blockio_requests needs, it is reported unavailable and softirq still loads."""
    from rezolus_agent.agent import possible_cpus  # noqa: PLC0415 - only this test needs it
    from rezolus_agent.bpfload import BpfLoader  # noqa: PLC0415 - only this test needs it
    from rezolus_agent.samplers import blockio_requests  # noqa: PLC0415 - patched below

    def missing() -> tuple[str, ...]:
        raise BtfError("struct request is not in the kernel's BTF")

    monkeypatch.setattr(blockio_requests, "request_cflags", missing)
    cpus = possible_cpus(Path("/sys"))
    registry = SeriesRegistry("t", {})
    classes = available()
    samplers = [
        classes[name](SamplerContext(registry=registry, options=Section({}, "t"), cpus=cpus))
        for name in ("softirq", "blockio_requests")
    ]
    loader = BpfLoader(cpus)
    try:
        maps, failures = loader.load(samplers)
    finally:
        loader.close()
    assert set(failures) == {"blockio_requests"}
    assert "struct request is not in the kernel's BTF" in failures["blockio_requests"]
    assert "softirq" in maps
