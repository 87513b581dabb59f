"""The BPF loader: hook fusion, one compile for all, and isolation of a broken sampler."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import pytest

from rezolus_agent.bpfload import BpfLoader, generate_source
from rezolus_agent.registry import available
from rezolus_agent.sampler import BpfSampler, BpfSpec, SamplerContext, raw
from rezolus_agent.series import SeriesRegistry
from rezolus_core.config import Section

if TYPE_CHECKING:
    from pathlib import Path


def make(cls: type[BpfSampler]) -> BpfSampler:
    """Instantiate a sampler with a throwaway context."""
    ctx = SamplerContext(SeriesRegistry("i" * 32, {}), Section({}, "t"), cpus=2)
    sampler = cls(ctx)
    sampler.options()
    return sampler


def test_every_bpf_sampler_keeps_its_source_beside_it() -> None:
    """Each BPF sampler is a package folder holding ``<name>.bpf.c``; procfs samplers have none."""
    for name, cls in available().items():
        if issubclass(cls, BpfSampler):
            assert cls.source().is_file(), name
            assert cls.source().parent.name == name


def test_hooks_on_one_tracepoint_are_fused() -> None:
    """syscall_counts and syscall_latency share one sys_enter program calling both handlers."""
    samplers = [make(available()[n]) for n in ("syscall_counts", "syscall_latency")]  # type: ignore[arg-type]
    source, raw_names, tracepoints = generate_source(samplers)
    assert raw_names == {"sys_enter": "rz_raw__sys_enter", "sys_exit": "rz_raw__sys_exit"}
    assert tracepoints == {"cgroup:cgroup_mkdir": "tracepoint__cgroup__cgroup_mkdir",
                           "cgroup:cgroup_rmdir": "tracepoint__cgroup__cgroup_rmdir"}
    enter = source.split("int rz_raw__sys_enter", 1)[1].split("}", 1)[0]
    assert "syscall_counts__sys_enter(ctx);" in enter
    assert "syscall_latency__sys_enter(ctx);" in enter
    assert source.count("int rz_raw__sys_enter(") == 1


def test_cgroup_tables_expand_per_sampler_and_share_the_mkdir_hook() -> None:
    """Each cgroup sampler gets its own slot table; the shared names map and mkdir handler appear once."""
    names = ("syscall_counts", "scheduler_runqueue", "cpu_migrations")
    samplers = [make(available()[n]) for n in names]  # type: ignore[arg-type]
    source, _, tracepoints = generate_source(samplers)
    for prefix in ("syscall", "scheduler", "migrations"):
        assert source.count(f"{prefix}_cgroup_claim(u64 cgroup)") == 1
    assert "\nRZ_CGROUP_TABLE(" not in source
    assert source.count('BPF_TABLE("lru_hash", u64, struct rz_cgroup_path, rz_cgroup_names') == 1
    mkdir = source.split("int tracepoint__cgroup__cgroup_mkdir(", 1)[1].split("}", 1)[0]
    assert mkdir.count("rz_cgroup__mkdir(args);") == 1
    rmdir = source.split("int tracepoint__cgroup__cgroup_rmdir(", 1)[1].split("}", 1)[0]
    assert all(f"{n}__rmdir(args);" in rmdir for n in names)
    assert set(tracepoints) == {"cgroup:cgroup_mkdir", "cgroup:cgroup_rmdir"}


class Broken(BpfSampler):
    """A sampler whose BPF source does not compile."""

    name: ClassVar[str] = "broken"
    bpf = BpfSpec(hooks=(raw("sys_enter", "broken__sys_enter"),), maps=())
    where: ClassVar[Path]

    @classmethod
    def source(cls) -> Path:
        """The source the test wrote."""
        return cls.where


@pytest.mark.usefixtures("root_bpf")
def test_broken_sampler_is_isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sampler that fails to compile is reported with the compiler's reason; the others load."""
    source = tmp_path / "broken.bpf.c"
    source.write_text(
        "static __always_inline void broken__sys_enter(struct bpf_raw_tracepoint_args *ctx) { undefined_thing++; }\n"
    )
    monkeypatch.setattr(Broken, "where", source, raising=False)
    good = make(available()["syscall_counts"])  # type: ignore[arg-type]
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
