"""The Grafana dashboard: well-formed, and every query names a metric the exporter exposes.

With the exporter in the tree and BPF available, the names come from a real
exporter fed by a real agent on this host. Without the exporter (before it
is merged) they come from docs/metrics.md through the exporter's naming rules
(counter -> _total, nanoseconds -> _seconds, bytes -> _bytes), and the test
says so in its output.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from compose_stack import http, poll, samples, service_in_tree

from support.env import bpf_capable, free_port, require

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "rezolus.json"

# Panels for samplers that issue 3 adds (names as in the original, see
# /work/shared/reference/upstream-facts.md; checked against a live exporter
# with the sched and ioinet branches merged). While one is missing the test
# skips locally and fails in CI, listing it; once exposed, its entry is inert.
PENDING = {
    "scheduler_runqueue_latency_seconds": "issue 3: scheduler_runqueue",
    "scheduler_offcpu_seconds": "issue 3: scheduler_runqueue",
    "scheduler_context_switch_total": "issue 3: scheduler_runqueue",
    "blockio_operations_total": "issue 3: blockio_requests",
    "blockio_bytes_total": "issue 3: blockio_requests",
    "blockio_latency_seconds": "issue 3: blockio_latency",
    "tcp_retransmit_total": "issue 3: tcp_retransmit",
    "tcp_connect_latency_seconds": "issue 3: tcp_connect_latency",
    "tcp_srtt_seconds": "issue 3: tcp_receive",
    "cgroup_cpu_usage_seconds_total": "issue 3: cpu_usage per cgroup",
}

_PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "inf", "nan",
}


def queries() -> list[str]:
    """Every PromQL expression of every panel, and of the template variables."""
    board = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    exprs += [var["definition"] for var in board["templating"]["list"] if var["type"] == "query"]
    return exprs


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, labels and keywords removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"label_values\(\s*([a-zA-Z_:][\w:]*)\s*,[^)]*\)", r" \1 ", text)
    names = set()
    for match in re.finditer(r"(?<![\w$.])([a-zA-Z_:][\w:]*)(\s*\()?", text):
        if match.group(2) is None and match.group(1).lower() not in _PROMQL_WORDS:
            names.add(match.group(1))
    return names


def catalog_names() -> set[str]:
    """Exporter names of the metrics in docs/metrics.md (before the exporter is merged)."""
    names = set()
    suffix = {"nanoseconds": "_seconds", "bytes": "_bytes"}
    for line in (REPO / "docs" / "metrics.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        kind = next((c for c in cells[1:3] if c in {"C", "G", "H"}), None)
        end = suffix.get(next((c for c in cells[1:4] if c in suffix), ""), "")
        listed = re.findall(r"`([a-z_]+)`", cells[0])
        stem = listed[0].rsplit("_", 1)[0]
        for name in listed:
            full = stem + name if name.startswith("_") else name  # `memory_numa_hit`, `_miss`
            base = full if full.endswith(end) else full + end
            names.add(base + "_total" if kind == "C" else base)
    return names


@pytest.fixture(scope="module")
def exposed() -> set[str]:
    """Sample names a real exporter serves from a real agent here (or the catalog's names)."""
    if not service_in_tree("exporter"):
        print("\nexporter not in this tree: checking against docs/metrics.md names")
        return catalog_names()
    ok, reason = bpf_capable()
    require(ok, reason)
    bindir = Path(sys.executable).parent
    bus = f"tcp://127.0.0.1:{free_port()}"
    port = free_port()
    agent = subprocess.Popen([bindir / "rezolus-agent", "--listen", bus, "--interval", "200ms"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    exporter = subprocess.Popen([bindir / "rezolus-exporter", "--source", bus, "--listen",
                                 f"127.0.0.1:{port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def scrape() -> set[str]:
            try:
                status, _, body = http(f"http://127.0.0.1:{port}/metrics", timeout=5)
            except OSError:
                return set()
            names = {name for name, _ in samples(body.decode())} if status == 200 else set()
            # summaries carry quantile samples once the window holds two frames
            return names if "syscall_latency_seconds" in names else set()
        names: set[str] = poll(scrape, 90, "syscall_latency_seconds from a live exporter", 0.5)
        print(f"\nchecking against a live exporter ({len(names)} sample names)")
        return names
    finally:
        for proc in (exporter, agent):
            proc.terminate()
            proc.wait(timeout=20)


def test_dashboard_is_well_formed():
    """The JSON loads, every panel queries the templated Prometheus datasource, ids are unique."""
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] == "rezolus-overview"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    graphs = [p for p in board["panels"] if p["type"] != "row"]
    assert graphs
    for panel in graphs:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert 'instance=~"$instance"' in target["expr"], panel["title"]


def test_dashboard_covers_every_area():
    """There is a row for CPU, scheduler, syscalls, block IO, network/TCP and containers."""
    board = json.loads(DASHBOARD.read_text())
    rows = {p["title"] for p in board["panels"] if p["type"] == "row"}
    for area in ("CPU", "Scheduler", "Syscalls", "Block IO", "Network and TCP",
                 "Containers (cgroups)"):
        assert area in rows


def test_metric_name_extraction():
    """The PromQL scan finds metric names and ignores functions, labels, keywords and ranges."""
    expr = ('topk(10, sum by (name) (rate(cgroup_syscall_total{instance=~"$i",op="read"}'
            '[$__rate_interval]))) / on (name) group_left scalar(cpu_cores) + 1e3')
    assert metric_names(expr) == {"cgroup_syscall_total", "cpu_cores"}
    assert metric_names("label_values(cpu_cores, instance)") == {"cpu_cores"}


def test_every_query_names_an_exposed_metric(exposed):
    """Each metric a panel queries is exposed; only panels of unmerged samplers may wait."""
    wanted = set().union(*(metric_names(q) for q in queries()))
    missing = wanted - exposed
    pending = dict(PENDING)
    if not service_in_tree("exporter"):  # its own metrics come with it
        pending |= {n: "issue 4: exporter" for n in missing if n.startswith("rezolus_exporter_")}
    unexplained = sorted(missing - pending.keys())
    assert not unexplained, f"the dashboard queries metrics nobody exposes: {unexplained}"
    waiting = sorted(f"{name} ({pending[name]})" for name in missing)
    require(not waiting, f"dashboard panels wait for samplers not in this tree: {waiting}")
