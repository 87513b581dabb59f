"""``rezolus query``: the SQL rewrite, the macros against the viewer's own math, docs/query.md's examples, bad input."""

import json
import re
import shlex
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import viewer_synth as synth

from rezolus_core import histogram
from rezolus_viewer import compute, query_cli, sql
from rezolus_viewer.recording import Recording
from support.env import VENV_BIN

DOC = Path(__file__).resolve().parents[2] / "docs" / "query.md"
HOSTS = ("db-1", "web-1", "web-2")


def blocks(language):
    """The fenced code blocks of docs/query.md in ``language``."""
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def _rename_host(path, host):
    table = pq.read_table(path)
    if "host" in table.column_names:  # the rows name their host too
        where = table.column_names.index("host")
        table = table.set_column(where, "host", pa.array([host] * table.num_rows).dictionary_encode())
    meta = dict(table.schema.metadata)
    meta[b"hostname"] = host.encode()
    meta[b"host"] = json.dumps({"hostname": host}).encode()
    pq.write_table(table.replace_schema_metadata(meta), path)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """rezolus.parquet (a gap and a restart) and fleet/ with three hosts' recordings."""
    root = tmp_path_factory.mktemp("query")
    synth.write(synth.FIXTURE_PLAN, root / "rezolus.parquet")
    (root / "fleet").mkdir()
    for n, host in enumerate(HOSTS):
        path = synth.write(synth.Plan(rows=60 + 30 * n, cpus=2), root / "fleet" / f"{host}.parquet")
        _rename_host(path, host)
    return root


