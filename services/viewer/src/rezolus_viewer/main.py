"""``rezolus-viewer`` / ``rezolus view``: look at a recording, two recordings, or a live agent in the browser.

Invariants:
- Three modes: ``view SOURCE`` (one recording, as always), ``view BASE
  TARGET`` (both overlaid on time since each start, with the ranking of
  ``rezolus compare``), ``view --source tcp://HOST:PORT`` (an agent, live,
  the last ``--window``; CURVE options as the other subscribers).
- ``SOURCE`` is a parquet file, or an ``http(s)://`` URL (hindsight's
  ``GET /snapshot``, with its query such as ``?last=5m``; a bare base URL
  gets ``/snapshot`` appended) that is downloaded to a temporary file first,
  with ``Authorization: Bearer`` from ``--token-file`` or
  ``$REZOLUS_HINDSIGHT_TOKEN`` when given; the temporary file is removed
  when the viewer stops.
- Settings come from ``--config FILE`` (keys ``listen``, ``open``,
  ``token_file``, ``log_level``, ``source``, ``window``, ``bus.curve_*``)
  with flags on top.
- Usage problems (bad ``--listen``, missing or unreadable file; for two
  files also different layout versions, no series in common) print one
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

from rezolus_core import log
from rezolus_core.address import ListenAddress, parse_listen
from rezolus_core.bus_options import CLIENT_OPTIONS, client_keys
from rezolus_core.config import ConfigError
from rezolus_core.lifecycle import EXIT_FAILURE, fail, guard_config, run_service
from rezolus_core.shell import COMMAND_LINE, Option, Spec
from rezolus_viewer.fetch import TOKEN_ENV, DownloadError, download, is_url, snapshot_url, token

if TYPE_CHECKING:
    import argparse
    import asyncio
    from collections.abc import Callable

    from aiohttp import web as aioweb

    from rezolus_core import web
    from rezolus_core.shell import Loaded
    from rezolus_viewer.hosts import HostFiles
    from rezolus_viewer.recording import Recording

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
        Option("source", "source", None, "an agent's bus to view live (tcp://HOST:PORT) instead of a file",
               key="source", flag="--source", metavar="ENDPOINT"),
        Option("window", "duration", 15 * 60 * 1_000_000_000, "live: how much history to keep and show",
               key="window", flag="--window", minimum=1_000_000_000),
        *CLIENT_OPTIONS,
    ),
)


def _parser() -> argparse.ArgumentParser:
    parser = SPEC.parser()
    parser.add_argument("files", nargs="*", metavar="FILE.parquet|URL",
                        help="a recording or a hindsight snapshot URL (http://HOST:PORT/snapshot); "
                        "two of them (BASE TARGET) to compare")
    return parser


class Viewer:
    """The viewer as a service: serve the app until stopped."""

    name = PROG

    def __init__(self, app: Callable[[], aioweb.Application], listen: ListenAddress, open_browser: bool,
                 cleanup: Callable[[], None] | None = None) -> None:
        self.app = app
        self.listen = listen
        self.open_browser = open_browser
        self.url = ""
        self._cleanup = cleanup
        self._served: web.Served | None = None

    async def startup(self) -> None:
        """Plan the page and bind the listening socket."""
        from rezolus_core import web  # noqa: PLC0415 - aiohttp loads once the arguments are known good

        self._served = await web.start(self.app(), self.listen)
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


def _open(
    source: str, settings: Loaded, what: str, cleanups: list[Callable[[], None]],
    hosts: list[HostFiles] | None = None,
) -> Recording:
    """Open a file or download a snapshot URL (its removal is added to ``cleanups``).

    A file of several hosts opens on its first host, its ``HostFiles`` appended
    to ``hosts``; without ``hosts`` (a comparison) it is a usage error.
    """
    if is_url(source):
        try:
            bearer = token(settings["token_file"])
        except ConfigError as exc:
            raise settings.error("token_file", exc.problem) from None
        url = snapshot_url(source)
        try:
            path = download(url, bearer)
        except DownloadError as exc:
            raise _DownloadFailedError(f"cannot download {url}: {exc}") from None
        cleanups.append(path.unlink)
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(COMMAND_LINE, what, f"{path} is not a file")
    # pyarrow loads only once there is a file to open: bad arguments are answered without it.
    import pyarrow as pa  # noqa: PLC0415

    from rezolus_viewer.hosts import HostFiles  # noqa: PLC0415
    from rezolus_viewer.recording import Recording, RecordingError  # noqa: PLC0415

    try:
        files = HostFiles(path)
        if not files.many:
            return Recording(path)
        if hosts is None:
            raise ConfigError(COMMAND_LINE, what, f"{path} holds {len(files.names)} hosts; compare files of one host")
        cleanups.append(files.close)
        hosts.append(files)
        return Recording(files.file(files.names[0]))
    except (RecordingError, OSError, pa.ArrowException) as exc:  # the per-host copy may fail too
        raise ConfigError(COMMAND_LINE, what, str(exc)) from None


class _DownloadFailedError(RuntimeError):
    """A failed download: exit 1, not a usage error."""


def _cleanup(cleanups: list[Callable[[], None]]) -> Callable[[], None]:
    def run() -> None:
        for step in cleanups:
            with contextlib.suppress(OSError):
                step()

    return run


def _files(files: list[str], settings: Loaded) -> tuple[Callable[[], aioweb.Application], Callable[[], None]]:
    """The app factory for one or two files, and what removes downloaded snapshots."""
    cleanups: list[Callable[[], None]] = []
    hosts: list[HostFiles] = []
    try:
        if len(files) == 1:
            rec = _open(files[0], settings, "FILE", cleanups, hosts)
        else:
            from rezolus_viewer import compare_cli  # noqa: PLC0415 - only a comparison needs it

            base = _open(files[0], settings, "BASE", cleanups)
            target = _open(files[1], settings, "TARGET", cleanups)
            compare_cli.check_pair(base, target)
    except BaseException:
        _cleanup(cleanups)()
        raise
    # The page and aiohttp load only once the files are known good: bad input is answered without them.
    from rezolus_viewer import dashboard  # noqa: PLC0415
    from rezolus_viewer.api import make_app  # noqa: PLC0415
    from rezolus_viewer.hosts import HostViews  # noqa: PLC0415
    from rezolus_viewer.views import Fixed  # noqa: PLC0415

    if len(files) == 1:
        plan = dashboard.plan(rec.columns.values())
        if hosts:
            several = HostViews(hosts[0], rec, plan)
            return (lambda: make_app(rec, plan, views=several)), _cleanup(cleanups)
        return (lambda: make_app(rec, plan)), _cleanup(cleanups)
    common = [c for name, c in base.columns.items() if target.columns.get(name, c).type == c.type
              and name in target.columns]
    dash = dashboard.plan(common)
    names = {"base": Path(files[0]).name, "target": Path(files[1]).name}

    def app() -> aioweb.Application:
        from rezolus_viewer import compare_api  # noqa: PLC0415 - only a comparison serves the ranking

        views = Fixed({"base": base, "target": target}, dash, names, mode="compare")
        built = make_app(base, dash, views=views)
        compare_api.add_routes(built, base, target, dash)
        return built

    return app, _cleanup(cleanups)


def _build(argv: list[str] | None) -> int:
    args = _parser().parse_intermixed_args(SPEC.normalize(sys.argv[1:] if argv is None else argv))
    settings = SPEC.load(args.config, SPEC.flags(args))
    settings.finish()
    log.configure(PROG, settings["log_level"])
    files: list[str] = args.files
    source: str | None = settings["source"]
    if source is not None and files:
        raise ConfigError(COMMAND_LINE, "--source", "view either an agent (--source) or files, not both")
    if source is None and not 1 <= len(files) <= 2:
        raise ConfigError(COMMAND_LINE, "FILE", f"expected one file, two (BASE TARGET) or --source, got {len(files)}")
    if source is not None:
        from rezolus_viewer import live  # noqa: PLC0415 - zmq is only needed live

        keys = client_keys(settings)
        return run_service(Viewer(live.app_factory(source, settings["window"], keys), settings["listen"],
                                  settings["open"]))
    try:
        app, cleanup = _files(files, settings)
    except _DownloadFailedError as exc:
        return fail(PROG, str(exc), EXIT_FAILURE)
    return run_service(Viewer(app, settings["listen"], settings["open"], cleanup))


def main(argv: list[str] | None = None) -> int:
    """Run the viewer command line."""
    return guard_config(PROG, lambda: _build(argv))


if __name__ == "__main__":
    sys.exit(main())
