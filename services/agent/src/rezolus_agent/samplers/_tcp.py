"""Shared pieces of the TCP samplers: per-CPU histogram maps summed into one series."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rezolus_core.histogram import layout

if TYPE_CHECKING:
    from rezolus_agent.bpfload import BpfMaps
    from rezolus_agent.series import FrameBuilder, SeriesRegistry


class HostHistogram:
    """A ``[cpu][bucket]`` map emitted as one histogram series."""

    def __init__(self, maps: BpfMaps, cpus: int, registry: SeriesRegistry, name: str, description: str) -> None:
        self._rows = maps.array(name).reshape(cpus, layout().buckets)
        self._id = registry.histogram(name, None, "nanoseconds", description)

    def emit(self, out: FrameBuilder) -> None:
        """Sum the CPUs' rows."""
        out.histogram(self._id, self._rows.sum(axis=0, dtype=np.uint64))
