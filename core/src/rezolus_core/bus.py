"""The bus: publishing frames over ZeroMQ and subscribing to them.

Invariants:
- Messages are two parts, ``[topic, payload]``; the topic is ``catalog`` or
  ``frame`` and the payload is what ``rezolus_core.frame`` encodes.
- Publishing never blocks: at the high-water mark a slow subscriber loses
  messages and the publisher keeps its cadence (counted in ``dropped``).
- The publisher is an XPUB socket: every new subscription makes it republish
  the current catalog, and it republishes it every ``catalog_every_s`` too, so
  a late joiner never waits long for the catalog.
- Subscribers reconnect on their own (ZeroMQ does, every 100 ms doubling to
  ``RECONNECT_CAP_MS``) and hand every payload to a ``Tracker``; they never
  raise for bad input. The cap bounds what a subscriber misses of a restarted
  publisher's first frames; a closed port answers a connect at once, so
  retrying four times a second costs nothing measurable.
- With CURVE keys (``rezolus_core.curve``) the publisher is a CURVE server on
  every address, loopback included, and subscribers are CURVE clients; the
  option rows every service adds are ``SERVER_OPTIONS`` and
  ``CLIENT_OPTIONS``, read back with ``server_keys`` and ``client_keys``
  (defined in ``bus_options``, which loads no ZeroMQ, and re-exported here).
- ``BusError`` is a ``StartupError``: the lifecycle reports it as one.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol, cast

import zmq
import zmq.asyncio

from rezolus_core import curve
from rezolus_core.bus_options import CLIENT_OPTIONS, SERVER_OPTIONS, client_keys, server_keys
from rezolus_core.frame import Catalog, Frame, encode_catalog, encode_frame
from rezolus_core.lifecycle import StartupError
from rezolus_core.tracker import Delivery, Tracker

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


__all__ = [
    "CLIENT_OPTIONS", "DEFAULT_ENDPOINT", "SERVER_OPTIONS", "TOPIC_CATALOG", "TOPIC_FRAME", "AsyncSubscriber",
    "BusError", "MemoryBus", "MemorySubscription", "Publisher", "ZmqPublisher", "ZmqSubscriber", "client_keys",
    "server_keys",
]

DEFAULT_ENDPOINT = "tcp://127.0.0.1:4241"
TOPIC_CATALOG = b"catalog"
TOPIC_FRAME = b"frame"


class BusError(StartupError):
    """The bus could not be set up (for example the listen address is busy)."""


class Publisher(Protocol):
    """What the agent needs from a bus."""

    def publish_catalog(self, catalog: Catalog) -> None:
        """Announce the current catalog."""

    def publish_frame(self, frame: Frame) -> None:
        """Send one frame without blocking."""

    def close(self) -> None:
        """Release the bus."""


class ZmqPublisher:
    """An XPUB socket bound to an endpoint, republishing the catalog on subscribe."""

    def __init__(
        self, endpoint: str, *, hwm: int = 1000, catalog_every_s: float = 5.0, keys: curve.ServerKeys | None = None
    ) -> None:
        self.endpoint = endpoint
        self.dropped = 0
        self._catalog_payload: bytes | None = None
        self._catalog_every = catalog_every_s
        self._catalog_sent_at = 0.0
        self._socket: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.XPUB)
        self._socket.setsockopt(zmq.SNDHWM, hwm)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.XPUB_VERBOSE, 1)
        self.guard: curve.ServerGuard | None = None
        try:
            if keys is not None:
                self.guard = curve.ServerGuard(zmq.Context.instance(), keys)
                self.guard.secure(self._socket)
            self._socket.bind(endpoint)
        except (zmq.ZMQError, ValueError) as exc:
            self.close()
            if isinstance(exc, ValueError):
                raise BusError(str(exc)) from exc
            raise BusError(f"cannot listen on {endpoint}: {exc.strerror}") from exc

    def publish_catalog(self, catalog: Catalog) -> None:
        """Remember the catalog and send it now."""
        self._catalog_payload = encode_catalog(catalog)
        self._send_catalog()

    def _send_catalog(self) -> None:
        if self._catalog_payload is not None:
            self._send(TOPIC_CATALOG, self._catalog_payload)
            self._catalog_sent_at = time.monotonic()

    def _send(self, topic: bytes, payload: bytes) -> None:
        try:
            self._socket.send_multipart([topic, payload], flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            self.dropped += 1

    def _drain_subscriptions(self) -> bool:
        # Asking for POLLIN first: a recv that finds nothing raises, and building that exception every frame costs.
        subscribed = False
        while cast("int", self._socket.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
            try:
                message = self._socket.recv(flags=zmq.NOBLOCK)
            except zmq.Again:
                break
            if message[:1] == b"\x01":
                subscribed = True
        return subscribed

    def publish_frame(self, frame: Frame) -> None:
        """Send a frame; first resend the catalog if someone subscribed or it is due."""
        due = time.monotonic() - self._catalog_sent_at >= self._catalog_every
        if self._drain_subscriptions() or due:
            self._send_catalog()
        self._send(TOPIC_FRAME, encode_frame(frame))

    def reload_keys(self) -> None:
        """Read the authorised subscribers' keys again (SIGHUP); nothing without CURVE."""
        if self.guard is not None:
            self.guard.reload()

    def close(self) -> None:
        """Close the socket and stop the ZAP handler."""
        self._socket.close(linger=0)
        if self.guard is not None:
            self.guard.close()


