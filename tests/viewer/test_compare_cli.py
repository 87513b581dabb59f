"""``rezolus compare`` on synthetic recordings: output shapes, an injected change, intervals, ranges, bad input."""

import http.server
import json
import os
import random
import subprocess
import threading

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import viewer_synth as synth

from rezolus_viewer import compare, samples
from rezolus_viewer.recording import Recording
from support.env import VENV_BIN

BOOST = 5  # the injected change multiplies syscall/read by this


def rezolus_compare(*args, cwd=None):
    """Run the CLI; return (exit code, stdout, stderr)."""
    proc = subprocess.run([str(VENV_BIN / "rezolus"), "compare", *map(str, args)], capture_output=True, text=True,
                          timeout=120, check=False, cwd=cwd)
    return proc.returncode, proc.stdout, proc.stderr


def noisy(spec, seq, interval_ns):
    """A steady rate with +-30% independent noise per interval, a pure function of (series, seq)."""
    jitter = random.Random(spec.id * 1_000_003 + seq).uniform(-0.3, 0.3)
    return int((spec.id % 13 + 1) * 1000 * (1 + jitter) * interval_ns / 1e9)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A base, a target with syscall/read multiplied, a 2 s recording, an other-layout and odd files."""
    root = tmp_path_factory.mktemp("compare")
    plan = synth.Plan(rows=120, cpus=2, cgroups=2)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(synth, "increment", noisy)
        synth.write(plan, root / "base.parquet")
        mp.setattr(synth, "increment", lambda spec, seq, interval_ns: noisy(spec, seq, interval_ns) * (
            BOOST if spec.name == "syscall" and spec.labels.get("op") == "read" else 1))
        synth.write(plan, root / "target.parquet")
    synth.write(synth.Plan(rows=60, interval_ns=2_000_000_000, cpus=2, cgroups=2), root / "slow.parquet")
    synth.write_uncomparable(root)
    (root / "notes.txt").write_text("not parquet")
    return root


def test_a_recording_compared_with_itself_marks_nothing(files):
    """Identical inputs: nothing significant, every change zero."""
    code, out, err = rezolus_compare(files / "base.parquet", files / "base.parquet", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) > 50
    assert not any(r["significant"] for r in rows)
    assert all(r["change"] == 0 for r in rows if r["change"] is not None)


def test_the_injected_change_ranks_first_with_its_size(files):
    """Only syscall/read changed: it is first, significant, and its rate is BOOST times the base's."""
    code, out, err = rezolus_compare(files / "base.parquet", files / "target.parquet", "--json")
    assert code == 0, err
    rows = json.loads(out)
    first = rows[0]
    assert first["series"]["column"] == "syscall/read"
    assert first["series"]["metric"] == "syscall"
    assert first["series"]["labels"] == {"op": "read"}
    assert first["kind"] == "counter"
    assert first["significant"] is True
    assert first["target"] == pytest.approx(BOOST * first["base"], rel=0.01)
    assert first["change"] == pytest.approx(first["target"] - first["base"])
    assert [r["series"]["column"] for r in rows if r["significant"]] == ["syscall/read"]
    for key in ("series", "kind", "base", "target", "change", "significant", "p_value", "effect_size"):
        assert key in first


def test_values_are_the_recordings_own_rates_and_quantiles(files):
    """base/target are mean rates and merged-distribution quantiles, as the viewer computes them."""
    rec = Recording(files / "base.parquet")
    try:
        got = {s.key: s for s in samples.collect(rec, rec.start_ns, rec.end_ns)}
        values, present = rec.scalars(["syscall/write"])["syscall/write"]
        rows, _ = rec.histogram_rows("syscall_latency/read:buckets", np.array([0, rec.rows - 1]))
    finally:
        rec.close()
    elapsed = (rec.end_ns - rec.start_ns) / 1e9
    assert present.all()
    assert got["syscall/write", None].reported == pytest.approx(float(values[-1] - values[0]) / elapsed, rel=1e-9)
    merged = rows[1] - rows[0]
    from rezolus_core import histogram  # noqa: PLC0415

    for q in samples.QUANTILES:
        assert got["syscall_latency/read:buckets", q].reported == histogram.percentiles(merged, [q])[0]


def test_table_output_shows_the_top_rows_and_one_sided_series(files):
    """The rich table has --top rows; series of one side are listed apart."""
    code, out, err = rezolus_compare(files / "base.parquet", files / "target.parquet", "--top", "3")
    assert code == 0, err
    assert "1 of" in out
    assert "syscall/read" in out
    assert out.count("│ ") >= 3


def test_intervals_that_differ_compare_at_the_coarser_and_say_so(files):
    """1 s against 2 s: a note on stderr, intervals of 2 s on both sides."""
    code, out, err = rezolus_compare(files / "base.parquet", files / "slow.parquet", "--json")
    assert code == 0, err
    assert "compared at 2s" in err
    rows = json.loads(out)
    row = next(r for r in rows if r["series"]["column"] == "syscall/read")
    assert row["base_intervals"] == 59
    assert row["target_intervals"] == 59


def test_ranges_pick_windows(files):
    """--base-range/--target-range restrict the intervals used."""
    code, out, err = rezolus_compare(files / "base.parquet", files / "base.parquet",
                                     "--base-range", ":30s", "--target-range", "1m:", "--json")
    assert code == 0, err
    row = next(r for r in json.loads(out) if r["series"]["column"] == "syscall/read")
    assert row["base_intervals"] == 30
    assert row["target_intervals"] == 59


