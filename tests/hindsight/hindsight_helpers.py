"""Helpers for hindsight tests: a threaded synthetic publisher and a hindsight subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, Any

import pytest
from hindsight_synth import SyntheticAgent

from rezolus_core.frame import Frame, encode_frame
from support.env import VENV_BIN, free_port, require, wait_for
from support.synth import bind_publisher

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

__all__ = ["Hindsight", "Publisher", "fill", "http", "poll", "require", "tmpfs"]


def http(
    method: str, url: str, data: bytes | None = None, headers: dict[str, str] | None = None, timeout: float = 60
) -> tuple[int, bytes, dict[str, str]]:
    """Send one request to a loopback test server; return the status, body and headers."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"tests only talk to loopback over http, not {url}")
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})  # noqa: S310 - loopback http, checked above
    try:
        with urllib.request.urlopen(req, timeout=timeout) as reply:  # noqa: S310 - loopback http, checked above
            return reply.status, reply.read(), dict(reply.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def poll(predicate, timeout: float, what: str, interval: float = 0.05):
    """Poll ``predicate`` until truthy or fail after ``timeout`` seconds."""
    return wait_for(predicate, timeout, interval=interval, what=what)


class Publisher:
    """A synthetic agent publishing on a free loopback port from its own thread."""

    def __init__(self, period_s: float = 0.02, padding: int = 0) -> None:
        self.endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.agent = SyntheticAgent(interval_ns=int(period_s * 1e9), padding=padding)
        self.period_s = period_s
        self.frames: list[Frame] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise AssertionError(f"publisher did not start: {self._error}")

    def _run(self) -> None:
        try:
            publisher = bind_publisher(self.endpoint, catalog_every_s=0.5)
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            publisher.publish_catalog(self.agent.cat)
            next_at = time.monotonic()
            while not self._stop.is_set():
                frame = self.agent.next_frame(time.time_ns(), time.monotonic_ns())  # clocks as an agent's
                publisher.publish_frame(frame)
                with self._lock:
                    self.frames.append(frame)
                next_at += self.period_s
                self._stop.wait(max(0.0, next_at - time.monotonic()))
        finally:
            publisher.close()

    def published(self) -> list[Frame]:
        """Frames published so far."""
        with self._lock:
            return list(self.frames)

    def payloads(self) -> dict[int, bytes]:
        """Encoded payload of every published frame, by timestamp."""
        return {f.timestamp_ns: encode_frame(f) for f in self.published()}

    def stop(self) -> None:
        """Stop publishing and close the socket."""
        self._stop.set()
        self._thread.join(10)


class Hindsight:
    """A rezolus-hindsight subprocess with its own directories and port."""

    def __init__(
        self,
        base: Path,
        source: str,
        *,
        interval: str = "100ms",
        duration: str = "1m",
        max_bytes: str = "16MiB",
        extra: str = "",
        listen_host: str = "127.0.0.1",
        token: str | None = None,
        output: Path | None = None,
        directory: Path | None = None,
        start: bool = True,
    ) -> None:
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        self.directory = directory or base / "buffer"
        self.output = output or base / "out"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token
        self.config = base / "hindsight.toml"
        lines = [
            f'source = "{source}"',
            f'interval = "{interval}"',
            f'duration = "{duration}"',
            f'max_bytes = "{max_bytes}"',
            f'directory = "{self.directory}"',
            f'output = "{self.output}"',
            f'listen = "{listen_host}:{self.port}"',
        ]
        if token is not None:
            lines.append(f'token = "{token}"')
        self.config.write_text("\n".join(lines) + "\n" + extra)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = base / "hindsight.log"
        if start:
            self.start()

    def start(self) -> None:
        """Start the process and wait until /status answers."""
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "rezolus-hindsight"), "--config", str(self.config)],
            stdout=self._log,
            stderr=self._log,
        )
        poll(self._answers, 20, "hindsight to answer /status")

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"hindsight exited {self.proc.returncode}: {self.log()}")
        try:
            self.status()
        except (urllib.error.URLError, ConnectionError):
            return False
        return True

    def log(self) -> str:
        """Everything the process logged."""
        return self.log_path.read_text(errors="replace")

    def status(self) -> dict[str, Any]:
        """GET /status."""
        code, body, _ = http("GET", f"{self.url}/status", timeout=10)
        assert code == 200, body
        return json.loads(body)  # type: ignore[no-any-return]

    def request(
        self, method: str, params: dict[str, str] | str = "", token: str | None = None
    ) -> tuple[int, bytes, dict[str, str]]:
        """Send a snapshot request; return status, body and headers."""
        query = params if isinstance(params, str) else urllib.parse.urlencode(params)
        url = f"{self.url}/snapshot"
        data = None
        if method == "GET":
            url = f"{url}?{query}" if query else url
        else:
            data = query.encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if method == "POST" else {}
        bearer = token if token is not None else self.token
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        return http(method, url, data, headers)

    def post(self, params: dict[str, str] | str = "", token: str | None = None) -> tuple[int, Any]:
        """POST /snapshot; return the status and the decoded JSON."""
        code, body, _ = self.request("POST", params, token)
        return code, json.loads(body)

    def wait_rows(self, rows: int, timeout: float = 20) -> dict[str, Any]:
        """Wait until the buffer retains at least ``rows`` rows."""
        return poll(lambda: (s := self.status())["rows"] >= rows and s, timeout, f"{rows} rows")  # type: ignore[no-any-return]

    def signal(self, signum: int) -> None:
        """Send a signal."""
        assert self.proc is not None
        self.proc.send_signal(signum)

    def kill(self) -> None:
        """Kill -9 and reap."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)
        self._log.close()

    def stop(self) -> int:
        """SIGTERM, wait, return the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode


def _can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


@contextlib.contextmanager
def tmpfs(path: Path, size: str, hindsights: list[Hindsight]) -> Iterator[Path]:
    """Mount a small tmpfs at ``path``; stop the hindsights using it before unmounting."""
    require(_can_mount(), "mounting a small tmpfs needs root")
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=False)
    require(mounted.returncode == 0, "cannot mount tmpfs here")
    try:
        yield path
    finally:
        for process in hindsights:
            if process.proc is not None and process.proc.poll() is None:
                process.stop()
        subprocess.run(["umount", str(path)], check=False)


def fill(filesystem: Path) -> Path:
    """Fill ``filesystem`` with one file until writing fails for lack of space."""
    filler = filesystem / "filler"
    with filler.open("wb", buffering=0) as handle, pytest.raises(OSError, match="No space"):  # noqa: PT012 - fill until full
        while True:
            handle.write(b"\0" * 1024)
    return filler