RECONNECT_CAP_MS = 250


def _subscriber_socket(context: Any, endpoint: str, hwm: int, keys: curve.ClientKeys | None = None) -> Any:
    socket = context.socket(zmq.SUB)
    socket.setsockopt(zmq.RCVHWM, hwm)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.RECONNECT_IVL, 100)
    socket.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_CAP_MS)
    socket.setsockopt(zmq.SUBSCRIBE, b"")
    try:
        if keys is not None:
            keys.apply(socket)
        socket.connect(endpoint)
    except ValueError as exc:
        socket.close()
        raise BusError(str(exc)) from exc
    except zmq.ZMQError as exc:
        socket.close()
        raise BusError(f"cannot connect to {endpoint}: {exc.strerror}") from exc
    return socket


class ZmqSubscriber:
    """A blocking subscriber for command-line tools and threads."""

    def __init__(
        self, endpoint: str = DEFAULT_ENDPOINT, *, hwm: int = 10000, keys: curve.ClientKeys | None = None
    ) -> None:
        self.endpoint = endpoint
        self.tracker = Tracker()
        self._socket: zmq.Socket[bytes] = _subscriber_socket(zmq.Context.instance(), endpoint, hwm, keys)

    def poll(self, timeout_s: float) -> list[Delivery]:
        """Wait up to ``timeout_s`` for messages; return the frames they made readable."""
        out: list[Delivery] = []
        deadline = time.monotonic() + timeout_s
        while not out:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._socket.poll(int(remaining * 1000) + 1):
                return out
            while True:
                try:
                    parts = self._socket.recv_multipart(flags=zmq.NOBLOCK)
                except zmq.Again:
                    break
                out.extend(self.tracker.feed(parts[-1]))
        return out

    def close(self) -> None:
        """Close the socket."""
        self._socket.close(linger=0)


class AsyncSubscriber:
    """An asyncio subscriber for the services."""

    def __init__(
        self, endpoint: str = DEFAULT_ENDPOINT, *, hwm: int = 10000, keys: curve.ClientKeys | None = None
    ) -> None:
        self.endpoint = endpoint
        self.tracker = Tracker()
        self._socket: zmq.asyncio.Socket = _subscriber_socket(zmq.asyncio.Context.instance(), endpoint, hwm, keys)

    async def deliveries(self) -> AsyncIterator[Delivery]:
        """Yield readable frames forever (until the socket is closed)."""
        while True:
            parts = await self._socket.recv_multipart()
            for delivery in self.tracker.feed(parts[-1]):
                yield delivery

    async def messages(self) -> AsyncIterator[tuple[bytes, list[Delivery]]]:
        """Yield every raw payload with the frames it made readable (for services that store payloads)."""
        while True:
            parts = await self._socket.recv_multipart()
            yield parts[-1], self.tracker.feed(parts[-1])

    def close(self) -> None:
        """Close the socket."""
        self._socket.close(linger=0)


class MemorySubscription:
    """One in-process subscription: a tracker and the frames it delivered."""

    def __init__(self) -> None:
        self.tracker = Tracker()
        self.deliveries: list[Delivery] = []

    def feed(self, payload: bytes) -> None:
        """Hand one payload to the tracker and keep what it delivers."""
        self.deliveries.extend(self.tracker.feed(payload))


class MemoryBus:
    """An in-process publisher for unit tests: it feeds its subscriptions directly."""

    def __init__(self) -> None:
        self.subscriptions: list[MemorySubscription] = []
        self.messages: list[bytes] = []
        self._catalog: bytes | None = None

    def attach(self) -> MemorySubscription:
        """A new subscription; like XPUB, it receives the current catalog at once."""
        subscription = MemorySubscription()
        self.subscriptions.append(subscription)
        if self._catalog is not None:
            subscription.feed(self._catalog)
        return subscription

    def publish_catalog(self, catalog: Catalog) -> None:
        """Send the catalog to every subscription."""
        self._catalog = encode_catalog(catalog)
        self._broadcast(self._catalog)

    def publish_frame(self, frame: Frame) -> None:
        """Send the frame to every subscription."""
        self._broadcast(encode_frame(frame))

    def _broadcast(self, payload: bytes) -> None:
        self.messages.append(payload)
        for subscription in self.subscriptions:
            subscription.feed(payload)

    def close(self) -> None:
        """Nothing to release."""
