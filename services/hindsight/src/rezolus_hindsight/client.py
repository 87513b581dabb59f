"""``rezolus hindsight snapshot``: ask a running hindsight for a snapshot.

Without ``--download`` it POSTs, so the file lands in hindsight's output
directory, and prints where; with ``--download FILE`` it GETs the parquet and
writes it to FILE (atomically).  Errors are one line on stderr, exit 1 (exit
2 for bad usage).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from rezolus_core.config import EXIT_CONFIG
from rezolus_core.http_error import http_error
from rezolus_core.lifecycle import EXIT_FAILURE, fail
from rezolus_hindsight.fleet import TOKEN_ENV, read_token

PROG = "rezolus hindsight snapshot"
DEFAULT_URL = "http://127.0.0.1:4243"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    parser.add_argument("--url", default=DEFAULT_URL, help=f"hindsight at (default {DEFAULT_URL})")
    parser.add_argument("--last", help="how far back from the newest frame, like 5m")
    parser.add_argument("--start", help="Unix seconds or RFC 3339")
    parser.add_argument("--end", help="Unix seconds or RFC 3339")
    parser.add_argument("--name", help="file name inside hindsight's output directory")
    parser.add_argument("--download", metavar="FILE", help="stream the parquet into FILE instead")
    parser.add_argument("--token-file", help=f"file with the bearer token (or {TOKEN_ENV})")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait")
    parser.add_argument("--json", action="store_true", help="print hindsight's JSON answer")
    return parser


def main(argv: list[str]) -> int:
    """Entry point of the snapshot client."""
    args = _parser().parse_args(argv)
    params = {k: getattr(args, k) for k in ("last", "start", "end", "name")}
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    try:
        token = read_token(args.token_file)
    except OSError as exc:
        return fail(PROG, f"cannot read {args.token_file}: {exc.strerror}", EXIT_CONFIG)
    if not args.url.startswith(("http://", "https://")):
        return fail(PROG, f"--url {args.url!r} must start with http:// or https://", EXIT_CONFIG)
    url = args.url.rstrip("/") + "/snapshot"
    if args.download:
        req = urllib.request.Request(f"{url}?{query}" if query else url, method="GET")  # noqa: S310 - scheme checked above
    else:
        req = urllib.request.Request(url, data=query.encode(), method="POST")  # noqa: S310 - scheme checked above
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=args.timeout) as reply:  # noqa: S310 - scheme checked above
            if args.download:
                return _save(reply, Path(args.download), args.json)
            answer = json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return fail(PROG, http_error(exc), EXIT_FAILURE)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return fail(PROG, f"cannot reach {args.url}: {reason}", EXIT_FAILURE)
    if args.json:
        print(json.dumps(answer))  # noqa: T201 - CLI output
    else:
        print(f"{answer['path']}: {answer['rows']} rows, {answer['start']} .. {answer['end']}, {answer['bytes']} bytes")  # noqa: T201 - CLI output
    return 0


def _save(reply: Any, target: Path, as_json: bool) -> int:
    temp = target.with_name(f".{target.name}.part")
    with temp.open("wb") as handle:
        while chunk := reply.read(1 << 20):
            handle.write(chunk)
    temp.replace(target)
    rows, start, end = (reply.headers.get(h) for h in ("X-Rows", "X-Start", "X-End"))
    size = target.stat().st_size
    if as_json:
        print(json.dumps({"path": str(target), "rows": int(rows or 0), "start": start, "end": end, "bytes": size}))  # noqa: T201 - CLI output
    else:
        print(f"{target}: {rows} rows, {start} .. {end}, {size} bytes")  # noqa: T201 - CLI output
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
