"""The sampler framework: one module per sampler, optional BPF half in ``bpf/``.

Invariants:
- A sampler registers its series in ``start`` (and may add more while running,
  e.g. a new cgroup) and writes cumulative values in ``sample``.
- A sampler that cannot run raises ``SamplerUnavailable`` with a reason an
  operator can act on; the agent reports it and runs the others.
- BPF samplers declare their source file and hooks in ``bpf``; the agent
  compiles all enabled BPF samplers as one program set, fusing hooks on the
  same tracepoint into one program, and hands each sampler its maps.
- Readers of /proc and /sys go through ``SamplerContext.proc`` and ``.sys``
  so tests can point them at fixture trees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from rezolus_agent.bpfload import BpfMaps
    from rezolus_agent.series import FrameBuilder, SeriesRegistry
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


@dataclass(frozen=True)
class BpfSpec:
    """The BPF half of a sampler: its source under ``bpf/`` and its hooks."""

    source: str
    hooks: tuple[Hook, ...]
    maps: tuple[str, ...]
    cflags: tuple[str, ...] = ()


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
    """Base class; subclasses set ``name`` (and ``bpf`` for BPF samplers)."""

    name: ClassVar[str] = ""
    bpf: ClassVar[BpfSpec | None] = None

    def __init__(self, ctx: SamplerContext) -> None:
        self.ctx = ctx
        # Set by ``start`` when the sampler runs but some of its metrics cannot
        # be produced here; the agent reports it as the sampler's status reason.
        self.degraded = ""

    def options(self) -> None:
        """Read sampler-specific options from ``self.ctx.options`` (the ``[samplers.X]`` table)."""

    def cflags(self) -> tuple[str, ...]:
        """Extra -D flags for this sampler's BPF source, decided at start."""
        return self.bpf.cflags if self.bpf else ()

    def start(self, maps: BpfMaps | None) -> None:
        """Register series and open sources; raise SamplerUnavailable if impossible."""
        raise NotImplementedError

    def sample(self, out: FrameBuilder) -> None:
        """Write current cumulative values."""
        raise NotImplementedError

    def close(self) -> None:
        """Release resources."""
