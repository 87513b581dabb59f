"""``rezolus view BASE TARGET``: what cannot be compared is one line and exit 2, the rest gets compare's ranking.

Never a traceback; the ranking served is the one ``rezolus compare --json`` prints.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request

import pytest
import viewer_synth as synth

from support.env import VENV_BIN


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A base, a 2 s target, and files that cannot be compared with the base."""
    root = tmp_path_factory.mktemp("view-pair")
    synth.write(synth.Plan(rows=120, cpus=2, cgroups=2), root / "base.parquet")
    synth.write(synth.Plan(rows=60, interval_ns=2_000_000_000, cpus=2, cgroups=3), root / "slow.parquet")
    synth.write(synth.Plan(rows=3, cpus=2, cgroups=2), root / "short.parquet")
    synth.write_uncomparable(root)
    return root


@pytest.mark.parametrize(("base", "target", "message"), [
    ("base.parquet", "v2.parquet", "layout versions differ"),
    ("base.parquet", "empty.parquet", "no rows"),
    ("zero.parquet", "base.parquet", "not a readable parquet file"),
    ("base.parquet", "corrupt.parquet", "not a readable parquet file"),
    ("base.parquet", "disjoint.parquet", "no series in common"),
    ("base.parquet", "missing.parquet", "is not a file"),
    ("short.parquet", "base.parquet", "fewer than 3 intervals"),
])
def test_what_cannot_be_compared_is_one_line_and_exit_2(files, base, target, message):
    """Different layouts, empty, corrupt, disjoint, missing or too short: one line on stderr, exit 2."""
    result = subprocess.run([str(VENV_BIN / "rezolus-viewer"), base, target, "--listen", "127.0.0.1:0"],
                            capture_output=True, text=True, timeout=60, check=False, cwd=files)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_the_ranking_is_rezolus_compare_s_with_a_chart_per_row(files, viewer_factory):
    """/api/compare has the rows of ``rezolus compare --json`` in its order; each names a chart that exists."""
    viewer = viewer_factory(str(files / "base.parquet"), str(files / "slow.parquet"))
    with urllib.request.urlopen(viewer.url + "api/compare", timeout=120) as resp:  # noqa: S310 - loopback URL
        body = json.load(resp)
    with urllib.request.urlopen(viewer.url + "api/info", timeout=30) as resp:  # noqa: S310 - loopback URL
        info = json.load(resp)
    cli = subprocess.run([str(VENV_BIN / "rezolus"), "compare", "base.parquet", "slow.parquet", "--json"],
                         capture_output=True, text=True, timeout=120, check=True, cwd=files)
    expected = json.loads(cli.stdout)
    assert [{k: v for k, v in r.items() if k not in {"chart", "label"}} for r in body["rows"]] == expected
    assert "compared at 2s" in body["note"]
    assert any(r.get("only_in") == "target" for r in body["rows"])
    charts = {c["id"] for s in info["sections"] for c in s["charts"]}
    ranked = [r for r in body["rows"] if "only_in" not in r]
    assert all(r["chart"] in charts for r in ranked)
    assert info["mode"] == "compare"
    assert set(info["sides"]) == {"base", "target"}
    assert info["sides"]["target"]["interval_ns"] == 2_000_000_000
    bad = urllib.request.Request(viewer.url + "api/chart?id=overview.cpu&side=nope")  # noqa: S310
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(bad, timeout=30)  # noqa: S310 - loopback URL
    assert err.value.code == 400
    err.value.close()
