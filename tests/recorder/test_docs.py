import re
from pathlib import Path

import duckdb
import numpy as np
import pytest

from rezolus_core import histogram
from rezolus_recording.builder import TableBuilder
from rezolus_recording.writer import write_table
from support import synth
from support.synth import SEC

DOC = Path(__file__).resolve().parents[2] / "docs" / "parquet.md"
T0 = 1_800_000_000 * SEC


def blocks(language):
    """Return the fenced code blocks of docs/parquet.md in ``language``."""
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def run_examples():
    """Run every SQL and Python example of the doc in the current directory; return results."""
    sql = [duckdb.connect().execute(query).fetchall() for query in blocks("sql")]
    namespaces = []
    for code in blocks("python"):
        namespace = {"__name__": "doc_example"}
        exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 - the doc's own examples
        namespaces.append(namespace)
    return sql, namespaces


@pytest.fixture
def synthetic_recording(tmp_path, monkeypatch):
    """Write a recording with a restart and a gap as rezolus.parquet in the cwd."""
    builder = TableBuilder(source="tcp://x", interval_ns=SEC)
    first, second = synth.catalog("a"), synth.catalog("b")
    for seq in range(5):
        builder.add(synth.delivery(first, seq, T0 + seq * SEC))
    builder.mark_gap(2)
    for seq in range(4):
        builder.add(synth.delivery(second, seq, T0 + (8 + seq) * SEC, restarted=seq == 0))
    write_table(builder.table(), tmp_path / "rezolus.parquet")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_doc_has_the_promised_examples():
    """The layout doc carries DuckDB (SQL) and pandas examples."""
    assert len(blocks("sql")) >= 2
    assert any("pandas" in code for code in blocks("python"))


@pytest.mark.usefixtures("synthetic_recording")
def test_doc_examples_give_the_right_answers():
    """The DuckDB and pandas examples compute the rates and percentiles the data implies."""
    sql, namespaces = run_examples()
    rows, _, _, missed, restarts = sql[0][0]
    assert (rows, missed, restarts) == (9, 2, 1)

    cpu0 = [value for _, value in sql[1]]
    sid = next(s.id for s in synth.catalog().series if s.labels == {"state": "user", "id": "0"})
    expected = [None] + [
        (synth.counter_value(k, sid) - synth.counter_value(k - 1, sid)) / SEC for k in range(1, 5)
    ]
    expected += [None]
    expected += [(synth.counter_value(k, sid) - synth.counter_value(k - 1, sid)) / SEC
                 for k in range(1, 4)]
    assert [v is None for v in cpu0] == [e is None for e in expected]
    assert [v for v in cpu0 if v is not None] == pytest.approx([e for e in expected if e])

    units = {column: unit for column, unit, _ in sql[2]}
    assert units["cpu_usage/user/0"] == "nanoseconds"

    pandas_ns = next(ns for ns in namespaces if "p99" in ns)
    df = pandas_ns["df"]
    assert np.isnan(pandas_ns["cpu0_user"].iloc[5])
    cells = df["syscall_latency/read:buckets"]
    for k in range(1, len(df)):
        if df["restart"].iat[k]:
            assert pandas_ns["p99"][k] is None
            continue
        window, _ = histogram.delta(
            np.asarray(cells.iat[k], dtype=np.uint64), np.asarray(cells.iat[k - 1], dtype=np.uint64)
        )
        assert pandas_ns["p99"][k] == histogram.percentiles(window, [99])[0]
    polars_ns = next(ns for ns in namespaces if "recording" in ns)
    assert polars_ns["memory_free"].height == 9
