"""The SQL of ``rezolus query``: the ``recording`` view over many files, the macros, and their call rewriting.

Pure text in, text out; the CLI runs it in DuckDB.

Invariants:
- ``recording`` has every column of every file (``union_by_name``: files
  with different series line up by column name, nulls elsewhere) plus
  ``file`` (the path as given) and ``host`` (the file's ``hostname``
  metadata, else its ``host`` JSON's hostname, else null).
- ``rate(col)`` is the per-second rate of a counter column between a row and
  the previous row of the same file and host, in time order: null on a file's first
  row, on restart rows (``duration`` is null there) and where the counter
  went down.  ``hist_delta(col)`` is the same for a bucket-list column (the
  per-interval distribution).  Both are window expressions: the rewrite
  adds ``[file, host]``, ``timestamp`` and ``duration`` as arguments, so
  they work on ``recording`` (and on any relation with those columns).
- ``hist_quantile(buckets, q)`` is the inclusive upper bound of the bucket
  holding quantile ``q`` (0..1) of a bucket list (grouping power 3 unless
  ``g :=`` says otherwise), exactly as ``rezolus_core.histogram`` answers
  it; null for an empty distribution.
- The rewrite leaves string literals, quoted identifiers and comments alone,
  and calls that already pass four arguments.
"""

from __future__ import annotations

import re

from rezolus_recording import layout

MACROS = (
    ("CREATE OR REPLACE MACRO rate(col, f, ts, dur) AS "
     "CASE WHEN col::DOUBLE < lag(col) OVER (PARTITION BY f ORDER BY ts) THEN NULL "
     "ELSE (col::DOUBLE - lag(col) OVER (PARTITION BY f ORDER BY ts)) / (dur / 1e9) END"),
    ("CREATE OR REPLACE MACRO hist_delta(col, f, ts, dur) AS "
     "CASE WHEN dur IS NULL THEN NULL "
     "WHEN list_bool_or(list_transform(list_zip(col, lag(col) OVER (PARTITION BY f ORDER BY ts)), "
     "lambda x: x[1] < x[2])) THEN NULL "
     "ELSE list_transform(list_zip(col, lag(col) OVER (PARTITION BY f ORDER BY ts)), "
     "lambda x: x[1]::BIGINT - x[2]::BIGINT) END"),
    ("CREATE OR REPLACE MACRO hist_bucket_upper(i, g) AS "
     "CASE WHEN (i >> g) = 0 THEN i::HUGEINT "
     "ELSE (1::HUGEINT << (g + (i >> g) - 1)) + (((i & ((1 << g) - 1)) + 1)::HUGEINT << ((i >> g) - 1)) - 1 END"),
    "CREATE OR REPLACE MACRO hist_nonzero(b) AS list_filter(list_zip(range(len(b)), b), lambda x: x[2] > 0)",
    ("CREATE OR REPLACE MACRO hist_quantile(b, q, g := 3) AS hist_bucket_upper(list_filter("
     "list_transform(hist_nonzero(b), lambda x, i: [x[1], list_sum(list_transform(hist_nonzero(b)[1:i], "
     "lambda y: y[2]))]), lambda c: c[2] >= greatest(1, ceil(round(q * list_sum(b), 9))))[1][1], g)"),
)
WINDOW_MACROS = ("rate", "hist_delta")
_IMPLICIT = f", [file, {layout.HOST_COLUMN}], {layout.TIMESTAMP}, {layout.DURATION}"
_SKIP = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/", re.DOTALL)
_CALL = re.compile(r"\b(" + "|".join(WINDOW_MACROS) + r")\s*\(", re.IGNORECASE)


def quote(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def host_column(files: list[str]) -> str:
    """A query returning a row when some file of ``files`` has its own ``host`` column."""
    listed = "[" + ", ".join(quote(f) for f in files) + "]"
    return f"SELECT 1 FROM parquet_schema({listed}) WHERE name = {quote(layout.HOST_COLUMN)} LIMIT 1"  # noqa: S608


def view(files: list[str], *, host_column: bool = False) -> str:
    """``CREATE VIEW recording`` over ``files`` with ``file`` and ``host`` columns.

    ``host_column``: some file has its own ``host`` column (it wins where not null).
    """
    listed = "[" + ", ".join(quote(f) for f in files) + "]"
    own = f"r.{layout.HOST_COLUMN}, " if host_column else ""
    excluded = f"filename, {layout.HOST_COLUMN}" if host_column else "filename"
    return (
        "CREATE OR REPLACE TEMP VIEW recording AS "  # noqa: S608 - file names are quoted as SQL string literals
        "WITH meta AS (SELECT file_name, "
        f"max(decode(value)) FILTER (WHERE decode(key) = '{layout.HOSTNAME}') AS hostname, "
        f"max(CASE WHEN decode(key) = '{layout.HOST}' AND json_valid(decode(value)) "
        "THEN json_extract_string(decode(value), '$.hostname') END) AS announced "
        f"FROM parquet_kv_metadata({listed}) GROUP BY file_name) "
        f"SELECT r.* EXCLUDE ({excluded}), r.filename AS file, "
        f"coalesce({own}meta.hostname, meta.announced) AS {layout.HOST_COLUMN} "
        f"FROM read_parquet({listed}, filename = true, union_by_name = true) AS r "
        "LEFT JOIN meta ON meta.file_name = r.filename"
    )


def _close(sql: str, start: int) -> tuple[int, int]:
    """Index of the parenthesis closing the one before ``start``, and the number of top-level commas."""
    depth, commas, i = 1, 0, start
    while i < len(sql):
        skip = _SKIP.match(sql, i)
        if skip:
            i = skip.end()
            continue
        ch = sql[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i, commas
        elif ch == "," and depth == 1:
            commas += 1
        i += 1
    raise ValueError("unbalanced parentheses")


def rewrite(sql: str) -> str:
    """Add the implicit arguments to one-argument calls of the window macros."""
    out: list[str] = []
    i = 0
    while i < len(sql):
        skip = _SKIP.match(sql, i)
        if skip:
            out.append(skip.group())
            i = skip.end()
            continue
        call = _CALL.match(sql, i)
        if call and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] in "_.")):
            end, commas = _close(sql, call.end())
            inner = rewrite(sql[call.end() : end])
            out.append(call.group() + inner + (_IMPLICIT if commas == 0 else "") + ")")
            i = end + 1
            continue
        out.append(sql[i])
        i += 1
    return "".join(out)
