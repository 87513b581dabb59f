"""``rezolus compare BASE TARGET``: which series changed between two recordings, ranked, with significance.

Invariants:
- BASE and TARGET are parquet files or hindsight snapshot URLs (downloaded
  to temporary files that are removed before exit).
- ``--base-range`` / ``--target-range`` are ``FROM:TO`` offsets from each
  file's first row (``30s:5m``, ``:2m``, ``1m:``).
- Recordings of different intervals are compared at the coarser one; a
  note on stderr says so.
- Bad input (a missing, empty or corrupt file, different layout versions,
  an empty window, no series in common, bad options) prints one line and
  exits 2; a failed download exits 1.  No stack traces.
- ``--json`` prints one JSON list: the ranked rows (``compare.to_json``),
  then one object per series present on one side only (``only_in``).
"""

from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from rezolus_core.config import ConfigError, parse_duration
from rezolus_core.lifecycle import EXIT_FAILURE, fail, guard_config
from rezolus_core.shell import Option, Spec
from rezolus_recording import layout
from rezolus_viewer import compare, samples, stats
from rezolus_viewer.fetch import DownloadError, download, is_url, snapshot_url, token
from rezolus_viewer.recording import Recording, RecordingError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterator

PROG = "rezolus compare"
DEFAULT_TOP = 20


SPEC = Spec(
    prog=PROG,
    description="Rank the series that changed between two recordings.",
    options=(
        Option("base_range", "string", None, "window of BASE, offsets from its start (30s:5m, :2m, 1m:)",
               flag="--base-range", metavar="FROM:TO"),
        Option("target_range", "string", None, "window of TARGET, offsets from its start",
               flag="--target-range", metavar="FROM:TO"),
        Option("top", "integer", 0, f"rows to show (0: {DEFAULT_TOP} in the table, every series with --json)",
               flag="--top", minimum=0, metavar="N"),
        Option("json", "boolean", default=False, help="print a JSON list, one object per series", flag="--json"),
        Option("fdr", "number", stats.FDR_Q, "false discovery rate over all series", flag="--fdr",
               minimum=1e-12, maximum=1.0, metavar="Q"),
        Option("min_effect", "number", stats.MIN_EFFECT, "smallest standardized effect called significant",
               flag="--min-effect", minimum=0.0, metavar="D"),
        Option("min_change", "number", stats.MIN_RELATIVE, "smallest relative change called significant",
               flag="--min-change", minimum=0.0, metavar="R"),
        Option("token_file", "string", None, "bearer token for snapshot URLs", flag="--token-file",
               metavar="PATH"),
    ),
)


def _parser() -> argparse.ArgumentParser:
    parser = SPEC.parser(config_flag=False)
    parser.add_argument("base", metavar="BASE", help="a recording (parquet) or a hindsight snapshot URL")
    parser.add_argument("target", metavar="TARGET", help="a recording (parquet) or a hindsight snapshot URL")
    return parser


def parse_range(text: str | None, option: str) -> tuple[int, int | None]:
    """``FROM:TO`` offsets in ns (``TO`` None for the end of the file)."""
    if text is None:
        return 0, None
    lo, sep, hi = text.partition(":")
    if not sep:
        raise ConfigError("command line", option, "expected FROM:TO, e.g. 30s:5m, :2m or 1m:")
    try:
        start = parse_duration(lo) if lo else 0
        end = parse_duration(hi) if hi else None
    except ValueError as exc:
        raise ConfigError("command line", option, str(exc)) from None
    if end is not None and end <= start:
        raise ConfigError("command line", option, f"{text!r} ends before it starts")
    return start, end


@contextlib.contextmanager
def _opened(source: str, token_file: str | None, what: str) -> Iterator[Recording]:
    path: Path | None = None
    downloaded = is_url(source)
    if downloaded:
        url = snapshot_url(source)
        try:
            path = download(url, token(token_file))
        except DownloadError as exc:
            raise _DownloadFailedError(f"cannot download {url}: {exc}") from None
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError("command line", what, f"{path} is not a file")
    try:
        try:
            rec = Recording(path)
        except RecordingError as exc:
            raise ConfigError("command line", what, str(exc)) from None
        try:
            yield rec
        finally:
            rec.close()
    finally:
        if downloaded:
            path.unlink(missing_ok=True)


class _DownloadFailedError(RuntimeError):
    """Not bad input but a failure (a download): exit 1."""


def _window(rec: Recording, span: tuple[int, int | None]) -> tuple[int, int]:
    start = rec.start_ns + span[0]
    end = rec.end_ns if span[1] is None else rec.start_ns + span[1]
    return start, end


def _collect(rec: Recording, span: tuple[int, int | None], step: int, what: str) -> list[samples.Samples]:
    start, end = _window(rec, span)
    first, last = samples.window_rows(rec, start, end)
    if (last - first) // step < stats.MIN_SAMPLES:
        raise ConfigError("command line", what, f"{rec.path}: fewer than 3 intervals in the chosen window")
    try:
        return samples.collect(rec, start, end, step)
    except (RecordingError, pa.ArrowException, OSError, ValueError) as exc:
        raise ConfigError("command line", what, f"{rec.path}: cannot read the recording ({exc})") from None


