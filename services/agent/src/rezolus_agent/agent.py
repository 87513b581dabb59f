"""The agent service: start samplers, then publish one frame per interval.

Invariants:
- Frames land on the wall-clock grid of the interval (ticks at multiples of
  the interval since the epoch); a late tick is skipped, never bunched, so
  there is no drift and ``seq`` gaps mean ticks that were not sampled.
- Each frame carries every running sampler's cumulative values; a catalog is
  published before the first frame that needs it.
- A sampler that cannot start (``SamplerUnavailable`` from its flags, its
  BPF compile, or its start) is reported with that one reason (status + log,
  ``rezolus_sampler_up`` = 0) and the others run.
- While BPF programs run, the kernel's run statistics are on (``bpfstats``):
  ``rezolus_bpf_run_count``/``rezolus_bpf_run_time`` per program.
- A sampler that raises while sampling is logged and publishes NONE of its
  values in that frame (a partial set would mix readings of different
  moments); its ``rezolus_sampler_up`` is 0 in that frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import functools
import gc
import os
import platform
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from rezolus_agent import __version__, btf
from rezolus_agent.bpfload import BpfLoader, BpfMaps
from rezolus_agent.bpfstats import BpfStats
from rezolus_agent.cpus import possible_cpus
from rezolus_agent.sampler import BpfSampler, ProcSampler, Sampler, SamplerContext, SamplerUnavailable
from rezolus_agent.series import FrameBuilder, SeriesRegistry
from rezolus_core import log
from rezolus_core.bus import Publisher, ZmqPublisher

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

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
    btf.release()
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)


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


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _TickWaiter:
    """Sleeps until a delay passes or ``stopping`` is set: one future and one timer per tick.

    ``asyncio.wait_for(stopping.wait(), delay)`` would create and cancel a
    task per tick, which at 10 ms cost as much CPU as a quarter of a frame.
    """

    def __init__(self, stopping: asyncio.Event) -> None:
        self._stopping = stopping
        self._wake: asyncio.Future[None] | None = None
        self._watcher: asyncio.Task[Literal[True]] | None = None

    async def __aenter__(self) -> Callable[[float], Awaitable[None]]:
        watcher = self._watcher = asyncio.ensure_future(self._stopping.wait())
        watcher.add_done_callback(self._on_stop)
        return self.wait

    async def __aexit__(self, *exc: object) -> None:
        if self._watcher is not None:
            self._watcher.cancel()

    def _on_stop(self, _: object) -> None:
        if self._wake is not None:
            _resolve(self._wake)

    async def wait(self, delay: float) -> None:
        """Return after ``delay`` seconds, or as soon as ``stopping`` is set."""
        loop = asyncio.get_running_loop()
        self._wake = wake = loop.create_future()
        timer = loop.call_later(delay, _resolve, wake)
        try:
            await wake
        finally:
            timer.cancel()
            self._wake = None


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
        self._publisher_factory = publisher_factory or functools.partial(ZmqPublisher, keys=cfg.curve)
        self._sampler_classes = samplers
        self._loader = BpfLoader(self.cpus)
        self._published_version = -1
        self._log = log.get()
        self._bpf_stats: BpfStats | None = None
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

    def _load_bpf(self) -> tuple[dict[str, BpfMaps], dict[str, str]]:
        """Maps per BPF sampler, and why the others cannot run."""
        group = [s for s in self._candidates if isinstance(s, BpfSampler)]
        if group and os.geteuid() != 0:
            return {}, {s.name: "BPF needs root (CAP_BPF, CAP_PERFMON)" for s in group}
        return self._loader.load(group)

    @staticmethod
    def _start(sampler: Sampler, maps: dict[str, BpfMaps]) -> str:
        """Start one sampler; why it cannot run, or "" when it runs."""
        try:
            if isinstance(sampler, BpfSampler):
                sampler.attach(maps[sampler.name])
            else:
                assert isinstance(sampler, ProcSampler)  # noqa: S101 - the registry admits only these two
                sampler.start()
        except SamplerUnavailable as exc:
            return str(exc) or type(exc).__name__
        return ""

    def start_samplers(self) -> None:
        """Compile BPF once for all BPF samplers, then start every enabled sampler.

        This is the one place a sampler becomes unavailable: its reason comes
        from its flags or BPF compile (``failures``) or from its start.
        """
        maps, failures = self._load_bpf()
        for sampler in self._candidates:
            status = self.statuses[sampler.name]
            status.reason = failures.get(sampler.name) or self._start(sampler, maps)
            if status.reason:
                continue
            status.running, status.reason = True, sampler.degraded
            if sampler.degraded:
                self._log.warning("sampler degraded", sampler=sampler.name, reason=sampler.degraded)
            self.running.append(sampler)
        running_bpf = {s.name for s in self.running if isinstance(s, BpfSampler)}
        programs = [p for p in self._loader.programs if running_bpf.intersection(p.samplers)]
        if not self.cfg.bpf_stats:
            programs = []
        try:
            self._bpf_stats = BpfStats(self.registry, programs)
        except OSError as exc:
            self._log.warning("BPF run statistics unavailable", reason=str(exc))
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
        self._status_running = [(name, self.statuses[name].running) for name in self._status_ids]
        self._status_id_array = np.array(list(self._status_ids.values()), dtype=np.uint32)
        self._status_up = np.array([running for _, running in self._status_running], dtype=np.int64)

    async def startup(self) -> None:
        """Start samplers, then bind the bus (so no frame is sent half-ready)."""
        self.start_samplers()
        self.publisher = self._publisher_factory(self.cfg.listen)
        running = [s.name for s in self.running]
        self._log.info("agent ready", listen=self.cfg.listen, interval_ns=self.cfg.interval_ns, samplers=running)

    def reload_keys(self) -> None:
        """SIGHUP: read the authorised subscribers' keys again."""
        reload = getattr(self.publisher, "reload_keys", None)
        if reload is not None:
            reload()

    def sample_once(self) -> None:
        """Collect and publish one frame now."""
        assert self.publisher is not None  # noqa: S101 - startup sets it
        timestamp, monotonic = time.time_ns(), time.monotonic_ns()
        builder = FrameBuilder()
        failed: set[str] = set()
        for sampler in self.running:
            mark = builder.mark()
            try:
                sampler.sample(builder)
            except Exception:  # noqa: BLE001 - one failing sampler must not stop the others
                builder.rollback(mark)
                failed.add(sampler.name)
                self._log.exception("sampler failed", sampler=sampler.name)
        up = self._status_up
        if failed:
            up = np.array([running and name not in failed for name, running in self._status_running], dtype=np.int64)
        builder.gauges(self._status_id_array, up)
        if self._bpf_stats is not None:
            try:
                self._bpf_stats.sample(builder)
            except OSError:
                self._log.exception("BPF run statistics failed")
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
        async with _TickWaiter(stopping) as wait:
            while not stopping.is_set():
                delay = (tick - time.time_ns()) / 1e9
                if delay > 0:
                    await wait(delay)
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
        if self._bpf_stats is not None:
            self._bpf_stats.close()
        self._loader.close()
        if self.publisher is not None:
            self.publisher.close()