def test_one_sided_series_are_listed_apart_in_json(files, tmp_path):
    """A series only the target has comes after the ranked rows with only_in."""
    table = pq.read_table(files / "base.parquet")
    extra = table.append_column(pa.field("new_counter", pa.uint64(), metadata={
        "metric": "new_counter", "metric_type": "counter"}), pa.array(np.arange(table.num_rows), pa.uint64()))
    pq.write_table(extra, tmp_path / "extra.parquet")
    code, out, err = rezolus_compare(files / "base.parquet", tmp_path / "extra.parquet", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert rows[-1]["series"]["column"] == "new_counter"
    assert rows[-1]["only_in"] == "target"
    assert rows[-1]["series"]["metric"] == "new_counter"
    assert rows[-1]["kind"] == "counter"
    assert rows[-1]["significant"] is False


@pytest.mark.parametrize(("base", "target", "extra", "message"), [
    ("missing.parquet", "base.parquet", [], "is not a file"),
    ("zero.parquet", "base.parquet", [], "not a readable parquet file"),
    ("empty.parquet", "base.parquet", [], "no rows"),
    ("corrupt.parquet", "base.parquet", [], "not a readable parquet file"),
    ("notes.txt", "base.parquet", [], "not a readable parquet file"),
    ("base.parquet", "v2.parquet", [], "layout versions differ"),
    ("base.parquet", "disjoint.parquet", [], "no series in common"),
    ("base.parquet", "base.parquet", ["--base-range", "5m:1m"], "ends before it starts"),
    ("base.parquet", "base.parquet", ["--base-range", "soon"], "FROM:TO"),
    ("base.parquet", "base.parquet", ["--target-range", "10m:"], "fewer than 3 intervals"),
    ("base.parquet", "base.parquet", ["--top", "-1"], "at least 0"),
    ("base.parquet", "base.parquet", ["--fdr", "2"], "outside"),
])
def test_bad_input_is_one_line_and_exit_2(files, base, target, extra, message):
    """Bad files and options: one line on stderr, exit 2, no traceback."""
    code, out, err = rezolus_compare(base, target, *extra, cwd=files)
    assert code == 2, err
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert message in err


def test_unreachable_snapshot_url_exits_1(files):
    """A download that fails is not bad input: one line, exit 1."""
    code, _, err = rezolus_compare("http://127.0.0.1:9/snapshot", files / "base.parquet")
    assert code == 1
    assert "cannot download" in err
    assert len(err.strip().splitlines()) == 1


def test_fold_is_finite_for_new_activity():
    """The ranking size: log2 of the floored ratio; a series from zero is large but finite."""
    assert compare.fold(0, 5) == pytest.approx(np.log2(101))
    assert compare.fold(0, 0) == 0
    assert compare.fold(400, 100) == pytest.approx(np.log2(404 / 104))
    assert compare.fold(1000, 1) == pytest.approx(compare.fold(1, 1000))
    assert np.isnan(compare.fold(float("nan"), 1))


def test_a_snapshot_url_is_compared_and_its_download_removed(files, tmp_path):
    """BASE as a hindsight snapshot URL (with a token): same answer as the file, no temporary file left."""
    body = (files / "base.parquet").read_bytes()

    class Snapshot(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            """Serve base.parquet at /snapshot to the bearer of "s3cret"."""
            ok = self.path.startswith("/snapshot") and self.headers.get("Authorization") == "Bearer s3cret"
            self.send_response(200 if ok else 401)
            self.send_header("Content-Length", str(len(body) if ok else 0))
            self.end_headers()
            if ok:
                self.wfile.write(body)

        def log_message(self, *args):
            """Stay quiet."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Snapshot)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    try:
        proc = subprocess.run(
            [str(VENV_BIN / "rezolus"), "compare", f"http://127.0.0.1:{server.server_address[1]}/snapshot?last=5m",
             str(files / "target.parquet"), "--json", "--token-file", str(token)],
            capture_output=True, text=True, timeout=120, check=False, env={**os.environ, "TMPDIR": str(downloads)})
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 0, proc.stderr
    _, direct, _ = rezolus_compare(files / "base.parquet", files / "target.parquet", "--json")
    assert json.loads(proc.stdout) == json.loads(direct)
    assert list(downloads.iterdir()) == []


def test_changes_beyond_the_fold_cap_are_ordered_by_their_effect():
    """A series that stopped and one that grew a million-fold tie on the fold; the more consistent ranks first.

    Uncapped, the stopped series' fold (the floor's whole share) is a hair
    larger and would rank it first however noisy it was.
    """
    rng = np.random.default_rng(3)
    n = 60
    stopped = samples.Samples("stopped", "counter", None, rng.normal(1e9, 4e8, n).clip(1e8), 1e9)
    stopped_after = samples.Samples("stopped", "counter", None, np.zeros(n), 0.0)
    grew = samples.Samples("grew", "counter", None, rng.normal(2.0, 0.2, n), 2.0)
    grew_after = samples.Samples("grew", "counter", None, rng.normal(2e6, 2e4, n), 2e6)
    result = compare.compare([stopped, grew], [stopped_after, grew_after], {})
    first, second = result.rows
    assert first.significant
    assert second.significant
    assert compare.fold(1e9, 0) > compare.fold(2.0, 2e6) > compare.FOLD_CAP
    assert compare.score(first) == compare.score(second) == compare.FOLD_CAP * compare.EFFECT_CAP
    assert abs(first.test.effect) > abs(second.test.effect)
    assert first.column == "grew"
