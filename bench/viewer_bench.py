"""Viewer benchmark: time to first charts for 1 h and 24 h recordings at 1 s, cold server, headless chromium.

For each length it writes a synthetic recording with the shared layout
(tests/viewer/viewer_synth.py: ~100 series, 10 histograms, one gap, one
restart), starts ``rezolus-viewer FILE --listen 127.0.0.1:0`` as a fresh
process, opens the page in Debian's chromium and measures, from the moment
the process is launched:

- first chart: the first overview card drawn, as Playwright sees it (its
  polling and round trips to the browser add to this, 0.05-0.4 s here);
- first chart, page clock: the same event timed inside the page (a
  MutationObserver installed before the page loads stamps the wall clock,
  ``performance.timeOrigin + performance.now()``, when the first overview
  card turns ready); the difference to the launch, taken with
  ``time.time()``, is exact up to wall-clock steps during the run;
- overview: every overview card drawn (the "first charts" of the issue);
- all charts: every card of every section drawn.

Chromium is started, and a blank page opened, before the viewer is launched:
the figures are those of a browser already running (the user opens the
printed URL); the browser's own start, reported apart as "browser start",
is not in them, and ``--open`` with no browser running would add it.

The reference is what a naive viewer would have to do before drawing
anything: ``pyarrow.parquet.read_table`` of the whole file (in a fresh
process, so both include interpreter and pyarrow start-up).

Each figure is the median of ``--runs`` cold runs (default 3), each with a
fresh viewer process and a fresh browser page.

``--before DIR`` also runs the viewer of another checkout (``DIR``'s
``core``, ``recording`` and ``services/viewer`` sources first on
``PYTHONPATH``, byte-compiled first like ``make setup`` does), alternated run
by run with this one so that load hits both, and prints both rows.

Usage: .venv/bin/python bench/viewer_bench.py [--keep DIR] [--runs N] [--hours 1 24] [--before DIR]
"""

from __future__ import annotations

import argparse
import os
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
STAMP_FIRST = """new MutationObserver((_, seen) => {
  if (document.querySelector("section[data-section='overview'] .card[data-state='ready']")) {
    window.__firstDrawnAt = performance.timeOrigin + performance.now(); seen.disconnect(); }
}).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-state"] });"""
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


def env_of(checkout: pathlib.Path | None) -> dict[str, str] | None:
    """The environment that runs ``checkout``'s viewer sources (None: this tree's, as installed)."""
    if checkout is None:
        return None
    sources = [checkout / "core" / "src", checkout / "recording" / "src", checkout / "services" / "viewer" / "src"]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *map(str, sources)], check=True,
                   stdout=subprocess.DEVNULL)
    return {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, sources))}


def view(path: pathlib.Path, env: dict[str, str] | None = None) -> dict[str, float]:
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only the benchmark needs it

    with sync_playwright() as p:
        launching = time.perf_counter()
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=synth.CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.add_init_script(STAMP_FIRST)
        browser_start = time.perf_counter() - launching
        started = time.perf_counter()
        started_wall = time.time()
        proc = subprocess.Popen([str(VENV / "rezolus-viewer"), str(path), "--listen", "127.0.0.1:0"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().split()[1]
            listening = time.perf_counter() - started
            page.goto(url)
            loaded = time.perf_counter() - started
            page.wait_for_function(FIRST_DRAWN, timeout=120_000, polling=10)
            first = time.perf_counter() - started
            first_page = page.evaluate("window.__firstDrawnAt") / 1000 - started_wall
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
    return {"browser": browser_start, "listening": listening, "loaded": loaded, "first": first,
            "first_page": first_page, "overview": overview, "all": every}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=pathlib.Path, default=None, help="keep the recordings in this directory")
    parser.add_argument("--runs", type=int, default=3, help="cold runs per recording; medians are reported")
    parser.add_argument("--hours", type=int, nargs="+", default=[1, 24], help="recording lengths to run")
    parser.add_argument("--before", type=pathlib.Path, default=None,
                        help="a checkout whose viewer runs alternated with this one's")
    args = parser.parse_args()
    trees = {"before": env_of(args.before), "this tree": None} if args.before else {"this tree": None}
    print(f"before: {load_line()}")
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.keep or pathlib.Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        rows = []
        for hours in args.hours:
            path = make(hours, directory)
            naive = statistics.median(naive_read(path) for _ in range(args.runs))
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
            for _ in range(args.runs):
                for name, env in trees.items():
                    runs[name].append(view(path, env))
                    print(f"{hours} h, {name}: " + ", ".join(f"{k} {v:.2f} s" for k, v in runs[name][-1].items())
                          + f"; {load_line()}", flush=True)
            for name, done in runs.items():
                got = {k: statistics.median(r[k] for r in done) for k in done[0]}
                rows.append((f"{hours} h at 1 s ({hours * 3600} rows){', ' + name if len(trees) > 1 else ''}",
                             path.stat().st_size / 1e6, naive, got))
    print(f"after: {load_line()}")
    print("\n| recording | file | listening | first chart | first chart, page clock | overview drawn "
          "| overview after page request | all charts | naive full read | overview / naive | browser start (apart) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for label, size, naive, got in rows:
        print(f"| {label} | {size:.1f} MB | {got['listening']:.2f} s "
              f"| {got['first']:.2f} s | {got['first_page']:.2f} s | {got['overview']:.2f} s "
              f"| {got['overview'] - got['listening']:.2f} s "
              f"| {got['all']:.1f} s | {naive:.2f} s "
              f"| {got['overview'] / naive:.2f}× | {got['browser']:.2f} s |")


if __name__ == "__main__":
    main()
