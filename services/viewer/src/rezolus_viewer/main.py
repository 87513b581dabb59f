"""``rezolus-viewer`` / ``rezolus view``: look at a recording or a hindsight snapshot in the browser.

Invariants:
- ``SOURCE`` is a parquet file, or an ``http(s)://`` URL (hindsight's
  ``GET /snapshot``, with its query such as ``?last=5m``; a bare base URL
  gets ``/snapshot`` appended) that is downloaded to a temporary file first,
  with ``Authorization: Bearer`` from ``--token-file`` or
  ``$REZOLUS_HINDSIGHT_TOKEN`` when given; the temporary file is removed
  when the viewer stops.
- Settings come from ``--config FILE`` (keys ``listen``, ``open``,
  ``token_file``, ``log_level``) with flags on top.
- Usage problems (bad ``--listen``, missing or unreadable file) print one
  line and exit 2; a failed download or a port that cannot be bound print
  one line and exit 1.  No stack traces.
- Once listening, one line ``serving http://HOST:PORT/`` goes to stdout (the
  real port when ``--listen`` asked for port 0); ``--open`` also opens it in
  the default browser.
"""

from __future__ import annotations

import contextlib
import sys
import webbrowser
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from rezolus_core import log, web
from rezolus_core.address import ListenAddress, parse_listen
from rezolus_core.config import ConfigError
from rezolus_core.lifecycle import EXIT_FAILURE, fail, guard_config, run_service
from rezolus_core.shell import Option, Spec
from rezolus_viewer import dashboard
from rezolus_viewer.api import make_app
from rezolus_viewer.fetch import TOKEN_ENV, DownloadError, download, is_url, snapshot_url, token
from rezolus_viewer.hosts import HostFiles
from rezolus_viewer.recording import Recording, RecordingError

if TYPE_CHECKING:
    import argparse
    import asyncio
    from collections.abc import Callable

PROG = "rezolus-viewer"


SPEC = Spec(
    prog=PROG,
    description="Serve charts of a Rezolus recording in the browser.",
    options=(
        Option("listen", "listen", parse_listen("127.0.0.1:8080"),
               "address to serve on (port 0 picks a free port)", key="listen", flag="--listen",
               metavar="HOST:PORT"),
        Option("open", "boolean", default=False, help="open the page in the default browser", key="open",
               flag="--open"),
        Option("token_file", "string", None, f"bearer token for a hindsight snapshot URL (default: ${TOKEN_ENV})",
               key="token_file", flag="--token-file", metavar="PATH"),
        Option("log_level", "level", "info", "debug, info, warning or error", key="log_level",
               flag="--log-level", metavar="LEVEL"),
    ),
)


def _parser() -> argparse.ArgumentParser:
    parser = SPEC.parser()
    parser.add_argument("source", metavar="FILE.parquet|URL",
                        help="a recording, or a hindsight snapshot URL (http://HOST:PORT/snapshot)")
    return parser


class Viewer:
    """The viewer as a service: serve the app until stopped."""

    name = PROG

    def __init__(self, recording: Recording, listen: ListenAddress, open_browser: bool,
                 cleanup: Callable[[], None] | None = None, hosts: HostFiles | None = None) -> None:
        self.recording = recording
        self.hosts = hosts
        self.listen = listen
        self.open_browser = open_browser
        self.url = ""
        self._cleanup = cleanup
        self._served: web.Served | None = None

    async def startup(self) -> None:
        """Plan the page and bind the listening socket."""
        app = make_app(self.recording, dashboard.plan(self.recording.columns.values()), hosts=self.hosts)
        self._served = await web.start(app, self.listen)
        self.url = self._served.url
        print(f"serving {self.url}", flush=True)  # noqa: T201 - the one line operators and tests read
        if self.open_browser:
            webbrowser.open(self.url)

    async def run(self, stopping: asyncio.Event) -> None:
        """Serve until asked to stop."""
        await stopping.wait()

    async def shutdown(self) -> None:
        """Close the server and remove a downloaded snapshot."""
        if self._served is not None:
            await self._served.close()
        if self._cleanup is not None:
            self._cleanup()


def _build(argv: list[str] | None) -> int:
    args = _parser().parse_args(SPEC.normalize(sys.argv[1:] if argv is None else argv))
    settings = SPEC.load(args.config, SPEC.flags(args))
    settings.finish()
    log.configure(PROG, settings["log_level"])
    token_file: str | None = settings["token_file"]
    source: str = args.source
    cleanup: Callable[[], None] | None = None
    if is_url(source):
        try:
            bearer = token(token_file)
        except ConfigError as exc:
            raise settings.error("token_file", exc.problem) from None
        url = snapshot_url(source)
        try:
            path = download(url, bearer)
        except DownloadError as exc:
            return fail(PROG, f"cannot download {url}: {exc}", EXIT_FAILURE)
        cleanup = path.unlink
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError("command line", "FILE", f"{path} is not a file")
    try:
        hosts = HostFiles(path)
        recording = Recording(hosts.file(hosts.names[0]) if hosts.many else path)
    except (RecordingError, OSError, pa.ArrowException) as exc:  # the per-host copy may fail too
        if cleanup is not None:
            with contextlib.suppress(OSError):
                cleanup()
        raise ConfigError("command line", "FILE", str(exc)) from None
    return run_service(Viewer(recording, settings["listen"], settings["open"], cleanup, hosts))


def main(argv: list[str] | None = None) -> int:
    """Run the viewer command line."""
    return guard_config(PROG, lambda: _build(argv))


if __name__ == "__main__":
    sys.exit(main())
