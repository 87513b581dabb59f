"""Recordings of several hosts in the viewer (``instance``), the query tool and files without ``host``."""

from __future__ import annotations

import asyncio
import json
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from aiohttp.test_utils import TestClient, TestServer

from rezolus_recording.builder import TableBuilder
from rezolus_recording.writer import write_table
from rezolus_viewer import compare_cli, dashboard, query_cli
from rezolus_viewer.api import make_app
from rezolus_viewer.hosts import HostFiles, HostViews, host_names
from rezolus_viewer.recording import Recording
from support import synth

SEC = 1_000_000_000
T0 = 1_800_000_000 * SEC


class Scaled(synth.Values):
    """Counters ``factor`` times the default model, so each host's rates differ."""

    def __init__(self, factor: int) -> None:
        self.factor = factor

    def counter(self, spec, seq):
        """The default value times ``factor``."""
        return self.factor * synth.counter_value(seq, spec.id)


def _write(path, hosts, *, drop_host=False):
    """``hosts``: (hostname, rows, factor); rows of all hosts interleaved as a recorder writes them."""
    builder = TableBuilder(source="tcp://h0:4241", interval_ns=SEC)
    agents = [
        (f"tcp://h{k}:4241", synth.Agent(synth.catalog(f"i{k}", host={**synth.HOST, "hostname": name}),
                                         values=Scaled(factor)), rows)
        for k, (name, rows, factor) in enumerate(hosts)
    ]
    for seq in range(1, max(r for _, _, r in agents) + 1):
        for source, agent, rows in agents:
            if seq <= rows:
                builder.add(agent.delivery(seq, T0 + seq * SEC), source=source)
    table = builder.table()
    write_table(table.drop_columns(["host"]) if drop_host else table, path)
    return path


def _get(hosts, *urls):
    async def run():
        rec = Recording(hosts.file(hosts.names[0]) if hosts.many else hosts.path)
        plan = dashboard.plan(rec.columns.values())
        views = HostViews(hosts, rec, plan) if hosts.many else None
        app = make_app(rec, plan, warm=False, views=views)
        async with TestClient(TestServer(app)) as client:
            out = []
            for url in urls:
                resp = await client.get(url)
                json_ = "json" in resp.headers.get("Content-Type", "")
                out.append((resp.status, await resp.json() if json_ else await resp.text()))
            return out

    return asyncio.run(run())


def test_the_api_shows_one_host_at_a_time(tmp_path):
    """``instance`` picks the host; info lists every host; an unknown host is a 400."""
    path = _write(tmp_path / "two.parquet", [("web1", 5, 1), ("web2", 8, 3)])
    hosts = HostFiles(path)
    try:
        (s1, first), (s2, second), (s3, bad) = _get(
            hosts, "/api/info", "/api/info?instance=web2", "/api/info?instance=nope"
        )
        chart = first["sections"][0]["charts"][0]["id"]
        [(c1, one), (c2, two)] = _get(hosts, f"/api/chart?id={chart}&points=50",
                                      f"/api/chart?id={chart}&points=50&instance=web2")
    finally:
        hosts.close()
    assert (s1, s2, s3) == (200, 200, 400)
    assert (first["mode"], first["hosts"], first["file"]) == ("hosts", ["web1", "web2"], "two.parquet")
    assert (first["hostname"], first["rows"], first["breaks"]) == ("web1", 5, 0)
    assert (second["hostname"], second["rows"], second["kernel"]) == ("web2", 8, synth.HOST["kernel"])
    assert "no host 'nope'" in bad["error"]
    assert (c1, c2) == (200, 200)
    assert len(one["x"]) == 4
    assert len(two["x"]) == 7
    values_one = [v for s in one["series"] for v in s["values"] if v is not None]
    values_two = [v for s in two["series"] for v in s["values"] if v is not None]
    assert values_one
    assert values_two[: len(values_one)] == pytest.approx([3 * v for v in values_one], rel=1e-9)  # 3x as fast


