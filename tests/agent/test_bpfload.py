"""The BPF loader: hook fusion, one compile for all, and isolation of a broken sampler."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import pytest

from rezolus_agent.bpfload import BpfLoader, bpf_dir, generate_source
from rezolus_agent.registry import available
from rezolus_agent.sampler import BpfSpec, Hook, Sampler, SamplerContext
from rezolus_agent.series import SeriesRegistry
from rezolus_core.config import Section

if TYPE_CHECKING:
    from pathlib import Path


def make(cls: type[Sampler]) -> Sampler:
    """Instantiate a sampler with a throwaway context."""
    ctx = SamplerContext(SeriesRegistry("i" * 32, {}), Section({}, "t"), cpus=2)
    sampler = cls(ctx)
    sampler.options()
    return sampler


def test_hooks_on_one_tracepoint_are_fused() -> None:
    """syscall_counts and syscall_latency share one sys_enter program calling both handlers."""
    samplers = [make(available()[n]) for n in ("syscall_counts", "syscall_latency")]
    source, raw, tracepoints = generate_source(samplers, bpf_dir())
    assert raw == {"sys_enter": "rz_raw__sys_enter", "sys_exit": "rz_raw__sys_exit"}
    assert tracepoints == {}
    enter = source.split("int rz_raw__sys_enter", 1)[1].split("}", 1)[0]
    assert "syscall_counts__sys_enter(ctx);" in enter
    assert "syscall_latency__sys_enter(ctx);" in enter
    assert source.count("int rz_raw__sys_enter(") == 1


class Broken(Sampler):
    """A sampler whose BPF source does not compile."""

    name: ClassVar[str] = "broken"
    bpf = BpfSpec(
        source="broken.bpf.c",
        hooks=(Hook("raw_tracepoint", "sys_enter", "broken__sys_enter"),),
        maps=(),
    )


@pytest.mark.usefixtures("root_bpf")
def test_broken_sampler_is_isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sampler that fails to compile is reported with the compiler's reason; the others load."""
    root = tmp_path / "bpf"
    root.mkdir()
    for source in bpf_dir().iterdir():
        (root / source.name).write_text(source.read_text())
    (root / "broken.bpf.c").write_text(
        "static __always_inline void broken__sys_enter(struct bpf_raw_tracepoint_args *ctx) { undefined_thing++; }\n"
    )
    monkeypatch.setattr("rezolus_agent.bpfload.bpf_dir", lambda: root)
    good = make(available()["syscall_counts"])
    loader = BpfLoader(cpus=2)
    try:
        maps, failures = loader.load([good, make(Broken)])
        assert set(failures) == {"broken"}
        assert "undefined_thing" in failures["broken"]
        assert "syscall_counts" in maps["syscall_counts"].arrays
        assert loader.fds
    finally:
        loader.close()
    assert not loader.fds
