"""Compare benchmark: ``rezolus compare`` of two 15-minute recordings at 1 s (goal: <= 2 s).

Writes two synthetic recordings with the recorder's layout
(tests/viewer/viewer_synth.py; ``--cpus`` CPUs and ``--cgroups`` cgroups, so
about 11 series per CPU, 3 per cgroup and 11 histograms) and times, each as
the median of ``--runs`` runs in a fresh process (interpreter start-up
included):

- ``rezolus compare A B --json`` (every series tested, everything printed);
- the reference (wall and CPU time of each): ``pyarrow.parquet.read_table`` of both files, the least any
  tool must do to look at every value.

Usage: .venv/bin/python bench/compare_bench.py [--keep DIR] [--runs N] [--cpus N] [--cgroups N]
"""

from __future__ import annotations

import argparse
import pathlib
import resource
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
ROWS = 15 * 60


def make(directory: pathlib.Path, name: str, cpus: int, cgroups: int) -> pathlib.Path:
    path = directory / f"compare-bench-{name}-{cpus}cpu.parquet"
    if not path.exists():
        synth.write_streaming(synth.Plan(rows=ROWS, cpus=cpus, cgroups=cgroups), path)
    return path


def timed(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def median(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keep", type=pathlib.Path, help="write/reuse the recordings in this directory")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=16)
    parser.add_argument("--cgroups", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.keep or pathlib.Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        a = make(directory, "a", args.cpus, args.cgroups)
        b = make(directory, "b", args.cpus, args.cgroups)
        compare_argv = [str(VENV / "rezolus"), "compare", str(a), str(b), "--json"]
        columns = subprocess.run(compare_argv, check=True, capture_output=True, text=True).stdout.count('"series"')
        naive = f"import pyarrow.parquet as pq; pq.read_table({str(a)!r}); pq.read_table({str(b)!r})"
        compare_s, compare_cpu = median([timed(compare_argv) for _ in range(args.runs)])
        naive_s, naive_cpu = median([timed([sys.executable, "-c", naive]) for _ in range(args.runs)])
    print(f"two {ROWS}-row recordings ({args.cpus} CPUs, {args.cgroups} cgroups, {columns} compared series),")
    print(f"{load_line()}:")
    print(f"  rezolus compare --json   wall {compare_s:6.2f} s  cpu {compare_cpu:6.2f} s   (goal <= 2 s)")
    print(f"  read_table of both files wall {naive_s:6.2f} s  cpu {naive_cpu:6.2f} s")
    print(f"  compare / read: wall {compare_s / naive_s:.2f}×  cpu {compare_cpu / naive_cpu:.2f}×")


if __name__ == "__main__":
    main()
