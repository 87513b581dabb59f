"""The sampler framework: procfs-style samplers and BPF samplers.

Invariants:
- A sampler registers its series when it starts (and may add more while
  running, e.g. a new cgroup) and writes cumulative values in ``sample``.
- ``ProcSampler`` reads the kernel through files and syscalls (/proc, /sys,
  perf_event_open, getrusage): the agent calls ``start()``.
- ``BpfSampler`` has a BPF half: its ``.bpf.c`` lives in the sampler's own
  package folder, its hooks, maps, map sizes and map → metric wiring are
  declared in ``bpf`` (a ``BpfSpec``).  The agent asks every BPF sampler for
  its compiler flags (``cflags``), compiles all of them as one program set,
  fusing hooks on the same tracepoint into one program, and hands each
  sampler its maps (``attach``).
- A sampler that cannot run raises ``SamplerUnavailable`` (``BtfError`` is
  one) with a reason an operator can act on, from ``cflags``, ``start`` or
  ``attach``; the agent records it as the sampler's status (what
  ``rezolus-agent --check`` prints) and runs the others.
- Readers of /proc and /sys go through ``SamplerContext.proc`` and ``.sys``
  so tests can point them at fixture trees.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from collections.abc import Callable

    from rezolus_agent.bpfload import BpfMaps
    from rezolus_agent.series import FrameBuilder, SeriesRegistry
    from rezolus_agent.wiring import Emitter, Wiring
    from rezolus_core.config import Section


class SamplerUnavailable(RuntimeError):  # noqa: N818 - reads as a state, like StopIteration
    """This sampler cannot run here; the message says why."""


@dataclass(frozen=True)
class Hook:
    """A handler function of a BPF sampler and where it attaches.

    ``kind`` is ``raw_tracepoint`` (``target`` like ``sys_enter``; the handler
    takes ``struct bpf_raw_tracepoint_args *``) or ``tracepoint`` (``target``
    like ``sched:sched_switch``; the handler takes ``void *`` pointing at the
    tracepoint's field struct).
    """

    kind: str
    target: str
    handler: str


def raw(target: str, handler: str) -> Hook:
    """A raw-tracepoint hook."""
    return Hook("raw_tracepoint", target, handler)


def tracepoint(target: str, handler: str) -> Hook:
    """A tracepoint hook (``category:event``)."""
    return Hook("tracepoint", target, handler)


def cgroup_hooks(rmdir_handler: str) -> tuple[Hook, ...]:
    """Hooks of a sampler with a kernel-filled cgroup slot table (``samplers/rezolus_cgroup.h``)."""
    return (tracepoint("cgroup:cgroup_mkdir", "rz_cgroup__mkdir"), tracepoint("cgroup:cgroup_rmdir", rmdir_handler))


@dataclass(frozen=True)
class MapSize:
    """A map size the operator may set: option ``key`` in ``[samplers.X]``, passed to the compiler as ``-Dmacro``."""

    key: str
    default: int
    macro: str
    minimum: int = 64
    maximum: int = 1 << 20


@dataclass(frozen=True)
class BpfSpec:
    """The BPF half of a sampler.

    ``maps``: maps the agent needs (fds and mmapped views); ``metrics``: how
    map contents become series (see ``wiring``); ``sizes``: configurable map
    sizes; ``btf``: a function returning ``-D`` flags read from the running
    kernel's BTF (raises ``BtfError``).
    """

    hooks: tuple[Hook, ...]
    maps: tuple[str, ...]
    metrics: tuple[Wiring, ...] = ()
    sizes: tuple[MapSize, ...] = ()
    btf: Callable[[], tuple[str, ...]] | None = None


@dataclass
class SamplerContext:
    """What a sampler gets from the agent."""

    registry: SeriesRegistry
    options: Section
    proc: Path = Path("/proc")
    sys: Path = Path("/sys")
    cpus: int = 1
    extra: dict[str, object] = field(default_factory=dict)


class Sampler:
    """What every sampler has; subclass ``ProcSampler`` or ``BpfSampler``, not this."""

    name: ClassVar[str] = ""

    def __init__(self, ctx: SamplerContext) -> None:
        self.ctx = ctx
        # Set while starting when the sampler runs but some of its metrics cannot
        # be produced here; the agent reports it as the sampler's status reason.
        self.degraded = ""

    def options(self) -> None:
        """Read sampler-specific options from ``self.ctx.options`` (the ``[samplers.X]`` table)."""

    def sample(self, out: FrameBuilder) -> None:
        """Write current cumulative values."""
        raise NotImplementedError

    def close(self) -> None:
        """Release resources."""


class ProcSampler(Sampler):
    """A sampler without BPF: files under /proc and /sys, perf events, rusage."""

    def start(self) -> None:
        """Register series and open sources; raise SamplerUnavailable if impossible."""
        raise NotImplementedError


class BpfSampler(Sampler):
    """A sampler with a BPF half; by default its metrics are exactly ``bpf.metrics``."""

    bpf: ClassVar[BpfSpec]

    def __init__(self, ctx: SamplerContext) -> None:
        super().__init__(ctx)
        self.sizes: dict[str, int] = {}
        self._wired: list[Emitter] = []

    @classmethod
    def source(cls) -> Path:
        """The BPF C source: ``<name>.bpf.c`` beside the sampler's module."""
        return Path(inspect.getfile(cls)).parent / f"{cls.name}.bpf.c"

    def options(self) -> None:
        """Read the configurable map sizes."""
        for size in self.bpf.sizes:
            self.sizes[size.key] = self.ctx.options.integer(
                size.key, size.default, minimum=size.minimum, maximum=size.maximum
            )

    def cflags(self) -> tuple[str, ...]:
        """``-D`` flags for the BPF source: BTF-derived ones, then map sizes; SamplerUnavailable if impossible."""
        kernel = self.bpf.btf() if self.bpf.btf else ()
        return (*kernel, *(f"-D{s.macro}={self.sizes[s.key]}" for s in self.bpf.sizes))

    def attach(self, maps: BpfMaps) -> None:
        """Register the declared metrics over this sampler's maps."""
        self._wired = [wiring.bind(self, maps) for wiring in self.bpf.metrics]

    def sample(self, out: FrameBuilder) -> None:
        """Emit the declared metrics."""
        for bound in self._wired:
            bound.emit(out)
