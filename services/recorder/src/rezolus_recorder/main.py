"""``rezolus-recorder`` / ``rezolus record``: record the agent's frames to a parquet file.

Invariants:
- Usage problems (bad duration, existing OUTPUT without ``--force``) print
  one line and exit 2; runtime failures print one line and exit 1; a clean
  finish, including one ended by the first SIGINT/SIGTERM, exits 0.
- Before recording, orphaned journals beside OUTPUT (left by a recorder that
  was killed) are recovered into parquet files, never overwritten or dropped.
- ``--recover PATH`` only converts a journal and records nothing.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from rezolus_core import log
from rezolus_core.bus import DEFAULT_ENDPOINT
from rezolus_core.config import EXIT_CONFIG, ConfigError, parse_duration
from rezolus_core.lifecycle import EXIT_FAILURE, EXIT_OK, fail, guard_config, run_service
from rezolus_recorder import convert, journal
from rezolus_recorder.progress import summary
from rezolus_recorder.service import Options, Recorder

PROG = "rezolus-recorder"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Record the agent's frames into a crash-safe parquet file.",
    )
    parser.add_argument("output", nargs="?", metavar="OUTPUT",
                        help="parquet file to write (default: rezolus-HOST-TIME.parquet here)")
    parser.add_argument("--source", default=DEFAULT_ENDPOINT, metavar="ENDPOINT",
                        help=f"the agent's bus endpoint (default {DEFAULT_ENDPOINT})")
    parser.add_argument("--interval", default="1s", help="one row per interval (default 1s)")
    parser.add_argument("--duration", default=None,
                        help="stop after this long, e.g. 15m (default: until SIGINT/SIGTERM)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing OUTPUT")
    parser.add_argument("--recover", metavar="PATH", default=None,
                        help="turn the journal PATH (or OUTPUT.journal) into parquet and exit")
    parser.add_argument("--timeout", default="10s",
                        help="give up if the agent sends nothing for this long at start")
    parser.add_argument("--progress-every", default="10s",
                        help="log a progress line this often when stderr is not a TTY")
    parser.add_argument("--log-level", default="info", choices=log.LEVELS)
    return parser


def _duration(name: str, text: str) -> int:
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise ConfigError("command line", name, str(exc)) from None
    if value <= 0:
        raise ConfigError("command line", name, "must be positive")
    return value


def _recover(path_text: str, output_text: str | None, force: bool) -> int:
    path = Path(path_text)
    if not path.name.endswith(journal.SUFFIX) and Path(path_text + journal.SUFFIX).exists():
        path = Path(path_text + journal.SUFFIX)
    if not path.exists():
        return fail(PROG, f"no journal at {path}", EXIT_FAILURE)
    if not journal.is_orphan(path):
        return fail(PROG, f"{path} is not a journal, or a running recorder still writes it",
                    EXIT_FAILURE)
    target = Path(output_text) if output_text else convert.recovery_target(path)
    if target.exists() and not force:
        return fail(PROG, f"{target} exists; use --force to overwrite it", EXIT_CONFIG)
    try:
        header = convert.read_header(path)
        result = convert.convert(path, target)
    except (OSError, journal.JournalError) as exc:
        return fail(PROG, f"cannot recover {path}: {exc}", EXIT_FAILURE)
    print(summary(result, str(header.get("source", "?")), int(header.get("interval_ns", 0))))  # noqa: T201
    return EXIT_OK


def recover_orphans(directory: Path) -> None:
    """Convert every orphaned journal in ``directory`` into a parquet file beside it."""
    logger = log.get()
    for orphan in convert.find_orphans(directory):
        target = convert.recovery_target(orphan)
        try:
            result = convert.convert(orphan, target)
        except (OSError, journal.JournalError) as exc:
            logger.error(  # noqa: TRY400 - one line for the operator, not a traceback
                "cannot recover an orphaned journal", journal=str(orphan), error=str(exc)
            )
            continue
        logger.warning(
            "recovered the journal of an interrupted recording", journal=str(orphan),
            output=str(target), rows=result.rows, torn_bytes=result.read.discarded_bytes,
        )


def _default_output() -> Path:
    stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path(f"rezolus-{socket.gethostname()}-{stamp}.parquet")


def _build(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    log.configure(PROG, args.log_level)
    interval = _duration("--interval", args.interval)
    duration = None if args.duration is None else _duration("--duration", args.duration)
    if duration is not None and duration < interval:
        raise ConfigError("command line", "--duration", "is shorter than --interval")
    timeout = _duration("--timeout", args.timeout) / 1e9
    every = _duration("--progress-every", args.progress_every) / 1e9
    if args.recover is not None:
        return _recover(args.recover, args.output, args.force)
    output = Path(args.output) if args.output else _default_output()
    if output.is_dir():
        raise ConfigError("command line", "OUTPUT", f"{output} is a directory")
    if not output.parent.is_dir():
        raise ConfigError("command line", "OUTPUT", f"directory {output.parent} does not exist")
    recover_orphans(output.parent)
    if output.exists() and not args.force:
        raise ConfigError("command line", "OUTPUT", f"{output} exists; use --force to overwrite it")
    busy = journal.journal_path(output)
    if busy.exists():
        why = ("a running recorder is writing it" if not journal.is_orphan(busy)
               else "it could not be recovered; move it away")
        return fail(PROG, f"{busy} is in the way: {why}", EXIT_FAILURE)
    options = Options(
        source=args.source, interval_ns=interval, duration_ns=duration, output=output,
        connect_timeout_s=timeout, progress_every_s=every, tty=sys.stderr.isatty(),
    )
    recorder = Recorder(options)
    started = time.monotonic()
    code = run_service(recorder)
    if recorder.result is not None:
        print(summary(recorder.result, options.source, interval, recorder.bad_messages))  # noqa: T201
    if recorder.failure is not None:
        return fail(PROG, str(recorder.failure), recorder.failure.code)
    if code == EXIT_OK and recorder.result is None:
        elapsed = time.monotonic() - started
        print(f"{PROG}: stopped after {elapsed:.1f}s, before the first row; nothing written",  # noqa: T201
              file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    """Run the recorder command line."""
    return guard_config(PROG, lambda: _build(argv))


if __name__ == "__main__":
    raise SystemExit(main())