def rezolus_query(cwd, *args):
    """Run the CLI; return (exit code, stdout, stderr)."""
    proc = subprocess.run([str(VENV_BIN / "rezolus"), "query", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def doc_commands():
    """Every ``rezolus query`` line of the doc's shell examples, as argv lists (without the program)."""
    out = []
    for block in blocks("sh"):
        for line in block.strip().splitlines():
            argv = shlex.split(line)
            assert argv[:2] == ["rezolus", "query"], line
            out.append(argv[2:])
    return out


def test_rewrite_adds_the_implicit_columns_only_where_needed():
    """Rewrite adds the implicit columns only where needed."""
    assert sql.rewrite('SELECT rate("a/b") FROM recording') == (
        'SELECT rate("a/b", [file, host], timestamp, duration) FROM recording')
    assert sql.rewrite("SELECT RATE(x), rate(x, f, t, d), 'rate(y)', \"rate(z)\" -- rate(w)\n") == (
        "SELECT RATE(x, [file, host], timestamp, duration), rate(x, f, t, d), 'rate(y)', \"rate(z)\" -- rate(w)\n")
    assert sql.rewrite("SELECT hist_quantile(hist_delta(c), 0.5), my_rate(c), x.rate(c)") == (
        "SELECT hist_quantile(hist_delta(c, [file, host], timestamp, duration), 0.5), my_rate(c), x.rate(c)")
    assert sql.rewrite("SELECT rate(f(a, b))") == "SELECT rate(f(a, b), [file, host], timestamp, duration)"
    with pytest.raises(ValueError, match="unbalanced"):
        sql.rewrite("SELECT rate(a")


def test_macros_agree_with_the_viewer_math(workdir):
    """rate() and hist_quantile(hist_delta()) give what compute.py gives, nulls included."""
    path = workdir / "rezolus.parquet"
    names, rows = query_cli.run([str(path)], 'SELECT rate("syscall/read") AS r, '
                                'hist_quantile(hist_delta("syscall_latency/read:buckets"), 0.99) AS p99 '
                                "FROM recording ORDER BY timestamp")
    assert names == ["r", "p99"]
    rec = Recording(path)
    try:
        bins = compute.step_bins(rec.timestamps, rec.breaks, 0, rec.rows - 1, 1)
        rate = compute.counter_rate(bins, [rec.scalars(["syscall/read"])["syscall/read"]])
        deltas = compute.histogram_deltas(rec, bins, ["syscall_latency/read:buckets"])
    finally:
        rec.close()
    # the viewer draws the step across a gap as a gap; SQL gives its average rate (docs/parquet.md)
    gap = synth.GAP_ROW - 1
    got_rate = [r for r, _ in rows[1:]]
    assert got_rate[gap] is not None
    assert np.isnan(rate[gap])
    del got_rate[gap]
    rate = np.delete(rate, gap)
    assert [g is None for g in got_rate] == np.isnan(rate).tolist()
    assert [g for g in got_rate if g is not None] == pytest.approx(rate[~np.isnan(rate)].tolist())
    want_p99 = [None if d is None else histogram.percentiles(d, [99.0])[0] for d in deltas]
    got_p99 = [p for _, p in rows[1:]]
    assert got_p99[gap] is not None
    assert got_p99[:gap] + got_p99[gap + 1 :] == want_p99[:gap] + want_p99[gap + 1 :]
    assert rows[0] == (None, None)


@pytest.mark.parametrize("q", [0.0, 0.5, 0.9, 0.99, 0.999, 1.0])
def test_hist_quantile_matches_the_core_on_random_distributions(q):
    """Hist quantile matches the core on random distributions."""
    rng = np.random.default_rng(int(q * 1000))
    counts = histogram.from_values(rng.lognormal(8, 3, size=5000).astype(np.uint64))
    con = query_cli.connect([])
    try:
        got = con.execute("SELECT hist_quantile(?::UBIGINT[], ?)", [counts.tolist(), q]).fetchone()
    finally:
        con.close()
    assert got == (histogram.percentiles(counts, [q * 100])[0],)


@pytest.fixture(scope="module")
def doc_results(workdir):
    """Every shell example of the doc run once: (argv, exit code, stdout, stderr); JSON unless it asks for CSV."""
    out = []
    for argv in doc_commands():
        extra = [] if "--csv" in argv else ["--json"]
        out.append((argv, *rezolus_query(workdir, *argv, *extra)))
    return out


def test_every_doc_example_runs(doc_results):
    """Every doc example runs."""
    assert len(doc_results) >= 5
    assert any(argv[0].startswith("fleet") for argv, *_ in doc_results)
    for argv, code, out, err in doc_results:
        assert code == 0, (argv, err)
        assert out.strip(), argv


def test_doc_examples_give_the_right_answers(workdir, doc_results):
    """Doc examples give the right answers."""
    results = [out if "--csv" in argv else json.loads(out) for argv, _, out, _ in doc_results]
    summary, cpu, p99s, whole, fleet, csv_text = results
    plan = synth.FIXTURE_PLAN
    assert summary == [{"rows": plan.rows, "missed_rows": synth.GAP_MISSED, "restarts": 1}]
    assert len(cpu) == plan.rows
    assert [r["cores"] is None for r in cpu].count(True) == 2  # the first row and the restart row
    assert len(p99s) == plan.rows
    rec = Recording(workdir / "rezolus.parquet")
    try:
        bins = compute.step_bins(rec.timestamps, rec.breaks, 0, rec.rows - 1, 1)
        parts = [d for d in compute.histogram_deltas(rec, bins, ["syscall_latency/read:buckets"]) if d is not None]
    finally:
        rec.close()
    # the doc's merged p99 also counts the gap's interval (its delta is valid; only the viewer nulls it)
    assert whole[0]["p99"] >= histogram.percentiles(histogram.merge(*parts), [99.0])[0] * 0.8
    assert [r["host"] for r in fleet] == list(HOSTS)
    assert all(r["mean_reads"] > 0 for r in fleet)
    lines = csv_text.strip().splitlines()
    assert lines[0] == "host,file,rows"
    assert [line.split(",")[0] for line in lines[1:]] == list(HOSTS)


def test_python_examples_agree_with_rezolus_query(workdir, doc_results, monkeypatch):
    """Python examples agree with rezolus query."""
    monkeypatch.chdir(workdir)
    namespace = {"__name__": "doc_example"}
    for code in blocks("python"):
        exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 - the doc's own examples
    out = next(out for argv, _, out, _ in doc_results if argv[0] == "fleet/")
    fleet = {r["host"]: r["mean_reads"] for r in json.loads(out)}
    assert [v for _, v in namespace["fleet_duckdb"]] == pytest.approx([fleet[h] for h in HOSTS])
    assert namespace["fleet_pandas"].to_dict() == pytest.approx(fleet)
    polars = dict(zip(namespace["fleet_polars"]["host"], namespace["fleet_polars"]["reads"], strict=True))
    assert polars == pytest.approx(fleet)


@pytest.mark.parametrize(("args", "message"), [
    (["missing.parquet", "SELECT 1"], "no such file"),
    (["rezolus.parquet", "SELECT nope FROM recording"], "nope"),
    (["rezolus.parquet", "SELECT rate(x"], "unbalanced"),
    (["corrupt.parquet", "SELECT count(*) FROM recording"], "FILE: "),
    (["rezolus.parquet"], "at least one recording"),
])
def test_bad_input_is_one_line_and_exit_2(workdir, args, message):
    """Bad input is one line and exit 2."""
    (workdir / "corrupt.parquet").write_bytes(b"PAR1" + b"\x00" * 100)
    code, out, err = rezolus_query(workdir, *args)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert message in err
    assert "Traceback" not in err


def test_printed_macros_work_in_plain_duckdb(workdir, monkeypatch):
    """`rezolus query --macros FILE` pastes into DuckDB: the view and the four-argument window macros."""
    import duckdb  # noqa: PLC0415

    monkeypatch.chdir(workdir)  # the view names the files as they were given
    code, out, err = rezolus_query(workdir, "--macros", "fleet/")
    assert code == 0, err
    con = duckdb.connect()
    try:
        for statement in filter(str.strip, out.split(";\n")):
            con.execute(statement.rstrip(";"))
        hosts = con.execute('WITH r AS (SELECT host, rate("syscall/read", file, timestamp, duration) AS x '
                            "FROM recording) SELECT host, count(x) FROM r GROUP BY host ORDER BY host").fetchall()
    finally:
        con.close()
    assert [h for h, _ in hosts] == list(HOSTS)
    assert all(n > 0 for _, n in hosts)
