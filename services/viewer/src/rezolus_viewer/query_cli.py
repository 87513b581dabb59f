"""``rezolus query FILE... SQL``: DuckDB over one or many recordings, as a table, CSV or JSON.

Invariants:
- Every argument but the last names recordings: a file, a directory (its
  ``*.parquet`` files, recursively) or a glob; the last is the SQL, run
  against the view ``recording`` with the macros of ``rezolus_viewer.sql``.
- ``--json`` prints one JSON list of row objects; ``--csv`` prints CSV with
  a header; otherwise a rich table.  Values that JSON cannot hold (HUGEINT,
  timestamps, bytes) are printed as text, non-finite floats as null.
- Bad input (no files, an unreadable file, an SQL error) prints one line
  and exits 2.  No stack traces.
"""

from __future__ import annotations

import csv
import glob
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from rezolus_core.config import ConfigError
from rezolus_core.lifecycle import guard_config
from rezolus_core.shell import Option, Spec
from rezolus_viewer import sql

if TYPE_CHECKING:
    import argparse

PROG = "rezolus query"


SPEC = Spec(
    prog=PROG,
    description="Run SQL (DuckDB) over recordings, as the view `recording` with `host` and `file`.",
    options=(
        Option("csv", "boolean", default=False, help="print CSV with a header", flag="--csv"),
        Option("json", "boolean", default=False, help="print a JSON list of row objects", flag="--json"),
        Option("macros", "boolean", default=False, flag="--macros",
               help="print the view and macro definitions (for plain DuckDB) and exit"),
    ),
)


def _parser() -> argparse.ArgumentParser:
    parser = SPEC.parser(config_flag=False)
    parser.add_argument("args", nargs="*", metavar="FILE... SQL",
                        help="recordings (files, directories or globs), then the SQL")
    return parser


def expand(patterns: list[str]) -> list[str]:
    """The recordings that files, directories and globs name, in order, each once."""
    found: list[str] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            matches = sorted(str(p) for p in path.rglob("*.parquet"))
        elif path.is_file():
            matches = [pattern]
        else:
            matches = sorted(glob.glob(pattern, recursive=True))  # noqa: PTH207 - shell-style patterns as given
        if not matches:
            raise ConfigError("command line", "FILE", f"{pattern}: no such file, directory or match")
        found.extend(m for m in matches if m not in found)
    return found


def view(con: duckdb.DuckDBPyConnection, files: list[str]) -> str:
    """The ``recording`` view over ``files`` (knowing whether they have their own ``host`` column)."""
    return sql.view(files, host_column=bool(con.execute(sql.host_column(files)).fetchall()))


def connect(files: list[str]) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the macros and the ``recording`` view over ``files``."""
    con = duckdb.connect()
    for statement in sql.MACROS:
        con.execute(statement)
    if files:
        con.execute(view(con, files))
    return con


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return value if abs(value) < 1 << 63 else str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def run(files: list[str], query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and rows of ``query`` over ``files`` (ConfigError on bad files or SQL)."""
    try:
        text = sql.rewrite(query)
    except ValueError as exc:
        raise ConfigError("command line", "SQL", str(exc)) from None
    try:
        con = connect(files)
    except duckdb.Error as exc:
        raise ConfigError("command line", "FILE", _first_line(exc)) from None
    try:
        cursor = con.execute(text)
        names = [d[0] for d in cursor.description or []]
        rows = cursor.fetchall()
    except duckdb.Error as exc:
        raise ConfigError("command line", "SQL", _first_line(exc)) from None
    finally:
        con.close()
    return names, rows


def _first_line(exc: duckdb.Error) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _print(names: list[str], rows: list[tuple[Any, ...]], as_json: bool, as_csv: bool) -> None:
    if as_json:
        print(json.dumps([dict(zip(names, map(_plain, row), strict=True)) for row in rows], allow_nan=False))  # noqa: T201 - the output
    elif as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(names)
        writer.writerows([["" if v is None else v for v in map(_plain, row)] for row in rows])
    else:
        from rich.console import Console  # noqa: PLC0415 - rich only for the table
        from rich.table import Table  # noqa: PLC0415

        table = Table()
        for name in names:
            table.add_column(name, overflow="fold")
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in map(_plain, row)))
        console = Console()
        (console if console.is_terminal else Console(width=200)).print(table)


def _build(args: argparse.Namespace) -> int:
    settings = SPEC.load(None, SPEC.flags(args))
    settings.finish()
    if settings["csv"] and settings["json"]:
        raise ConfigError("command line", "--csv", "give --csv or --json, not both")
    if settings["macros"]:
        files = expand(args.args)
        print(";\n".join([*sql.MACROS, *([view(duckdb.connect(), files)] if files else [])]) + ";")  # noqa: T201 - the output
        return 0
    if len(args.args) < 2:
        raise ConfigError("command line", "FILE", "give at least one recording and then the SQL")
    names, rows = run(expand(args.args[:-1]), args.args[-1])
    _print(names, rows, settings["json"], settings["csv"])
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the query command line."""
    args = _parser().parse_args(SPEC.normalize(sys.argv[1:] if argv is None else argv))
    return guard_config(PROG, lambda: _build(args))


if __name__ == "__main__":
    sys.exit(main())
