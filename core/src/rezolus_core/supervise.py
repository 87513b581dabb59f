"""``python -m rezolus_core.supervise``: run several services in the foreground as one.

Used by ``make run`` with ``config/run.toml``: starts every enabled service,
prints each line of their output prefixed with the service's name, and stops
them all together.

Invariants:
- Children run in their own sessions, so a terminal's Ctrl-C reaches only
  the supervisor, which forwards that one signal (SIGINT or SIGTERM) to each
  child exactly once.  A second signal SIGKILLs every child's process group.
- When a child exits on its own (crash or not) while the others run, the
  supervisor says which one and with what code, then stops the rest with
  SIGTERM; whoever is still running after the grace period is SIGKILLed.
- Every output line of every child is printed, prefixed, in the order it was
  read; JSON log records are shown as ``level event key=value ...``.
- Exit code: 0 when stopped by a signal and every child exited cleanly, 1
  when a child failed or had to be killed, 2 for a configuration problem.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from rezolus_core import config as core_config
from rezolus_core.config import EXIT_CONFIG, ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

PROG = "supervise"
_LINE_LIMIT = 1 << 20
_COLORS = ("36", "33", "35", "32", "34", "31")
# A child's exit by a forwarded stop signal counts as a clean stop.
_CLEAN_STOP = {0, -signal.SIGINT, -signal.SIGTERM, 128 + signal.SIGINT, 128 + signal.SIGTERM}


@dataclass(frozen=True)
class ServiceSpec:
    """One service to run: its label, argv and an optional note for the banner."""

    name: str
    command: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True)
class Plan:
    """What to run and how long stopping may take."""

    services: tuple[ServiceSpec, ...]
    grace_s: float
    notes: tuple[str, ...]


def expand(arg: str, variables: Mapping[str, str]) -> str:
    """Replace ``{bin}`` and ``{python}`` placeholders in one argument."""
    for key, value in variables.items():
        arg = arg.replace("{" + key + "}", value)
    return arg


def load_plan(path: str | Path, variables: Mapping[str, str] | None = None) -> Plan:
    """Read run.toml: ``[supervise]`` settings and one ``[services.NAME]`` table per service."""
    bindir = str(Path(sys.executable).parent)
    values = {"bin": bindir, "python": sys.executable, **(variables or {})}
    root = core_config.load(path)
    general = root.section("supervise")
    grace_ns = general.duration("grace", "15s", minimum_ns=100_000_000)
    notes = tuple(general.strings("notes", []))
    general.finish()
    table = root.section("services")
    services: list[ServiceSpec] = []
    names = table.keys()
    for name in names:
        entry = table.section(name)
        enabled = entry.boolean("enabled", default=True)
        command = entry.strings("command", [])
        note = entry.string("note", "")
        entry.finish()
        if not command:
            raise entry.error("command", "needs at least the program to run")
        if enabled:
            services.append(ServiceSpec(name, tuple(expand(a, values) for a in command), note))
    table.finish()
    root.finish()
    if not services:
        raise ConfigError(str(path), "services", "no enabled service")
    return Plan(tuple(services), grace_ns / 1e9, notes)


def render(line: str) -> str:
    """Show a JSON log record as ``level event key=value ...``; any other line unchanged."""
    if not line.startswith("{"):
        return line
    try:
        record: Any = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict) or "event" not in record:
        return line
    skip = {"event", "level", "timestamp", "service"}
    extras = " ".join(f"{k}={v}" for k, v in record.items() if k not in skip)
    return f"{record.get('level', 'info'):<7} {record['event']}" + (f" {extras}" if extras else "")


class Supervisor:
    """Runs a plan's services and relays their output to ``out``."""

    def __init__(self, plan: Plan, out: TextIO, color: bool = False) -> None:
        self.plan = plan
        self.out = out
        width = max(len(s.name) for s in plan.services)
        self._labels = {
            s.name: (
                f"\x1b[{_COLORS[i % len(_COLORS)]}m{s.name:<{width}} |\x1b[0m"
                if color
                else f"{s.name:<{width}} |"
            )
            for i, s in enumerate(plan.services)
        }
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._signals = 0
        self._stopping = asyncio.Event()
        self._killed = False

    def say(self, message: str) -> None:
        """Print a line of the supervisor's own."""
        self._write(f"{PROG}: {message}")

    def _write(self, text: str) -> None:
        with contextlib.suppress(BrokenPipeError, ValueError):
            self.out.write(text + "\n")
            self.out.flush()

    async def _pump(self, name: str, stream: asyncio.StreamReader) -> None:
        label = self._labels[name]
        while True:
            try:
                raw = await stream.readline()
            except ValueError:  # a line longer than the limit: take what is buffered
                raw = await stream.read(_LINE_LIMIT)
            if not raw:
                return
            self._write(f"{label} {render(raw.decode('utf-8', 'replace').rstrip())}")

    def on_signal(self, signum: int) -> None:
        """First signal: forward it; second: kill everything."""
        self._signals += 1
        name = signal.Signals(signum).name
        if self._signals == 1:
            self.say(f"{name}: stopping {', '.join(self._running())}")
            self._stopping.set()
            self._send(signum)
        else:
            self.say(f"second {name}: killing {', '.join(self._running()) or 'nothing'}")
            self._kill()

    def _running(self) -> list[str]:
        return [n for n, p in self._procs.items() if p.returncode is None]

    def _send(self, signum: int) -> None:
        for name in self._running():
            with contextlib.suppress(ProcessLookupError):
                self._procs[name].send_signal(signum)

    def _kill(self) -> None:
        self._killed = True
        for name in self._running():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._procs[name].pid, signal.SIGKILL)

    async def _start(self, spec: ServiceSpec) -> list[asyncio.Task[None]]:
        proc = await asyncio.create_subprocess_exec(
            *spec.command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            limit=_LINE_LIMIT,
        )
        self._procs[spec.name] = proc
        assert proc.stdout is not None  # noqa: S101 - PIPE was requested
        assert proc.stderr is not None  # noqa: S101 - PIPE was requested
        return [
            asyncio.create_task(self._pump(spec.name, proc.stdout)),
            asyncio.create_task(self._pump(spec.name, proc.stderr)),
        ]

    async def run(self) -> int:
        """Start everything, wait for a signal or a death, stop everything; the exit code."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.on_signal, signum)
        pumps: list[asyncio.Task[None]] = []
        failed = False
        try:
            for spec in self.plan.services:
                try:
                    pumps += await self._start(spec)
                except OSError as exc:
                    self.say(f"cannot start {spec.name}: {exc.strerror or exc} ({spec.command[0]})")
                    failed = True
                    break
                self.say(f"started {spec.name} (pid {self._procs[spec.name].pid}): "
                         + " ".join(spec.command))
            if not failed:
                self._banner()
                failed = await self._watch()
            if self._running() and not self._stopping.is_set():
                self._stopping.set()
                self._send(signal.SIGTERM)
            failed = await self._drain() or failed
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
            await asyncio.gather(*pumps, return_exceptions=True)
        for name, proc in self._procs.items():
            self.say(f"{name} exited with code {proc.returncode}")
        return 1 if failed or self._killed else 0

    def _banner(self) -> None:
        for spec in self.plan.services:
            if spec.note:
                self.say(spec.note)
        for note in self.plan.notes:
            self.say(note)

    async def _watch(self) -> bool:
        """Wait until a signal arrives or a child exits; True when a child died on its own."""
        waits = {asyncio.create_task(p.wait()): n for n, p in self._procs.items()}
        stop = asyncio.create_task(self._stopping.wait())
        done, _ = await asyncio.wait({stop, *waits}, return_when=asyncio.FIRST_COMPLETED)
        for task in (stop, *waits):
            if task not in done:
                task.cancel()
        if self._stopping.is_set():
            return False
        for task in done:
            name = waits[task]
            code = self._procs[name].returncode
            others = ", ".join(self._running())
            self.say(f"{name} exited unexpectedly with code {code}"
                     + (f"; stopping {others}" if others else ""))
        return True

    async def _drain(self) -> bool:
        """Wait for every child to exit, killing them after the grace period; True if unclean."""
        waiting = [p.wait() for p in self._procs.values()]
        try:
            await asyncio.wait_for(asyncio.gather(*waiting), timeout=self.plan.grace_s)
        except TimeoutError:
            self.say(f"still running after {self.plan.grace_s:g}s: {', '.join(self._running())}; "
                     "killing")
            self._kill()
            await asyncio.gather(*(p.wait() for p in self._procs.values()))
        return any(p.returncode not in _CLEAN_STOP for p in self._procs.values())


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m rezolus_core.supervise --config config/run.toml``."""
    parser = argparse.ArgumentParser(prog=PROG, description="Run several services as one.")
    parser.add_argument("--config", required=True, help="run.toml listing the services")
    args = parser.parse_args(argv)
    try:
        plan = load_plan(args.config)
    except ConfigError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)  # noqa: T201 - operator-facing CLI error
        return EXIT_CONFIG
    supervisor = Supervisor(plan, sys.stdout, color=sys.stdout.isatty())
    return asyncio.run(supervisor.run())


if __name__ == "__main__":
    raise SystemExit(main())