def embedded_info(html):
    """The page's embedded ``/api/info`` answer (None when the slot is empty)."""
    found = re.search(r'<script id="rezolus-info" type="application/json">(.*?)</script>', html, re.DOTALL)
    assert found is not None
    return json.loads(found.group(1)) if found.group(1) else None


def test_the_page_embeds_the_info_of_the_host_it_shows(tmp_path):
    """GET /?instance=HOST carries that host's /api/info; an unknown host leaves the slot empty (the page asks)."""
    path = _write(tmp_path / "two.parquet", [("web1", 5, 1), ("web2", 8, 3)])
    hosts = HostFiles(path)
    try:
        (_, first), (_, second), (_, page_first), (_, page_second), (status, page_bad) = _get(
            hosts, "/api/info", "/api/info?instance=web2", "/", "/?instance=web2", "/?instance=nope"
        )
    finally:
        hosts.close()
    assert embedded_info(page_first) == first
    assert embedded_info(page_second) == second
    assert second["hostname"] == "web2"
    assert status == 200
    assert embedded_info(page_bad) is None


def test_query_rates_never_cross_hosts(tmp_path):
    """``rate()`` on a file of two hosts is per host: one null first row each, then the host's own rate."""
    path = _write(tmp_path / "two.parquet", [("web1", 4, 1), ("web2", 4, 2)])
    query = 'SELECT host, rate("cpu_usage/user/0") FROM recording ORDER BY host, timestamp'
    _, rows = query_cli.run([str(path)], query)
    step = synth.counter_value(1, 0) - synth.counter_value(0, 0)
    assert rows == [("web1", None), *[("web1", float(step))] * 3, ("web2", None), *[("web2", float(2 * step))] * 3]


def test_files_without_a_host_column_open_everywhere(tmp_path, capsys):
    """Older recordings (no ``host``) still open in the viewer, ``rezolus query`` and ``rezolus compare``."""
    old = _write(tmp_path / "old.parquet", [("web1", 6, 1)], drop_host=True)
    hosts = HostFiles(old)
    assert hosts.names == []
    [(status, info)] = _get(hosts, "/api/info")
    assert status == 200
    assert (info["rows"], info["hostname"]) == (6, "web1")
    assert "hosts" not in info
    _, rows = query_cli.run([str(old)], "SELECT host, count(*) FROM recording GROUP BY host")
    assert rows == [("web1", 6)]
    assert compare_cli.main([str(old), str(old)]) == 0
    assert capsys.readouterr().out


@pytest.mark.parametrize("drop_host", [False, True])
def test_a_single_host_file_is_viewed_as_is(tmp_path, drop_host):
    """One host: no per-host copy, no selector."""
    hosts = HostFiles(_write(tmp_path / "one.parquet", [("web1", 3, 1)], drop_host=drop_host))
    assert not hosts.many
    assert hosts.file("anything") == hosts.path


@pytest.mark.parametrize("values", [
    ["a", "a", "a", "a"], ["a", "a", "b", "b"], ["b", "b", "a", "a"], [None, None, "a", "a"],
    ["a", None, "a", "a"], [None, None, None, None], [1, 1, 1, 1], ["a", "b", "a", "b"], ["c", "b", "a", "b"],
])
@pytest.mark.parametrize("dictionary", [True, False])
def test_host_names_are_the_distinct_values_in_order_of_first_appearance(tmp_path, values, dictionary):
    """Row groups of two rows; the recorder's dictionary column and plain columns of other writers alike."""
    path = tmp_path / "hosts.parquet"
    host = pa.array(values, pa.int64() if 1 in values else pa.string())
    if dictionary:
        host = host.dictionary_encode()
    table = pa.table({"timestamp": pa.array(range(len(values)), pa.int64()), "host": host})
    pq.write_table(table, path, row_group_size=2)
    expected = [str(v) for v in dict.fromkeys(values) if v is not None]
    assert host_names(path) == expected
