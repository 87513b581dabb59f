"""Driving one sampler in-process on a root (a fixture tree or ``/``) and reading its frames by label."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from rezolus_agent.registry import available
from rezolus_agent.sampler import SamplerContext
from rezolus_agent.series import FrameBuilder, SeriesRegistry
from rezolus_core.config import Section
from rezolus_core.frame import iter_values

if TYPE_CHECKING:
    from pathlib import Path

    from rezolus_agent.sampler import Sampler

Key = tuple[str, tuple[tuple[str, str], ...]]
IDENTITY = ("container", "container_name", "pod_uid", "qos")


def start(name: str, root: Path, options: dict[str, object] | None = None) -> tuple[Sampler, SeriesRegistry]:
    """A started sampler reading ``root``/proc and ``root``/sys whose clock makes every frame a read."""
    registry = SeriesRegistry("i" * 32, {})
    ctx = SamplerContext(registry, Section(options or {}, "test"), proc=root / "proc", sys=root / "sys", cpus=2)
    sampler = available()[name](ctx)
    sampler.options()
    sampler.start()  # type: ignore[attr-defined]
    sampler.clock = itertools.count(0, 10**10).__next__  # type: ignore[attr-defined]
    return sampler, registry


def frame(sampler: Sampler, registry: SeriesRegistry) -> dict[str, dict[Key, int]]:
    """One frame as {name label: {(metric, other labels): value}}."""
    out = FrameBuilder()
    sampler.sample(out)
    built = out.build(registry=registry, seq=1, timestamp_ns=1, monotonic_ns=1, interval_ns=1, host="h")
    found: dict[str, dict[Key, int]] = {}
    for spec, value in iter_values(built, registry.catalog()):
        labels = dict(spec.labels)
        name = labels.pop("name", "")
        found.setdefault(name, {})[(spec.name, tuple(sorted(labels.items())))] = int(value)  # type: ignore[arg-type]
    return found


def k(metric: str, **labels: str) -> Key:
    """A series key without its name label."""
    return metric, tuple(sorted(labels.items()))


def strip_identity(values: dict[Key, int]) -> dict[Key, int]:
    """The same values with container/pod labels dropped."""
    return {(m, tuple(kv for kv in labels if kv[0] not in IDENTITY)): v for (m, labels), v in values.items()}
