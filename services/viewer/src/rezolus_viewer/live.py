"""``rezolus view --source tcp://HOST:PORT``: the viewer subscribed to an agent's bus, showing the last minutes.

Invariants:
- One ``AsyncSubscriber`` (the bus, tracker and frame decode every
  subscriber uses, CURVE keys included) feeds a ``LiveBuffer``; restarts,
  gaps and an agent that is not there yet are logged as the recorder logs
  them and never stop the viewer.
- The page polls ``/api/info`` at the agent's interval (docs/viewer.md says
  why polling); each answer names the newest row, and charts are asked for
  ``[end - window, end]`` of the snapshot current at that moment.
- A snapshot and its page plan are built at most once per new row, on
  demand (nothing is computed while no page is open); the plan is redone
  only when the set of columns changes (``layout`` counts those changes).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from rezolus_core import log
from rezolus_core.bus import AsyncSubscriber
from rezolus_viewer import dashboard
from rezolus_viewer.api import make_app
from rezolus_viewer.live_buffer import LiveBuffer, MemorySource
from rezolus_viewer.views import View

if TYPE_CHECKING:
    from collections.abc import Callable

    from aiohttp import web

    from rezolus_core.curve import ClientKeys
    from rezolus_viewer.source import Source

class LiveViews:
    """Views of the buffer's newest snapshot (one side, ``""``)."""

    mode = "live"

    def __init__(self, buffer: LiveBuffer) -> None:
        self.buffer = buffer
        self._view: View | None = None
        self._columns: frozenset[str] = frozenset()
        self._dash = dashboard.plan([])
        self.layout = 0

    def _current(self) -> View | None:
        if self._view is not None and self._view.key == self.buffer.generation:
            return self._view
        snap = self.buffer.snapshot()
        if snap is None:
            return None
        names = frozenset(snap.columns)
        if names != self._columns:
            self._columns, self._dash = names, dashboard.plan(snap.columns.values())
            self.layout += 1
        self._view = View(snap, self._dash, self.buffer.generation)
        return self._view

    def get(self, side: str) -> View:
        """The newest snapshot (LookupError before the first row)."""
        if side:
            raise LookupError(f"unknown side {side!r} (a live view has one)")
        view = self._current()
        if view is None:
            raise LookupError("no frames from the agent yet")
        return view

    def recordings(self) -> list[Source]:
        """Nothing to warm or close: snapshots live in memory."""
        return []

    def info(self) -> dict[str, Any]:
        """The window, the plan's version, and whether the first row is still awaited."""
        view = self._current()
        return {"window_ns": self.buffer.window_ns, "layout": self.layout, "waiting": view is None,
                "source": self.buffer.source, "interval_ns": self.buffer.interval_ns}


class Feed:
    """The subscription task: deliveries into the buffer, until the app stops."""

    def __init__(self, source: str, buffer: LiveBuffer, keys: ClientKeys | None) -> None:
        self.source = source
        self.buffer = buffer
        self.keys = keys
        self.subscriber: AsyncSubscriber | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self, _: web.Application) -> None:
        """Subscribe (ZeroMQ connects in the background and reconnects by itself)."""
        self.subscriber = AsyncSubscriber(self.source, keys=self.keys)
        self.task = asyncio.create_task(self._run(self.subscriber))

    async def _run(self, subscriber: AsyncSubscriber) -> None:
        logger = log.get()
        logger.info("viewing live", source=self.source, window_s=self.buffer.window_ns / 1e9)
        first = True
        async for delivery in subscriber.deliveries():
            taken = self.buffer.take(delivery)
            if taken.reset:
                logger.warning("the agent's interval changed; the live view starts afresh",
                               interval_ns=delivery.frame.interval_ns)
            if first and taken.row:
                logger.info("first frame from the agent", instance=delivery.frame.instance)
                first = False
            if taken.restart and not first:
                logger.warning("the agent restarted; the view continues", instance=delivery.frame.instance)
            if taken.missed:
                logger.warning("gap in the live view", missed_rows=taken.missed)

    async def stop(self, _: web.Application) -> None:
        """Cancel the task and close the socket."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.subscriber is not None:
            self.subscriber.close()


def app_factory(source: str, window_ns: int, keys: ClientKeys | None) -> Callable[[], web.Application]:
    """What ``Viewer`` starts: the API over a live buffer, with the subscription as a startup task."""

    def build() -> web.Application:
        buffer = LiveBuffer(window_ns, source)
        views = LiveViews(buffer)
        feed = Feed(source, buffer, keys)
        app = make_app(None, dashboard.plan([]), warm=False, views=views)
        app.on_startup.append(feed.start)
        app.on_cleanup.append(feed.stop)
        return app

    return build


__all__ = ["Feed", "LiveViews", "MemorySource", "app_factory"]
