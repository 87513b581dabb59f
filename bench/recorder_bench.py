"""Recorder benchmark: bytes on disk per recorded value, and recorder CPU.

Runs a live agent with its default samplers, records it with
``rezolus-recorder`` for ``--duration`` at ``--interval`` (default 15m at 1s),
then measures, on that one recording:

- bytes per value: file size / (non-null counter and gauge cells + non-zero
  histogram buckets), for our file and for the same table written with
  pyarrow's defaults and with plain zstd;
- the reference: the same values backfilled into a Prometheus TSDB block with
  ``promtool tsdb create-blocks-from openmetrics`` (Prometheus' own storage);
- recorder CPU: steady state (from /proc between 10 s in and 5 s before the
  end) and in total (rusage, including start-up and the parquet conversion).

Usage: ``.venv/bin/python bench/recorder_bench.py [--duration 15m] [--interval 1s]
[--agent-interval 100ms]``
or ``--recording FILE`` to analyse an existing recording (no CPU figures).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
from _common import BIN, cpu_seconds, free_endpoint, rss_mib

from rezolus_core.config import parse_duration
from rezolus_recording.writer import write_table


def record(
    directory: Path, duration: str, interval: str, agent_interval: str
) -> tuple[Path, dict[str, float]]:
    """Record a live agent; return the file and the recorder's CPU figures."""
    endpoint = free_endpoint()
    agent = subprocess.Popen(
        [str(BIN / "rezolus-agent"), "--listen", endpoint, "--interval", agent_interval],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    out = directory / "bench.parquet"
    try:
        started = time.monotonic()
        recorder = subprocess.Popen(
            [str(BIN / "rezolus-recorder"), "--source", endpoint, "--interval", interval,
             "--duration", duration, "--progress-every", "1m", "--timeout", "90s", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        seconds = parse_duration(duration) / 1e9
        time.sleep(10)
        cpu_a, t_a = cpu_seconds(recorder.pid), time.monotonic()
        time.sleep(max(1.0, seconds - 15))
        cpu_b, t_b = cpu_seconds(recorder.pid), time.monotonic()
        rss_recording = rss_mib(recorder.pid)
        _, status, usage = os.wait4(recorder.pid, 0)
        wall = time.monotonic() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit("the recorder failed")
        assert recorder.stdout is not None
        print(recorder.stdout.read().decode().strip())
    finally:
        agent.terminate()
        agent.wait(15)
    return out, {
        "steady_core_pct": 100 * (cpu_b - cpu_a) / (t_b - t_a),
        "total_cpu_s": usage.ru_utime + usage.ru_stime,
        "wall_s": wall,
        "total_core_pct": 100 * (usage.ru_utime + usage.ru_stime) / wall,
        "recording_rss_mib": rss_recording,
        "peak_rss_mib_incl_conversion": usage.ru_maxrss / 1024,
        "after_last_row_s": wall - seconds,
    }


def count_values(table) -> tuple[int, int, int]:  # noqa: ANN001 - pyarrow has no stubs
    """Return (scalar values, non-zero histogram buckets, histogram cells)."""
    scalars = buckets = cells = 0
    for field in table.schema:
        kind = (field.metadata or {}).get(b"metric_type")
        column = table.column(field.name)
        if kind in (b"counter", b"gauge"):
            scalars += len(column) - column.null_count
        elif kind == b"histogram":
            flat = pc.list_flatten(column)
            buckets += int(pc.sum(pc.not_equal(flat, 0)).as_py() or 0)
            cells += len(column) - column.null_count
    return scalars, buckets, cells


def openmetrics(table, path: Path) -> int:  # noqa: ANN001 - pyarrow has no stubs
    """Write every recorded value as OpenMetrics samples; return the sample count."""
    stamps = [t / 1e9 for t in table.column("timestamp").to_pylist()]
    samples = 0
    with path.open("w") as handle:
        for n, field in enumerate(table.schema):
            kind = (field.metadata or {}).get(b"metric_type")
            if kind is None:
                continue
            metric = f"m{n}"
            handle.write(f"# TYPE {metric} gauge\n")
            values = table.column(field.name).to_pylist()
            if kind != b"histogram":
                for ts, value in zip(stamps, values, strict=True):
                    if value is not None:
                        handle.write(f"{metric} {value} {ts:.3f}\n")
                        samples += 1
                continue
            used = sorted({i for cell in values if cell for i, c in enumerate(cell) if c})
            for index in used:
                for ts, cell in zip(stamps, values, strict=True):
                    if cell and cell[index]:
                        handle.write(f'{metric}{{b="{index}"}} {cell[index]} {ts:.3f}\n')
                        samples += 1
        handle.write("# EOF\n")
    return samples


def prometheus_bytes(table, directory: Path) -> tuple[int, int] | None:  # noqa: ANN001
    """Backfill the values into a Prometheus block; return (bytes on disk, samples)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        return None
    source, blocks = directory / "values.om", directory / "tsdb"
    samples = openmetrics(table, source)
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(source),
                    str(blocks)], check=True, capture_output=True)
    size = sum(p.stat().st_size for p in blocks.rglob("*") if p.is_file())
    return size, samples


def main() -> int:
    """Run the benchmark and print a markdown summary."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", default="15m")
    parser.add_argument("--interval", default="1s")
    parser.add_argument("--agent-interval", default=None, help="default: --interval")
    parser.add_argument("--recording", type=Path, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="copy the recording here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="recorder-bench-") as tmp:
        directory = Path(tmp)
        cpu: dict[str, float] = {}
        if args.recording is None:
            agent_interval = args.agent_interval or args.interval
            path, cpu = record(directory, args.duration, args.interval, agent_interval)
        else:
            path = args.recording
        if args.keep is not None:
            shutil.copyfile(path, args.keep)
        table = pq.read_table(path)
        scalars, buckets, cells = count_values(table)
        values = scalars + buckets
        size = path.stat().st_size
        footer = pq.read_metadata(path).serialized_size
        rows = table.num_rows
        print(f"\nrows {rows}, columns {table.num_columns}, values {values} "
              f"({scalars} counter/gauge cells, {buckets} non-zero buckets in {cells} "
              f"histogram cells), footer {footer} B")
        print("\n| storage of the same values | bytes | bytes/value | ratio to ours |")
        print("|---|---:|---:|---:|")
        results = [("rezolus-recorder parquet (ours)", size)]
        for label, options in (
            ("pyarrow defaults (snappy, dictionary)", {}),
            ("plain zstd, dictionary", {"compression": "zstd"}),
        ):
            other = directory / "alt.parquet"
            pq.write_table(table, other, **options)
            results.append((label, other.stat().st_size))
        steady = [n for n in table.schema.names if table.column(n).null_count == 0]
        subset = table.select(steady)
        sub_values = sum(count_values(subset)[:2])
        sub_size = write_table(subset, directory / "steady.parquet")
        print(f"\nseries present in every row: {len(steady)} columns, {sub_values} values, "
              f"{sub_size} B in our layout = {sub_size / sub_values:.3f} B/value "
              f"(footer {pq.read_metadata(directory / 'steady.parquet').serialized_size} B)")
        prom = prometheus_bytes(table, directory)
        if prom is not None:
            prom_size, samples = prom
            if samples != values:
                print(f"warning: {samples} OpenMetrics samples vs {values} values")
            results.append(("Prometheus TSDB block (promtool backfill)", prom_size))
        for label, nbytes in results:
            print(f"| {label} | {nbytes} | {nbytes / values:.3f} | {nbytes / size:.2f} |")
        if cpu:
            print("\n" + json.dumps({k: round(v, 3) for k, v in cpu.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
