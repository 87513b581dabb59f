"""The frame path's shortcuts give the frames the plain way gives (issue #19).

Each shortcut is checked against a reference written the plain way, on the
same recorded inputs: ``FrameBuilder`` batching single values and collecting
histograms as flat parts (reference: every value added as an array, each
histogram ``to_sparse`` row by row, in call order); procfs files parsed from
held-open bytes (reference: text parsing of a fresh read, on fixture files
and on this host's /proc).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rezolus_agent.samplers import cpu_usage, memory_meminfo, memory_vmstat, network_traffic
from rezolus_agent.samplers._procfile import ProcFile
from rezolus_agent.series import FrameBuilder, HistogramBlock, SeriesRegistry
from rezolus_core import histogram

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "host" / "proc"


Hist = tuple[int, list[int], list[int]]


def build(out: FrameBuilder, reg: SeriesRegistry) -> tuple[list[int], list[int], list[int], list[int], list[Hist]]:
    """The built frame's counter ids, counter values, gauge ids, gauge values and histograms."""
    frame = out.build(registry=reg, seq=1, timestamp_ns=1, monotonic_ns=1, interval_ns=1, host="h")
    hists = [(h.id, h.indices.tolist(), h.counts.tolist()) for h in frame.histograms]
    return (frame.counter_ids.tolist(), frame.counter_values.tolist(),
            frame.gauge_ids.tolist(), frame.gauge_values.tolist(), hists)


def _dense(rng: np.random.Generator, rows: int) -> np.ndarray:
    dense = np.zeros((rows, histogram.layout().buckets), dtype=np.uint64)
    hot = rng.integers(0, dense.size, 4 * rows)
    dense.reshape(-1)[hot] = rng.integers(1, 1 << 40, hot.size, dtype=np.uint64)
    return dense


def _sparse(sid: int, row: np.ndarray) -> Hist:
    idx, cnt = histogram.to_sparse(row)
    return sid, idx.tolist(), cnt.tolist()


def test_builder_batching_keeps_call_order_and_rollback() -> None:
    """Mixed single and array values, with a rolled-back sampler, equal the reference's frame."""
    rng = np.random.default_rng(19)
    reg = SeriesRegistry("t", {})
    out = FrameBuilder()
    ref_counters: list[tuple[int, int]] = []
    ref_gauges: list[tuple[int, int]] = []
    ref_hists: list[Hist] = []
    for sampler in range(40):
        mark = out.mark()
        added_c: list[tuple[int, int]] = []
        added_g: list[tuple[int, int]] = []
        added_h: list[Hist] = []
        for _ in range(int(rng.integers(0, 6))):
            kind = int(rng.integers(0, 6))
            ids = rng.integers(0, 1000, int(rng.integers(1, 5))).tolist()
            values = rng.integers(-(1 << 40), 1 << 40, len(ids)).tolist()
            if kind == 0:
                out.counter(ids[0], abs(values[0]))
                added_c.append((ids[0], abs(values[0])))
            elif kind == 1:
                out.counters(ids, [abs(v) for v in values])
                added_c += [(i, abs(v)) for i, v in zip(ids, values, strict=True)]
            elif kind == 2:
                out.gauge(ids[0], values[0])
                added_g.append((ids[0], values[0]))
            elif kind == 4:
                dense = _dense(rng, 1)[0]
                out.histogram(ids[0], dense)
                added_h.append(_sparse(ids[0], dense))
            elif kind == 5:
                dense = _dense(rng, len(ids))
                out.histograms(HistogramBlock(ids).values(dense))
                added_h += [_sparse(i, row) for i, row in zip(ids, dense, strict=True)]
            else:
                out.gauges(ids, values)
                added_g += list(zip(ids, values, strict=True))
        if sampler % 7 == 3:
            out.rollback(mark)
            continue
        ref_counters += added_c
        ref_gauges += added_g
        ref_hists += added_h
    counter_ids, counter_values, gauge_ids, gauge_values, hists = build(out, reg)
    assert list(zip(counter_ids, counter_values, strict=True)) == ref_counters
    assert list(zip(gauge_ids, gauge_values, strict=True)) == ref_gauges
    assert hists == ref_hists
    assert ref_counters
    assert ref_gauges
    assert ref_hists


def _old_stat(text: str) -> dict[int, list[int]]:
    cpus: dict[int, list[int]] = {}
    for line in text.splitlines():
        if line.startswith("cpu") and line[3].isdigit():
            fields = line.split()
            ticks = [int(x) for x in fields[1:11]]
            cpus[int(fields[0][3:])] = ticks + [0] * (10 - len(ticks))
    return cpus


def _old_meminfo(text: str) -> dict[str, int]:
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return values


def _old_vmstat(text: str) -> dict[str, int]:
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            values[key] = int(value)
    return values


def _old_net_dev(text: str) -> dict[tuple[str, str], int]:
    readings: dict[tuple[str, str], int] = {}
    for line in text.splitlines()[2:]:
        name, _, rest = line.partition(":")
        iface = name.strip()
        if not rest or iface == "lo":
            continue
        fields = rest.split()
        for column, position in {"rx_bytes": 0, "rx_packets": 1, "tx_bytes": 8, "tx_packets": 9}.items():
            readings[(iface, column)] = int(fields[position])
    return readings


PARSERS = [
    ("stat", cpu_usage.parse_stat, _old_stat),
    ("meminfo", memory_meminfo.parse_meminfo, _old_meminfo),
    ("vmstat", memory_vmstat.parse_vmstat, _old_vmstat),
    ("net/dev", network_traffic.parse_net_dev, _old_net_dev),
]


@pytest.mark.parametrize(("name", "new", "old"), PARSERS, ids=[p[0] for p in PARSERS])
@pytest.mark.parametrize("root", [FIXTURE, Path("/proc")], ids=["fixture", "live"])
def test_bytes_parsers_equal_text_parsers(root: Path, name: str, new, old) -> None:
    """One read, parsed both ways: the same values (fixture tree and this host)."""
    data = (root / name).read_bytes()
    parsed = new(data)
    assert parsed
    assert parsed == old(data.decode("ascii"))


def test_held_file_reads_what_a_fresh_open_reads(tmp_path: Path) -> None:
    """Pread at 0 on a held descriptor follows the file, grows past its first buffer, and reopens after loss."""
    path = tmp_path / "f"
    path.write_bytes(b"a 1\n")
    held = ProcFile(path)
    assert held.read() == b"a 1\n"
    big = b"x" * (200_000) + b"\n"
    path.write_bytes(big)
    assert held.read() == big
    stat = ProcFile(Path("/proc/stat"))
    assert stat.read().startswith(b"cpu ")
    assert _old_stat(stat.read().decode()).keys() == _old_stat(Path("/proc/stat").read_text()).keys()
    stat.close()
    held.close()
    path.unlink()
    with pytest.raises(OSError, match="No such file"):
        held.read()
    path.write_bytes(b"back\n")
    assert held.read() == b"back\n"
