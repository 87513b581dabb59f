"""``rezolus-viewer`` / ``rezolus view``: look at a recording or a hindsight snapshot in the browser.

Invariants:
- ``SOURCE`` is a parquet file, or an ``http(s)://`` URL (hindsight's
  ``GET /snapshot``, with its query such as ``?last=5m``; a bare base URL
  gets ``/snapshot`` appended) that is downloaded to a temporary file first,
  with ``Authorization: Bearer`` from ``--token-file`` or
  ``$REZOLUS_HINDSIGHT_TOKEN`` when given; the temporary file is removed
  when the viewer stops.
- Usage problems (bad ``--listen``, missing or unreadable file) print one
  line and exit 2; a failed download or a port that cannot be bound print
  one line and exit 1.  No stack traces.
- Once listening, one line ``serving http://HOST:PORT/`` goes to stdout (the
  real port when ``--listen`` asked for port 0); ``--open`` also opens it in
  the default browser.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import webbrowser
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from rezolus_core import log
from rezolus_core.config import ConfigError
from rezolus_core.lifecycle import EXIT_FAILURE, StartupError, fail, guard_config, run_service
from rezolus_viewer import dashboard
from rezolus_viewer.api import make_app
from rezolus_viewer.fetch import TOKEN_ENV, DownloadError, download, is_url, snapshot_url, token
from rezolus_viewer.recording import Recording, RecordingError

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable

PROG = "rezolus-viewer"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Serve charts of a Rezolus recording in the browser.")
    parser.add_argument("source", metavar="FILE.parquet|URL",
                        help="a recording, or a hindsight snapshot URL (http://HOST:PORT/snapshot)")
    parser.add_argument("--listen", default="127.0.0.1:8080", metavar="HOST:PORT",
                        help="address to serve on (default 127.0.0.1:8080; port 0 picks a free port)")
    parser.add_argument("--open", action="store_true", help="open the page in the default browser")
    parser.add_argument("--token-file", metavar="PATH",
                        help=f"bearer token for a hindsight snapshot URL (default: ${TOKEN_ENV})")
    parser.add_argument("--log-level", default="info", choices=log.LEVELS)
    return parser


def parse_listen(text: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (IPv6 hosts in brackets) or raise ConfigError."""
    host, sep, port_text = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError("command line", "--listen", f"expected HOST:PORT, got {text!r}")
    return host, int(port_text)


class Viewer:
    """The viewer as a service: serve the app until stopped."""

    name = PROG

    def __init__(self, recording: Recording, host: str, port: int, open_browser: bool,
                 cleanup: Callable[[], None] | None = None) -> None:
        self.recording = recording
        self.host, self.port = host, port
        self.open_browser = open_browser
        self.url = ""
        self._cleanup = cleanup
        self._runner: web.AppRunner | None = None

    async def startup(self) -> None:
        """Plan the page and bind the listening socket."""
        app = make_app(self.recording, dashboard.plan(self.recording.columns.values()))
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            raise StartupError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from None
        server = site._server  # noqa: SLF001 - aiohttp exposes the bound port only here
        sockets = getattr(server, "sockets", None) or []
        port = sockets[0].getsockname()[1] if sockets else self.port
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{shown}:{port}/"
        print(f"serving {self.url}", flush=True)  # noqa: T201 - the one line operators and tests read
        if self.open_browser:
            webbrowser.open(self.url)

    async def run(self, stopping: asyncio.Event) -> None:
        """Serve until asked to stop."""
        await stopping.wait()

    async def shutdown(self) -> None:
        """Close the server and remove a downloaded snapshot."""
        if self._runner is not None:
            await self._runner.cleanup()
        if self._cleanup is not None:
            self._cleanup()


def _build(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    log.configure(PROG, args.log_level)
    host, port = parse_listen(args.listen)
    source: str = args.source
    cleanup: Callable[[], None] | None = None
    if is_url(source):
        url = snapshot_url(source)
        try:
            path = download(url, token(args.token_file))
        except DownloadError as exc:
            return fail(PROG, f"cannot download {url}: {exc}", EXIT_FAILURE)
        cleanup = path.unlink
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError("command line", "FILE", f"{path} is not a file")
    try:
        recording = Recording(path)
    except RecordingError as exc:
        if cleanup is not None:
            with contextlib.suppress(OSError):
                cleanup()
        raise ConfigError("command line", "FILE", str(exc)) from None
    return run_service(Viewer(recording, host, port, args.open, cleanup))


def main(argv: list[str] | None = None) -> int:
    """Run the viewer command line."""
    return guard_config(PROG, lambda: _build(argv))


if __name__ == "__main__":
    sys.exit(main())
