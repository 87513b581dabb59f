"""``rezolus-recorder`` / ``rezolus record``: record the agent's frames to a parquet file.

Invariants:
- Usage problems (bad duration, existing OUTPUT without ``--force``) print
  one line and exit 2; runtime failures print one line and exit 1; a clean
  finish, including one ended by the first SIGINT/SIGTERM, exits 0.
- Before recording, orphaned journals beside OUTPUT (left by a recorder that
  was killed) are recovered into parquet files, never overwritten or dropped.
- ``--recover PATH`` only converts a journal and records nothing.
- Positionals are ``[SOURCE] OUTPUT``: with two, the first is the agent's
  address (``http://HOST:PORT``, ``tcp://HOST:PORT`` or ``HOST:PORT``, as in
  ``rezolus record http://localhost:4241 rezolus.parquet``); with one, it is
  OUTPUT.  Settings come from ``--config FILE`` with flags on top.
- The ``stopped`` log line carries the exit code the process ends with.
"""

from __future__ import annotations

import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rezolus_core import log
from rezolus_core.bus import CLIENT_OPTIONS, DEFAULT_ENDPOINT, client_keys
from rezolus_core.config import EXIT_CONFIG, ConfigError
from rezolus_core.lifecycle import EXIT_FAILURE, EXIT_OK, fail, guard_config, run_service
from rezolus_core.shell import COMMAND_LINE, Loaded, Option, Spec
from rezolus_recorder import convert, journal
from rezolus_recorder.progress import summary
from rezolus_recorder.service import Options, Recorder
from rezolus_recording.arrow import without_pandas

if TYPE_CHECKING:
    import argparse

PROG = "rezolus-recorder"


SECOND = 1_000_000_000
SPEC = Spec(
    prog=PROG,
    description="Record the agent's frames into a crash-safe parquet file.",
    options=(
        Option("source", "sources", (DEFAULT_ENDPOINT,), "the agent's address (or give it as SOURCE)",
               key="source", flag="--source", metavar="ENDPOINT"),
        Option("interval", "duration", SECOND, "one row per interval", key="interval", flag="--interval"),
        Option("duration", "duration", None, "stop after this long, e.g. 15m (default: until SIGINT/SIGTERM)",
               key="duration", flag="--duration"),
        Option("timeout", "duration", 10 * SECOND, "give up if the agent sends nothing for this long at start",
               key="timeout", flag="--timeout"),
        Option("progress_every", "duration", 10 * SECOND, "log a progress line this often when stderr is not a TTY",
               key="progress_every", flag="--progress-every"),
        Option("log_level", "level", "info", "debug, info, warning or error", key="log_level",
               flag="--log-level", metavar="LEVEL"),
        *CLIENT_OPTIONS,
    ),
)


def _parser() -> argparse.ArgumentParser:
    parser = SPEC.parser()
    parser.add_argument("positionals", nargs="*", metavar="[SOURCE] OUTPUT",
                        help="the agent's address (http://HOST:PORT, tcp://HOST:PORT or HOST:PORT) and the "
                        "parquet file to write (default: rezolus-HOST-TIME.parquet here)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing OUTPUT")
    parser.add_argument("--recover", metavar="PATH", default=None,
                        help="turn the journal PATH (or OUTPUT.journal) into parquet and exit")
    return parser


def _settings(args: argparse.Namespace) -> tuple[Loaded, str | None]:
    """The checked settings and OUTPUT (None: the default name)."""
    flags = SPEC.flags(args)
    positionals: list[str] = args.positionals
    if len(positionals) > 2:
        raise ConfigError(COMMAND_LINE, "SOURCE OUTPUT", f"expected at most two, got {len(positionals)}")
    output = positionals[-1] if positionals else None
    if len(positionals) == 2:
        if flags["source"] is not None:
            raise ConfigError(COMMAND_LINE, "SOURCE", "give the agent's address as SOURCE or --source, not both")
        flags["source"] = [positionals[0]]
    loaded = SPEC.load(args.config, flags)
    loaded.finish()
    duration = loaded["duration"]
    if duration is not None and duration < loaded["interval"]:
        raise loaded.error("duration", "is shorter than the interval")
    return loaded, output


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
    args = _parser().parse_args(SPEC.normalize(sys.argv[1:] if argv is None else argv))
    settings, output_text = _settings(args)
    log.configure(PROG, settings["log_level"])
    interval = settings["interval"]
    duration = settings["duration"]
    timeout = settings["timeout"] / 1e9
    every = settings["progress_every"] / 1e9
    if args.recover is not None:
        return _recover(args.recover, output_text, args.force)
    output = Path(output_text) if output_text else _default_output()
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
        sources=settings["source"], interval_ns=interval, duration_ns=duration, output=output,
        connect_timeout_s=timeout, progress_every_s=every, tty=sys.stderr.isatty(),
        curve=client_keys(settings),
    )
    without_pandas()
    recorder = Recorder(options)
    started = time.monotonic()
    code = run_service(recorder)
    if recorder.result is not None:
        print(summary(recorder.result, " ".join(options.sources), interval, recorder.bad_messages))  # noqa: T201
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
