"""Viewer benchmark: time to first charts for 1 h and 24 h recordings at 1 s, cold server, headless chromium.

For each length it writes a synthetic recording with the shared layout
(tests/viewer/viewer_synth.py: ~100 series, 10 histograms, one gap, one
restart), starts ``rezolus-viewer FILE --listen 127.0.0.1:0`` as a fresh
process, opens the page in Debian's chromium and measures, from the moment
the process is launched:

- first chart: the first overview card drawn;
- overview: every overview card drawn (the "first charts" of the issue);
- all charts: every card of every section drawn.

The reference is what a naive viewer would have to do before drawing
anything: ``pyarrow.parquet.read_table`` of the whole file (in a fresh
process, so both include interpreter and pyarrow start-up).

Each figure is the median of ``--runs`` cold runs (default 3), each with a
fresh viewer process and a fresh browser page.

Usage: .venv/bin/python bench/viewer_bench.py [--keep DIR] [--runs N] [--hours 1 24]
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

from _common import load_line

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # viewer_synth uses support.synth
sys.path.insert(0, str(ROOT / "tests" / "viewer"))
import viewer_synth as synth  # noqa: E402 - path set up just above

VENV = pathlib.Path(sys.executable).parent
OVERVIEW_DRAWN = """() => { const s = window.rezolusViewer;
  const o = s && s.charts.filter(c => c.card.closest("[data-section='overview']"));
  return o && o.length > 0 && o.every(c => c.card.dataset.state === "ready"); }"""
FIRST_DRAWN = "() => !!document.querySelector(\"section[data-section='overview'] .card[data-state='ready']\")"
ALL_DRAWN = """() => { const s = window.rezolusViewer; return s && s.charts.length > 0
  && s.charts.every(c => c.card.dataset.state === "ready"); }"""


def make(hours: int, directory: pathlib.Path) -> pathlib.Path:
    path = directory / f"viewer-bench-{hours}h.parquet"
    if not path.exists():
        started = time.perf_counter()
        synth.write_streaming(synth.Plan(rows=hours * 3600, gaps={hours * 1200: 5}, restarts=(hours * 1800,)), path)
        print(f"wrote {path.name}: {path.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - started:.0f} s")
    return path


def naive_read(path: pathlib.Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import pyarrow.parquet as pq; pq.read_table({str(path)!r})"], check=True)
    return time.perf_counter() - started


def view(path: pathlib.Path) -> dict[str, float]:
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only the benchmark needs it

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=synth.CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        started = time.perf_counter()
        proc = subprocess.Popen([str(VENV / "rezolus-viewer"), str(path), "--listen", "127.0.0.1:0"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().split()[1]
            listening = time.perf_counter() - started
            page.goto(url)
            page.wait_for_function(FIRST_DRAWN, timeout=120_000, polling=10)
            first = time.perf_counter() - started
            page.wait_for_function(OVERVIEW_DRAWN, timeout=120_000, polling=10)
            overview = time.perf_counter() - started
            try:
                page.wait_for_function(ALL_DRAWN, timeout=300_000, polling=50)
            except Exception:
                print(page.evaluate("window.rezolusViewer.charts.map(c => c.meta.id + ':' + c.card.dataset.state)"))
                raise
            every = time.perf_counter() - started
        finally:
            proc.terminate()
            proc.wait(30)
            browser.close()
    return {"listening": listening, "first": first, "overview": overview, "all": every}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=pathlib.Path, default=None, help="keep the recordings in this directory")
    parser.add_argument("--runs", type=int, default=3, help="cold runs per recording; medians are reported")
    parser.add_argument("--hours", type=int, nargs="+", default=[1, 24], help="recording lengths to run")
    args = parser.parse_args()
    print(f"before: {load_line()}")
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.keep or pathlib.Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        rows = []
        for hours in args.hours:
            path = make(hours, directory)
            naive = statistics.median(naive_read(path) for _ in range(args.runs))
            runs = [view(path) for _ in range(args.runs)]
            got = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            rows.append((hours, path.stat().st_size / 1e6, naive, got))
    print("\n| recording | file | listening | first chart | overview drawn | overview after page request "
          "| all charts | naive full read | overview / naive |")
    print("|---|---|---|---|---|---|---|---|---|")
    for hours, size, naive, got in rows:
        print(f"| {hours} h at 1 s ({hours * 3600} rows) | {size:.1f} MB | {got['listening']:.2f} s "
              f"| {got['first']:.2f} s | {got['overview']:.2f} s | {got['overview'] - got['listening']:.2f} s "
              f"| {got['all']:.1f} s | {naive:.2f} s "
              f"| {got['overview'] / naive:.2f}× |")


if __name__ == "__main__":
    main()
