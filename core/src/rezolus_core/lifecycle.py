"""One lifecycle for every service: config -> startup -> run -> graceful shutdown.

Invariants:
- Configuration is parsed before anything starts; a ``ConfigError`` prints one
  line and exits 2, a ``StartupError`` (``rezolus_core.bus.BusError`` is one) prints one line and
  exits 1.  Neither prints a stack trace.
- The first SIGINT or SIGTERM sets the ``stopping`` event; ``run`` returns,
  then ``shutdown`` finishes the work (flush files, close sockets) and the
  process exits 0.  A second signal calls ``force_exit`` (if the service has
  one) and ends the process at once with code 130.
- ``shutdown`` always runs once ``startup`` has succeeded, even when ``run``
  fails.
- A service that fails without raising (it records the failure and returns)
  says so with an ``exit_code`` attribute, read after ``shutdown``; the
  ``stopped`` log line carries the code the process really ends with.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import TYPE_CHECKING, Protocol

from rezolus_core import log
from rezolus_core.config import EXIT_CONFIG, ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_FORCED = 130


class StartupError(RuntimeError):
    """The service cannot start; the message says why, for the operator."""


class Service(Protocol):
    """What ``run_service`` drives."""

    name: str

    async def startup(self) -> None:
        """Acquire resources (sockets, files, BPF); raise StartupError to refuse."""

    async def run(self, stopping: asyncio.Event) -> None:
        """Do the work until ``stopping`` is set."""

    async def shutdown(self) -> None:
        """Release resources and finish outputs."""


def fail(prog: str, message: str, code: int) -> int:
    """Print a one-line error for the operator and return the exit code."""
    print(f"{prog}: error: {message}", file=sys.stderr)  # noqa: T201 - operator-facing CLI error
    return code


def guard_config(prog: str, build: Callable[[], int]) -> int:
    """Run ``build`` and turn configuration errors into one line and exit 2."""
    try:
        return build()
    except ConfigError as exc:
        return fail(prog, str(exc), EXIT_CONFIG)


async def _serve(service: Service, extra: Mapping[int, Callable[[], None]]) -> int:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    logger = log.get()
    signals_seen = 0

    def on_stop(signum: int) -> None:
        nonlocal signals_seen
        signals_seen += 1
        if signals_seen == 1:
            logger.info("shutting down", signal=signal.Signals(signum).name)
            stopping.set()
            return
        logger.warning("second signal: forcing exit", signal=signal.Signals(signum).name)
        force = getattr(service, "force_exit", None)
        if callable(force):
            force()
        os._exit(EXIT_FORCED)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_stop, signum)
    for extra_signal, callback in extra.items():
        loop.add_signal_handler(extra_signal, callback)

    try:
        await service.startup()
    except StartupError as exc:
        return fail(service.name, str(exc), EXIT_FAILURE)
    logger.info("started")
    code = EXIT_OK
    try:
        await service.run(stopping)
    except Exception:
        logger.exception("service failed")
        code = EXIT_FAILURE
    finally:
        await service.shutdown()
    reported = getattr(service, "exit_code", EXIT_OK)
    if code == EXIT_OK and isinstance(reported, int):
        code = reported
    logger.info("stopped", exit_code=code)
    return code


def run_service(service: Service, extra_signals: Mapping[int, Callable[[], None]] | None = None) -> int:
    """Run a service to completion and return its exit code."""
    return asyncio.run(_serve(service, extra_signals or {}))
