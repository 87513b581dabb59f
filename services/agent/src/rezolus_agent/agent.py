"""The agent service: start samplers, then publish one frame per interval.

Invariants:
- Frames land on the wall-clock grid of the interval (ticks at multiples of
  the interval since the epoch); a late tick is skipped, never bunched, so
  there is no drift and ``seq`` gaps mean ticks that were not sampled.
- Each frame carries every running sampler's cumulative values; a catalog is
  published before the first frame that needs it.
- A sampler that fails to start is reported (status + log) and the others
  run; a sampler that raises while sampling is logged and keeps its series
  out of that frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import os
import platform
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rezolus_agent import __version__, btf
from rezolus_agent.bpfload import BpfLoader, BpfMaps
from rezolus_agent.sampler import Sampler, SamplerContext, SamplerUnavailable
from rezolus_agent.samplers.cpu_cores import count_cpu_list
from rezolus_agent.series import FrameBuilder, SeriesRegistry
from rezolus_core import log
from rezolus_core.bus import Publisher, ZmqPublisher

if TYPE_CHECKING:
    from collections.abc import Callable

    from rezolus_agent.config import AgentConfig


@dataclass
class SamplerStatus:
    """Whether a sampler runs, and why not."""

    name: str
    enabled: bool
    running: bool
    reason: str = ""


def release_startup_memory() -> None:
    """Drop what only start-up needed (the parsed kernel BTF) and hand freed memory back to the OS."""
    btf.kernel.cache_clear()
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)


def possible_cpus(sys_root: Path) -> int:
    """Highest possible CPU number + 1 (BPF per-CPU rows are indexed by CPU number)."""
    try:
        text = (sys_root / "devices" / "system" / "cpu" / "possible").read_text(encoding="ascii")
    except OSError:
        return os.cpu_count() or 1
    highest = max(int(part.split("-")[-1]) for part in text.strip().split(",") if part)
    return max(highest + 1, count_cpu_list(text))


def host_identity(proc: Path) -> dict[str, str]:
    """Host facts published in the catalog."""
    info = {
        "hostname": socket.gethostname(),
        "kernel": platform.release(),
        "machine": platform.machine(),
        "agent_version": __version__,
    }
    for key, path in (("machine_id", Path("/etc/machine-id")), ("boot_id", proc / "sys/kernel/random/boot_id")):
        try:
            info[key] = path.read_text(encoding="ascii").strip()
        except OSError:
            continue
    return info


class Agent:
    """The agent as a lifecycle service."""

    name = "rezolus-agent"

    def __init__(
        self,
        cfg: AgentConfig,
        samplers: dict[str, type[Sampler]],
        publisher_factory: Callable[[str], Publisher] | None = None,
    ) -> None:
        self.cfg = cfg
        self.instance = uuid.uuid4().hex
        self.host = socket.gethostname()
        self.registry = SeriesRegistry(self.instance, host_identity(cfg.proc_root))
        self.cpus = possible_cpus(cfg.sys_root)
        self.statuses: dict[str, SamplerStatus] = {}
        self.running: list[Sampler] = []
        self.seq = 0
        self.overruns = 0
        self.publisher: Publisher | None = None
        self._publisher_factory = publisher_factory or ZmqPublisher
        self._sampler_classes = samplers
        self._loader = BpfLoader(self.cpus)
        self._published_version = -1
        self._log = log.get()
        self._candidates = self._instantiate()

    def _instantiate(self) -> list[Sampler]:
        """Create enabled samplers and validate their options (ConfigError on a bad key)."""
        extra: dict[str, object] = {}
        candidates: list[Sampler] = []
        for name, cls in self._sampler_classes.items():
            enabled = self.cfg.enabled.get(name, True)
            self.statuses[name] = SamplerStatus(name, enabled, running=False, reason="disabled")
            if not enabled:
                continue
            ctx = SamplerContext(
                registry=self.registry,
                options=self.cfg.options[name],
                proc=self.cfg.proc_root,
                sys=self.cfg.sys_root,
                cpus=self.cpus,
                extra=extra,
            )
            sampler = cls(ctx)
            sampler.options()
            ctx.options.finish()
            candidates.append(sampler)
        return candidates

    def start_samplers(self) -> None:
        """Compile BPF once for all BPF samplers, then start every enabled sampler."""
        candidates = self._candidates
        bpf_samplers = [s for s in candidates if s.bpf is not None]
        failures: dict[str, str] = {}
        maps: dict[str, BpfMaps] = {}
        if bpf_samplers and os.geteuid() != 0:
            failures = {s.name: "BPF needs root (CAP_BPF, CAP_PERFMON)" for s in bpf_samplers}
        elif bpf_samplers:
            maps, failures = self._loader.load(bpf_samplers)
        for sampler in candidates:
            status = self.statuses[sampler.name]
            if sampler.name in failures:
                status.reason = failures[sampler.name]
                continue
            try:
                sampler.start(maps.get(sampler.name))
            except SamplerUnavailable as exc:
                status.reason = str(exc)
                continue
            status.running, status.reason = True, sampler.degraded
            if sampler.degraded:
                self._log.warning("sampler degraded", sampler=sampler.name, reason=sampler.degraded)
            self.running.append(sampler)
        release_startup_memory()
        for status in self.statuses.values():
            if status.enabled and not status.running:
                self._log.warning("sampler unavailable", sampler=status.name, reason=status.reason)
        self._status_ids = {
            s.name: self.registry.gauge(
                "rezolus_sampler_up", {"sampler": s.name}, "samplers", "1 when the sampler runs, 0 when it cannot."
            )
            for s in self.statuses.values()
            if s.enabled
        }

    async def startup(self) -> None:
        """Start samplers, then bind the bus (so no frame is sent half-ready)."""
        self.start_samplers()
        self.publisher = self._publisher_factory(self.cfg.listen)
        running = [s.name for s in self.running]
        self._log.info("agent ready", listen=self.cfg.listen, interval_ns=self.cfg.interval_ns, samplers=running)

    def sample_once(self) -> None:
        """Collect and publish one frame now."""
        assert self.publisher is not None  # noqa: S101 - startup sets it
        timestamp, monotonic = time.time_ns(), time.monotonic_ns()
        builder = FrameBuilder()
        for sampler in self.running:
            try:
                sampler.sample(builder)
            except Exception:  # noqa: BLE001 - one failing sampler must not stop the others
                self._log.exception("sampler failed", sampler=sampler.name)
        for name, sid in self._status_ids.items():
            builder.gauge(sid, int(self.statuses[name].running))
        if self.registry.version != self._published_version:
            self.publisher.publish_catalog(self.registry.catalog())
            self._published_version = self.registry.version
        self.seq += 1
        frame = builder.build(
            registry=self.registry,
            seq=self.seq,
            timestamp_ns=timestamp,
            monotonic_ns=monotonic,
            interval_ns=self.cfg.interval_ns,
            host=self.host,
        )
        self.publisher.publish_frame(frame)

    async def run(self, stopping: asyncio.Event) -> None:
        """Sample on the wall-clock grid until stopped."""
        interval = self.cfg.interval_ns
        tick = (time.time_ns() // interval + 1) * interval
        while not stopping.is_set():
            delay = (tick - time.time_ns()) / 1e9
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), timeout=delay)
                if stopping.is_set():
                    break
            self.sample_once()
            now = time.time_ns()
            tick += interval
            if tick <= now:
                skipped = (now - tick) // interval + 1
                self.overruns += skipped
                self.seq += skipped
                tick += skipped * interval

    async def shutdown(self) -> None:
        """Stop samplers, detach BPF, close the bus."""
        for sampler in self.running:
            sampler.close()
        self._loader.close()
        if self.publisher is not None:
            self.publisher.close()
