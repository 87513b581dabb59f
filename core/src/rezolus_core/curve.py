"""CURVE on the bus: key files, the agent's gatekeeper, and the subscriber's keys.

Keys are ZeroMQ certificates as ``zmq.auth.create_certificates`` writes
them (``NAME.key`` holds the public key, ``NAME.key_secret`` the pair); the
cryptography is libzmq's (libsodium), the ZAP protocol pyzmq's
``ThreadAuthenticator``.

Invariants:
- An agent with CURVE accepts a subscriber only if its public key is one of
  the ``*.key`` files in the authorised-keys directory as last (re)loaded;
  ``ServerGuard.reload`` (SIGHUP) replaces the whole set, so a removed key is
  refused from then on (already-established sessions keep running until they
  reconnect).
- Every refusal is logged once per peer: a wrong key once per (address,
  key), a peer without CURVE (plaintext, or no key) once per address.  A
  handshake failure carries no peer address in ZeroMQ's monitor events; it
  is attributed to the next connection closed without a handshake.
- Key files are checked when the configuration is read: a missing or
  malformed file is one ``ValueError`` line (a configuration error).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils.monitor import recv_monitor_message

from rezolus_core import log

_REFUSED = zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_AUTH
_WATCHED = _REFUSED | zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED


def read_pair(path: str | Path) -> tuple[bytes, bytes]:
    """The (public, secret) keys of a ``.key_secret`` file (ValueError with the reason)."""
    public, secret = _read(path)
    if secret is None:
        raise ValueError(f"{path}: no secret key (give the NAME.key_secret file)")
    return public, secret


def read_public(path: str | Path) -> bytes:
    """The public key of a ``.key`` (or ``.key_secret``) file (ValueError with the reason)."""
    return _read(path)[0]


def _read(path: str | Path) -> tuple[bytes, bytes | None]:
    try:
        return zmq.auth.load_certificate(path)
    except (OSError, ValueError, IndexError) as exc:
        raise ValueError(f"{path}: not a ZeroMQ certificate ({exc})") from None


def read_authorized(directory: str | Path) -> set[bytes]:
    """The public keys of every ``*.key`` file in ``directory`` (ValueError with the reason)."""
    where = Path(directory)
    if not where.is_dir():
        raise ValueError(f"{directory}: not a directory of public keys")
    return {read_public(path) for path in sorted(where.glob("*.key"))}


def check_pair(path: str) -> str | None:
    """Option check: a readable key pair."""
    try:
        read_pair(path)
    except ValueError as exc:
        return str(exc)
    return None


def check_public(path: str) -> str | None:
    """Option check: a readable public key."""
    try:
        read_public(path)
    except ValueError as exc:
        return str(exc)
    return None


def check_directory(path: str) -> str | None:
    """Option check: a directory of public keys."""
    try:
        read_authorized(path)
    except ValueError as exc:
        return str(exc)
    return None


@dataclass(frozen=True)
class ServerKeys:
    """The agent's CURVE settings: its own key pair and the authorised subscribers' public keys."""

    secret_key: Path
    authorized_keys: Path


@dataclass(frozen=True)
class ClientKeys:
    """A subscriber's CURVE settings: the agent's public key and its own key pair."""

    server_key: Path
    own_key: Path

    def apply(self, sock: Any) -> None:
        """Make ``sock`` a CURVE client (before it connects)."""
        public, secret = read_pair(self.own_key)
        sock.curve_publickey = public
        sock.curve_secretkey = secret
        sock.curve_serverkey = read_public(self.server_key)


def is_loopback(endpoint: str) -> bool:
    """True when a bind endpoint is reachable only from this host (ipc, inproc, loopback tcp)."""
    if not endpoint.startswith("tcp://"):
        return True
    host = endpoint[len("tcp://"):].rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Authenticator(ThreadAuthenticator):
    """pyzmq's ZAP handler, remembering the peer address of the request being decided."""

    def __init__(self, context: zmq.Context[Any], guard: ServerGuard) -> None:
        super().__init__(context)
        self.guard = guard
        self.peer = ""

    async def handle_zap_message(self, msg: list[bytes]) -> None:
        """Note the peer address, then let pyzmq decide (it calls the guard's callback)."""
        self.peer = msg[3].decode("utf-8", "replace") if len(msg) > 3 else ""
        await super().handle_zap_message(msg)


