"""A recorder with two sources: one file, rows of each agent under its own ``host``."""

import json

import duckdb
import polars as pl
import pyarrow.parquet as pq

from support import synth
from support.synth import SyntheticAgent, free_endpoint, wait_until


def _agent(name):
    return SyntheticAgent(free_endpoint(), instance=f"inst-{name}", host={**synth.HOST, "hostname": name}).start()


def test_two_sources_record_into_one_file(tmp_path, recorder):
    """Each source's rows are all there, in time order, with no restart or gap across hosts."""
    one, two = _agent("host-one"), _agent("host-two")
    out = tmp_path / "two.parquet"
    try:
        wait_until(lambda: one.published and two.published, 20, "both agents publishing")
        proc = recorder("--source", one.endpoint, "--source", two.endpoint, "--interval", "100ms",
                        "--duration", "3s", out)
        assert proc.wait(60) == 0, proc.stderr
    finally:
        one.stop()
        two.stop()
    rows = duckdb.execute(
        "SELECT host, count(*), sum(missed), count(*) FILTER (WHERE restart), "
        "count(*) FILTER (WHERE duration IS NULL) FROM read_parquet(?) GROUP BY host ORDER BY host",
        [str(out)],
    ).fetchall()
    assert rows == [("host-one", 30, 0, 0, 1), ("host-two", 30, 0, 0, 1)]
    table = pq.read_table(out).to_pydict()
    for agent, name in ((one, "host-one"), (two, "host-two")):
        stamps = [t for t, h in zip(table["timestamp"], table["host"], strict=True) if h == name]
        published = [f.timestamp_ns for f in agent.published]
        assert stamps == published[published.index(stamps[0]):][: len(stamps)]  # consecutive frames, none lost
        assert {i for i, h in zip(table["instance"], table["host"], strict=True) if h == name} == {agent.instance}
    meta = pq.read_metadata(out).metadata
    assert json.loads(meta[b"sources"]) == [one.endpoint, two.endpoint]
    assert set(json.loads(meta[b"hosts"])) == {"host-one", "host-two"}
    rates = (
        pl.read_parquet(out)
        .sort("host", "timestamp")
        .with_columns(pl.col("cpu_usage/user/0").cast(pl.Float64).diff().over("host").alias("d"))
        .group_by("host")
        .agg(pl.col("d").drop_nulls().min().alias("lo"), pl.col("d").drop_nulls().max().alias("hi"))
        .sort("host")
    )
    step = synth.counter_value(1, 0) - synth.counter_value(0, 0)
    assert rates.rows() == [("host-one", step, step), ("host-two", step, step)]


def test_a_silent_source_is_reported_and_the_others_recorded(tmp_path, recorder):
    """One agent down: the recording of the other completes (exit 0) and the log names the silent one."""
    one = _agent("host-one")
    silent = free_endpoint()
    out = tmp_path / "partial.parquet"
    try:
        wait_until(lambda: one.published, 20, "the agent publishing")
        proc = recorder("--source", one.endpoint, "--source", silent, "--interval", "100ms",
                        "--duration", "3s", "--timeout", "1s", out)
        assert proc.wait(60) == 0, proc.stderr
    finally:
        one.stop()
    assert duckdb.execute("SELECT host, count(*) FROM read_parquet(?) GROUP BY host", [str(out)]).fetchall() == [
        ("host-one", 30)
    ]
    assert "no frames from this source yet" in proc.stderr
    assert silent in proc.stderr