def _describe(base: Recording, target: Recording) -> dict[str, compare.Describe]:
    out = {}
    for rec in (target, base):
        for col in rec.columns.values():
            out[col.name] = compare.Describe(col.metric, col.labels, col.unit)
    return out


def _steps(base: Recording, target: Recording) -> tuple[int, int, str | None]:
    coarse = max(base.interval_ns, target.interval_ns)
    sb, st = max(1, round(coarse / base.interval_ns)), max(1, round(coarse / target.interval_ns))
    if sb == st == 1:
        return 1, 1, None
    return sb, st, (f"note: intervals differ (base {base.interval_ns / 1e9:g}s, target "
                    f"{target.interval_ns / 1e9:g}s); compared at {coarse / 1e9:g}s")


def check_pair(base: Recording, target: Recording) -> None:
    """ConfigError (one line) unless the two can be compared: same layout version, a series in common, 3 intervals."""
    versions = tuple(r.metadata.get(layout.LAYOUT, layout.LAYOUT_VERSION) for r in (base, target))
    if versions[0] != versions[1]:
        raise ConfigError("command line", "TARGET",
                          f"layout versions differ (base {versions[0]}, target {versions[1]}); cannot compare")
    if not set(base.columns) & set(target.columns):
        raise ConfigError("command line", "TARGET", "the two recordings have no series in common")
    for rec, what in ((base, "BASE"), (target, "TARGET")):
        if rec.rows <= stats.MIN_SAMPLES:
            raise ConfigError("command line", what, f"{rec.path}: fewer than 3 intervals in the recording")


@dataclass(frozen=True)
class Ranking:
    """A comparison's result with what its JSON needs and the note on intervals (if any)."""

    result: compare.Result
    note: str | None
    described: dict[str, compare.Describe]
    kinds: dict[str, str]

    def json(self, top: int | None = None) -> list[dict[str, Any]]:
        """The ranked rows (the first ``top``), then one object per series present on one side only."""
        return _json(self.result, top, self.described, self.kinds)


def rank(base: Recording, target: Recording, base_span: tuple[int, int | None] = (0, None),
         target_span: tuple[int, int | None] = (0, None), *, q: float = stats.FDR_Q,
         min_effect: float = stats.MIN_EFFECT, min_relative: float = stats.MIN_RELATIVE) -> Ranking:
    """Compare two open recordings (ConfigError for bad input, as the command line reports it)."""
    check_pair(base, target)
    step_base, step_target, note = _steps(base, target)
    ours = _collect(base, base_span, step_base, "BASE")
    theirs = _collect(target, target_span, step_target, "TARGET")
    if not {s.column for s in ours} & {s.column for s in theirs}:
        raise ConfigError("command line", "TARGET", "the two recordings have no series in common")
    described = _describe(base, target)
    kinds = {c.name: c.type for rec in (target, base) for c in rec.columns.values()}
    result = compare.compare(ours, theirs, described, q=q, min_effect=min_effect, min_relative=min_relative)
    return Ranking(result, note, described, kinds)


def run(args: argparse.Namespace, out: Callable[[str], None]) -> int:
    """Compare the two sources named in ``args`` and print the result."""
    settings = SPEC.load(None, SPEC.flags(args))
    settings.finish()
    base_span = parse_range(settings["base_range"], "--base-range")
    target_span = parse_range(settings["target_range"], "--target-range")
    top: int = settings["top"]
    token_file: str | None = settings["token_file"]
    with _opened(args.base, token_file, "BASE") as base, _opened(args.target, token_file, "TARGET") as target:
        ranking = rank(base, target, base_span, target_span, q=settings["fdr"],
                       min_effect=settings["min_effect"], min_relative=settings["min_change"])
    if ranking.note:
        print(ranking.note, file=sys.stderr)  # noqa: T201 - a note for the operator, apart from the output
    if settings["json"]:
        out(json.dumps(ranking.json(top), allow_nan=False))
    else:
        from rezolus_viewer import compare_table  # noqa: PLC0415 - rich is only needed for the table

        compare_table.show(ranking.result, top or DEFAULT_TOP)
    return 0


def _json(result: compare.Result, top: int | None, described: dict[str, compare.Describe],
          kinds: dict[str, str]) -> list[dict[str, Any]]:
    rows = [compare.to_json(r) for r in result.rows[: top or None]]
    for side, names in (("base", result.only_base), ("target", result.only_target)):
        for name in names:
            info = described[name]
            rows.append({"series": {"column": name, "metric": info.metric, "labels": dict(info.labels),
                                    "quantile": None},
                         "kind": kinds[name], "unit": info.unit, "base": None, "target": None, "change": None,
                         "significant": False, "only_in": side})
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the compare command line."""
    args = _parser().parse_args(SPEC.normalize(sys.argv[1:] if argv is None else argv))

    def build() -> int:
        try:
            return run(args, print)
        except _DownloadFailedError as exc:
            return fail(PROG, str(exc), EXIT_FAILURE)

    return guard_config(PROG, build)


if __name__ == "__main__":
    sys.exit(main())