class ServerGuard:
    """The agent's side: a ZAP handler with a reloadable key set and a refusal log."""

    def __init__(self, context: zmq.Context[Any], keys: ServerKeys) -> None:
        self.keys = keys
        self.refused: set[tuple[str, str]] = set()
        self._log = log.get().bind(**structlog.contextvars.get_contextvars())  # the ZAP and monitor threads
        self._allowed = read_authorized(keys.authorized_keys)
        self._auth = _Authenticator(context, self)
        self._auth.start()
        self._auth.configure_curve_callback("*", credentials_provider=self)
        self._monitor: threading.Thread | None = None
        self._stop = threading.Event()

    def callback(self, domain: str, key: bytes) -> bool:  # noqa: ARG002 - one domain
        """Answer the credentials hook of pyzmq: is this z85 public key authorised."""
        if key in self._allowed:
            return True
        self.refuse(self._auth.peer, f"unknown key {key.decode()}")
        return False

    def refuse(self, peer: str, why: str) -> None:
        """Log a refusal, once per (peer, reason)."""
        if (peer, why) not in self.refused:
            self.refused.add((peer, why))
            self._log.warning("subscriber refused", peer=peer, reason=why)

    def reload(self) -> None:
        """Read the authorised keys again (SIGHUP); keep the old set if the directory is unreadable."""
        try:
            allowed = read_authorized(self.keys.authorized_keys)
        except ValueError as exc:
            self._log.error("keys not reloaded", reason=str(exc))
            return
        removed = len(self._allowed - allowed)
        self._allowed = allowed
        self.refused.clear()
        self._log.info("keys reloaded", authorized=len(allowed), removed=removed)

    def secure(self, sock: zmq.Socket[bytes]) -> None:
        """Make ``sock`` a CURVE server (before it binds) and watch its handshakes."""
        public, secret = read_pair(self.keys.secret_key)
        sock.curve_secretkey = secret
        sock.curve_publickey = public
        sock.curve_server = True
        monitor = sock.get_monitor_socket(_WATCHED)
        self._monitor = threading.Thread(target=self._watch, args=(monitor,), daemon=True, name="curve-monitor")
        self._monitor.start()

    def _watch(self, monitor: zmq.Socket[bytes]) -> None:
        peers: dict[int, str] = {}
        failed = 0
        try:
            while not self._stop.is_set():
                if not monitor.poll(200):
                    continue
                event = recv_monitor_message(monitor)
                kind, value = event["event"], event["value"]
                if kind == zmq.EVENT_ACCEPTED:
                    peers[value] = _peer_of(value)
                elif kind & _REFUSED:
                    failed += kind != zmq.EVENT_HANDSHAKE_FAILED_AUTH  # ZAP refusals are logged with their key
                elif kind == zmq.EVENT_DISCONNECTED:
                    peer = peers.pop(value, "")
                    if failed:
                        failed -= 1
                        self.refuse(peer, "no CURVE handshake (plaintext or no key)")
        finally:
            monitor.close(linger=0)

    def close(self) -> None:
        """Stop the ZAP handler and the monitor."""
        self._stop.set()
        if self._monitor is not None:
            self._monitor.join(2)
        self._auth.stop()


def _peer_of(fd: int) -> str:
    try:
        with socket.socket(fileno=socket.dup(fd)) as sock:
            host, *_ = sock.getpeername()
            return str(host)
    except OSError:
        return "unknown"


def generate(directory: str | Path, name: str) -> tuple[Path, Path]:
    """Write ``NAME.key`` and ``NAME.key_secret`` into ``directory`` (created if missing)."""
    where = Path(directory)
    where.mkdir(parents=True, exist_ok=True)
    public, secret = zmq.auth.create_certificates(where, name)
    Path(secret).chmod(0o600)
    return Path(public), Path(secret)
