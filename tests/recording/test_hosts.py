"""Recordings of several agents: the ``host`` column, per-host restarts and gaps, DuckDB and pandas."""

import json
import re
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq

from rezolus_recording.builder import TableBuilder
from rezolus_recording.layout import host_label
from rezolus_recording.writer import write_table
from support import synth

SEC = 1_000_000_000
T0 = 1_800_000_000 * SEC
A, B, C = "tcp://10.0.0.1:4241", "tcp://10.0.0.2:4241", "tcp://10.0.0.3:4241"


def _agent(instance, hostname):
    return synth.Agent(synth.catalog(instance, host={**synth.HOST, "hostname": hostname}))


def test_host_label_is_the_hostname_made_unique_by_the_endpoint():
    """Hostname first; an empty one is the endpoint; a taken one gets ``@HOST:PORT``."""
    assert host_label("web1", A) == "web1"
    assert host_label("", A) == "10.0.0.1:4241"
    assert host_label("", "ipc:///run/rezolus.sock") == "ipc:///run/rezolus.sock"
    assert host_label("web1", B, {"web1"}) == "web1@10.0.0.2:4241"


def _three_hosts(tmp_path):
    """Host a: 4 rows; host b: 2 rows, a restart, 2 rows; host c (same hostname as a): 3 rows, a gap."""
    builder = TableBuilder(source=A, interval_ns=SEC)
    a, b1, b2, c = _agent("a", "web1"), _agent("b1", "web2"), _agent("b2", "web2"), _agent("c", "web1")
    for seq in range(1, 5):
        builder.add(a.delivery(seq, T0 + seq * SEC), source=A)
    for seq in (1, 2):
        builder.add(b1.delivery(seq, T0 + seq * SEC), source=B)
    for seq in (1, 2):
        builder.add(b2.delivery(seq, T0 + (seq + 2) * SEC), source=B)
    builder.add(c.delivery(1, T0 + SEC), source=C)
    builder.add(c.delivery(2, T0 + 2 * SEC), source=C)
    builder.add(c.delivery(4, T0 + 4 * SEC), source=C, missed=1)
    path = tmp_path / "fleet.parquet"
    write_table(builder.table(), path)
    return path


def test_rows_keep_their_host_with_per_host_restarts_and_gaps(tmp_path):
    """Durations, restarts and gaps never cross hosts; the metadata names every host and source."""
    table = pq.read_table(_three_hosts(tmp_path))
    hosts = table.column("host").to_pylist()
    assert hosts == ["web1"] * 4 + ["web2"] * 4 + ["web1@10.0.0.3:4241"] * 3
    assert table.column("restart").to_pylist() == [False] * 6 + [True] + [False] * 4
    assert table.column("duration").to_pylist() == [
        None, SEC, SEC, SEC, None, SEC, None, SEC, None, SEC, 2 * SEC,
    ]
    assert table.column("missed").to_pylist() == [0] * 10 + [1]
    meta = {k.decode(): v.decode() for k, v in pq.read_metadata(tmp_path / "fleet.parquet").metadata.items()}
    assert json.loads(meta["sources"]) == [A, B, C]
    hosts_meta = json.loads(meta["hosts"])
    assert {k: v["source"] for k, v in hosts_meta.items()} == {
        "web1": A, "web2": B, "web1@10.0.0.3:4241": C,
    }
    assert hosts_meta["web2"]["kernel"] == synth.HOST["kernel"]
    assert meta["restarts"] == "1"
    assert meta["missed_rows"] == "1"


def test_duckdb_and_pandas_group_by_host(tmp_path):
    """Per-host row counts, restarts and rates come out of one GROUP BY / groupby."""
    path = _three_hosts(tmp_path)
    rows = duckdb.sql(
        f"SELECT host, count(*), count(*) FILTER (WHERE restart), sum(missed) "  # noqa: S608 - a test path
        f"FROM '{path}' GROUP BY host ORDER BY host"
    ).fetchall()
    assert rows == [("web1", 4, 0, 0), ("web1@10.0.0.3:4241", 3, 0, 1), ("web2", 4, 1, 0)]
    rates = duckdb.sql(
        f'SELECT host, ("cpu_usage/user/0"::DOUBLE - lag("cpu_usage/user/0") OVER w) / duration AS r '  # noqa: S608
        f"FROM '{path}' WINDOW w AS (PARTITION BY host ORDER BY timestamp) ORDER BY host, timestamp"
    ).fetchall()
    per_second = synth.counter_value(1, 0) / 1e9  # counter 0 grows by this per second at 1 s
    web1 = [r for h, r in rates if h == "web1"]
    assert web1[0] is None
    assert web1[1:] == [per_second] * 3
    frame = pd.read_parquet(path)
    assert frame.groupby("host", observed=True).size().to_dict() == {
        "web1": 4, "web2": 4, "web1@10.0.0.3:4241": 3,
    }


def test_a_file_without_the_host_column_still_reads(tmp_path):
    """Files written before ``host`` existed (no column) open in DuckDB and pandas as before."""
    builder = TableBuilder(source=A, interval_ns=SEC)
    agent = _agent("a", "web1")
    for seq in range(1, 4):
        builder.add(agent.delivery(seq, T0 + seq * SEC))
    old = builder.table().drop_columns(["host"])
    path = tmp_path / "old.parquet"
    write_table(old, path)
    assert duckdb.sql(f"SELECT count(*) FROM '{path}'").fetchall() == [(3,)]  # noqa: S608
    assert "host" not in pd.read_parquet(path).columns


def test_the_doc_queries_for_several_hosts_run(tmp_path, monkeypatch):
    """docs/parquet.md's queries of "Several hosts in one file" give per-host answers."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "parquet.md").read_text()
    section = doc.split("### Several hosts in one file", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```\n(.*?)```", section, flags=re.DOTALL)
    path = _three_hosts(tmp_path)
    path.rename(tmp_path / "rezolus.parquet")
    monkeypatch.chdir(tmp_path)
    counts, rates = (duckdb.connect().execute(q).fetchall() for q in block.split(";") if q.strip())
    assert counts == [("web1", 4, 0, 0), ("web1@10.0.0.3:4241", 3, 1, 0), ("web2", 4, 0, 1)]
    per_second = synth.counter_value(1, 0) / 1e9
    web2 = [r for h, _, r in sorted(rates, key=lambda row: (row[0], row[1])) if h == "web2"]
    assert web2 == [None, per_second, None, per_second]  # nulls on the first row and on the restart row
