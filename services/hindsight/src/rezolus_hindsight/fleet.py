"""``rezolus snapshot``: one absolute window from many hindsights at once.

``rezolus snapshot --hosts FILE|HOST... --last 5m --output DIR`` fixes the
window once (``end`` = now on this machine, ``start`` = end - last, or the
given ``--start``/``--end``), then downloads ``GET /snapshot?start=..&end=..``
(integer nanoseconds) from every host in parallel into ``DIR/HOST_PORT.parquet``
and prints one row per host: rows, bytes, or the error.

Invariants:
- Every host gets the same absolute window, so the files line up in time.
- At most ``--parallel`` downloads run at once; each has its own timeout.
- One host failing never stops the others; exit 1 when any failed, 0 when
  all succeeded, 2 for bad usage.  A failed host leaves no file behind.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rezolus_core.config import EXIT_CONFIG, parse_duration
from rezolus_core.http_error import http_error
from rezolus_core.lifecycle import EXIT_FAILURE, EXIT_OK, fail
from rezolus_hindsight import request

PROG = "rezolus snapshot"
DEFAULT_PORT = 4243
_CHUNK = 1 << 20
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")

TOKEN_ENV = "REZOLUS_HINDSIGHT_TOKEN"  # noqa: S105 - the name of a variable, not a secret


@dataclass(frozen=True)
class Outcome:
    """What one host returned."""

    host: str
    path: Path | None = None
    rows: int = 0
    size: int = 0
    error: str = ""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Snapshot the same window from many hindsights.")
    parser.add_argument("--hosts", nargs="+", required=True, metavar="FILE|HOST",
                        help=f"hindsights (HOST, HOST:PORT or http://HOST:PORT; port {DEFAULT_PORT} by default), "
                        "or a file of them, one per line")
    parser.add_argument("--last", help="the window: this long up to now, like 5m")
    parser.add_argument("--start", help="window start: RFC 3339 or integer ns")
    parser.add_argument("--end", help="window end: RFC 3339 or integer ns (default: now)")
    parser.add_argument("--output", required=True, metavar="DIR", help="where the files go (created if missing)")
    parser.add_argument("--token-file", help=f"file with the bearer token (or {TOKEN_ENV})")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per host (default 60)")
    parser.add_argument("--parallel", type=int, default=8, help="downloads at once (default 8)")
    parser.add_argument("--json", action="store_true", help="one JSON object per host instead of a table")
    return parser


def read_hosts(words: list[str]) -> list[str]:
    """Hosts from the command line; a word naming a file contributes its lines (# comments, blank lines skipped)."""
    hosts: list[str] = []
    for word in words:
        path = Path(word)
        if path.is_file():
            lines = path.read_text(encoding="utf-8").splitlines()
            hosts.extend(line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip())
        else:
            hosts.append(word)
    return hosts


def base_url(host: str) -> str:
    """``http://HOST:PORT`` for a host as written (ValueError when it is not one)."""
    url = host if host.startswith(("http://", "https://")) else f"http://{host}"
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise ValueError(f"{host!r} is not HOST, HOST:PORT or http://HOST:PORT")
    port = parts.port or DEFAULT_PORT
    shown = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{shown}:{port}"


def file_name(url: str) -> str:
    """``HOST_PORT.parquet`` for a base URL."""
    return _UNSAFE.sub("_", url.split("://", 1)[1]) + ".parquet"


def window(args: argparse.Namespace, now_ns: int) -> tuple[int, int]:
    """The absolute window in ns (ValueError or RequestError with the reason)."""
    if args.last is not None and args.start is not None:
        raise ValueError("give --last or --start, not both")
    end = request.parse_time("end", args.end) if args.end is not None else now_ns
    if args.last is not None:
        return max(0, end - parse_duration(args.last)), end
    if args.start is None:
        raise ValueError("give --last or --start")
    start = request.parse_time("start", args.start)
    if start >= end:
        raise ValueError("--start must be before --end")
    return start, end


def fetch(url: str, span: tuple[int, int], target: Path, token: str | None, timeout: float) -> Outcome:
    """Download one host's snapshot of ``span`` into ``target`` (atomically); never raises."""
    query = urllib.parse.urlencode({"start": str(span[0]), "end": str(span[1])})
    req = urllib.request.Request(f"{url}/snapshot?{query}", method="GET")  # noqa: S310 - scheme checked by base_url
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    temp = target.with_name(f".{target.name}.part")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as reply, temp.open("wb") as handle:  # noqa: S310
            while chunk := reply.read(_CHUNK):
                handle.write(chunk)
            rows = int(reply.headers.get("X-Rows") or 0)
        temp.replace(target)
        return Outcome(url, target, rows, target.stat().st_size)
    except urllib.error.HTTPError as exc:
        return Outcome(url, error=http_error(exc))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return Outcome(url, error=f"cannot reach: {getattr(exc, 'reason', exc)}")
    finally:
        temp.unlink(missing_ok=True)


def read_token(path: str | None) -> str | None:
    """The bearer token from ``path``, else from the environment."""
    if path is None:
        return os.environ.get(TOKEN_ENV) or None
    return Path(path).read_text(encoding="utf-8").strip() or None



def table(outcomes: list[Outcome]) -> str:
    """One line per host: host, rows, bytes, file or error."""
    width = max(len("host"), *(len(o.host) for o in outcomes))
    lines = [f"{'host':<{width}}  {'rows':>8}  {'bytes':>12}  file or error"]
    for o in outcomes:
        if o.error:
            lines.append(f"{o.host:<{width}}  {'-':>8}  {'-':>12}  error: {o.error}")
        else:
            lines.append(f"{o.host:<{width}}  {o.rows:>8}  {o.size:>12}  {o.path}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rezolus snapshot``."""
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        urls = list(dict.fromkeys(base_url(h) for h in read_hosts(args.hosts)))
        span = window(args, time.time_ns())
        token = read_token(args.token_file)
    except (ValueError, OSError, request.RequestError) as exc:
        return fail(PROG, str(exc), EXIT_CONFIG)
    if not urls:
        return fail(PROG, "--hosts: no hosts given", EXIT_CONFIG)
    if args.parallel < 1 or args.timeout <= 0:
        return fail(PROG, "--parallel must be at least 1 and --timeout positive", EXIT_CONFIG)
    output = Path(args.output)
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return fail(PROG, f"cannot create {output}: {exc.strerror}", EXIT_FAILURE)
    with ThreadPoolExecutor(max_workers=min(args.parallel, len(urls))) as pool:
        outcomes = list(pool.map(
            lambda url: fetch(url, span, output / file_name(url), token, args.timeout), urls))
    if args.json:
        for o in outcomes:
            record = {"host": o.host, "start_ns": span[0], "end_ns": span[1], "path": str(o.path) if o.path else None,
                      "rows": o.rows, "bytes": o.size, "error": o.error or None}
            sys.stdout.write(json.dumps(record) + "\n")
    else:
        start, end = (request.format_ns(t) for t in span)
        sys.stdout.write(f"window {start} .. {end}\n{table(outcomes)}\n")
    return EXIT_FAILURE if any(o.error for o in outcomes) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
