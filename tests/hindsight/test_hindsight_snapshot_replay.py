"""The snapshot's flat replay (``replay.Replay``) against the checked path (``Tracker`` + ``TableBuilder.add``).

The checked path is what snapshots did before the flat replay and what the
recorder does live: every stored payload fed to a ``Tracker`` without a
clock, every delivery added to a builder.  Both must give equal tables
(values, nulls, schema and metadata), and a record that the checked path
would not turn into its row must fail the flat replay with a clear error.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import msgpack
import numpy as np
import pytest
from hindsight_synth import MS, T0, make

from rezolus_core.frame import Catalog, Frame, HistogramValue, MetricType, SeriesSpec, encode_catalog, encode_frame
from rezolus_core.tracker import Delivery, Tracker
from rezolus_hindsight import snapshot
from rezolus_recording.records import KIND_CATALOG

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import pyarrow as pa

    from rezolus_hindsight.buffer import Buffer

S = 1_000_000_000
INTERVAL = 100 * MS
C, G, H = MetricType.COUNTER, MetricType.GAUGE, MetricType.HISTOGRAM
BASE = [("ops", C, {}), ("bytes", C, {"op": "read"}), ("depth", G, {}), ("lat", H, {}), ("size", H, {"op": "rx"})]
GROWN = [("ops", C, {"op": "write"}), ("wait", H, {}), ("temp", G, {})]


def _catalog(instance: str, rows: list[tuple[str, MetricType, dict[str, str]]], host: str) -> Catalog:
    series = tuple(SeriesSpec(i, n, t, labels, "u", "d") for i, (n, t, labels) in enumerate(rows))
    return Catalog(instance, series, {"hostname": host, "kernel": "6.1"})


class _Agent:
    """Frames of one instance with cumulative random values; ``drop`` leaves series out of a frame."""

    def __init__(self, catalog: Catalog, seed: int) -> None:
        self.catalog = catalog
        self.rng = np.random.default_rng(seed)
        self.seq = 0
        self.counters = np.zeros(64, np.uint64)
        self.buckets = np.zeros((64, 496), np.uint64)

    def frame(self, ts: int, drop: frozenset[int] = frozenset()) -> Frame:
        self.seq += 1
        ids = {t: [s.id for s in self.catalog.series if s.type is t and s.id not in drop] for t in MetricType}
        self.counters += self.rng.integers(0, 1000, 64, dtype=np.uint64)
        hists = []
        for sid in ids[H]:
            grow = self.rng.integers(0, 6, 496, dtype=np.uint64) * (self.rng.random(496) < 0.03)  # sparse buckets
            self.buckets[sid] += grow.astype(np.uint64)
            (nonzero,) = np.nonzero(self.buckets[sid])
            hists.append(HistogramValue(sid, nonzero.astype(np.uint16), self.buckets[sid][nonzero]))
        return Frame(
            self.catalog.instance, self.seq, ts, self.seq * INTERVAL, INTERVAL, self.catalog.host["hostname"],
            self.catalog.version,
            np.array(ids[C], np.uint32), self.counters[ids[C]].copy(),
            np.array(ids[G], np.uint32), self.rng.integers(-50, 50, len(ids[G]), dtype=np.int64),
        ).with_histograms(hists)


def _ingest(buffer: Buffer, agent: _Agent, frame: Frame, payload: bytes | None = None) -> None:
    delivery = Delivery(frame, agent.catalog, 0, restarted=False)
    assert buffer.ingest(delivery, payload or encode_frame(frame), encode_catalog(agent.catalog))


def _fill(buffer: Buffer) -> list[int]:
    """Histograms, a catalog growing mid-buffer, missing series, gaps and a restart; return the timestamps."""
    first = _Agent(_catalog("inst-a", BASE, "alpha"), seed=1)
    stamps = []
    for i in range(900):
        if i in range(300, 340) or i in range(610, 613):
            continue  # an outage: empty grid slots
        if i == 450:
            first.catalog = _catalog("inst-a", BASE + GROWN, "alpha")  # series added mid-buffer
        if i == 700:
            first = _Agent(_catalog("inst-b", GROWN + BASE, "beta"), seed=2)  # a restart, new ids and host
        ts = T0 + i * INTERVAL + 3 * MS
        drop = frozenset({1, 4}) if i % 7 == 0 else frozenset({3}) if i % 11 == 0 else frozenset()
        if i % 13 == 0:
            drop = frozenset(s.id for s in first.catalog.series if s.type is H)  # no histogram at all
        _ingest(buffer, first, first.frame(ts, drop))
        stamps.append(ts)
    return stamps


def _checked(buffer: Buffer, start: int, end: int) -> pa.Table:
    """The table the checked path makes: a Tracker per source and ``TableBuilder.add``."""
    selections = snapshot.Selections()
    selections.add("agent", buffer.select(start, end))
    ((_, selection),) = selections.parts
    builder = snapshot._builder(selections, INTERVAL)
    tracker = Tracker(pending_limit=1 << 20, clock=None)
    last_slot = None
    for record in selection.records():
        if record.kind == KIND_CATALOG:
            tracker.feed(record.payload)
            continue
        slot, ts, payload = record.row()
        if not selection.start_ns <= ts <= selection.end_ns:
            continue
        for delivery in tracker.feed(payload):
            builder.add(delivery, missed=0 if last_slot is None else max(0, slot - last_slot - 1), source="agent")
            last_slot = slot
    selections.close()
    assert builder.rows == selection.rows
    return builder.table()


def test_the_flat_replay_gives_the_checked_paths_table(tmp_path: Path) -> None:
    """Full buffer and windows starting mid-catalog, mid-outage and just after the restart: equal tables."""
    buffer = make(tmp_path / "buf", interval_ns=INTERVAL, duration_ns=3600 * S, segment_span_ns=7 * S)
    stamps = _fill(buffer)
    restart = 700 - 43  # the stored frame index of the first frame of inst-b
    windows = [(0, 2**63 - 1), (stamps[420], stamps[520]), (stamps[299], stamps[330]), (stamps[restart + 3], 2**63 - 1)]
    tables = []
    for start, end in windows:
        expected = _checked(buffer, start, end)
        ours = snapshot.build_table(buffer.select(start, end), source="agent", interval_ns=INTERVAL)
        assert ours.equals(expected, check_metadata=True), (start, end)
        assert ours.num_rows > 0
        tables.append(ours)
    after_restart = tables[-1]  # its segment holds inst-a's catalog and frames before the window
    assert after_restart.column("instance")[0].as_py() == "inst-b"
    assert after_restart.column("restart")[0].as_py() is True
    whole = snapshot.build_table(buffer.select(0, 2**63 - 1), source="agent", interval_ns=INTERVAL)
    meta = whole.schema.metadata
    assert (meta[b"restarts"], meta[b"gaps"], meta[b"missed_rows"]) == (b"1", b"2", b"43")
    assert whole.column("lat:buckets").null_count > 0
    assert whole.column("wait:buckets").null_count > 0
    buffer.close()


def _reencoded(frame: Frame, change: Callable[[dict[str, object]], None]) -> bytes:
    body = msgpack.unpackb(encode_frame(frame), raw=False)
    change(body)
    return msgpack.packb(body, use_bin_type=True)  # type: ignore[no-any-return]


def _set(key: str, value: object) -> Callable[[dict[str, object]], None]:
    return lambda body: body.__setitem__(key, value)


def _ids(*ids: int) -> bytes:
    return np.array(ids, np.uint32).tobytes()


def _swapped_buckets(frame: Frame) -> bytes:
    """The frame with two bucket indices of one histogram out of order."""
    indices = np.concatenate([h.indices for h in frame.histograms]).astype(np.uint16)
    start = 0
    for hist in frame.histograms:
        if hist.indices.size >= 2:
            indices[start : start + 2] = indices[start : start + 2][::-1]
            break
        start += hist.indices.size
    return _reencoded(frame, _set("hx", indices.tobytes()))


BAD: list[tuple[str, Callable[[Frame], bytes], str]] = [
    ("garbage", lambda f: b"\xc1" + encode_frame(f)[1:], "not a msgpack message"),
    ("a catalog", lambda _: encode_catalog(_catalog("inst-a", BASE, "alpha")), "is not a frame"),
    ("unsorted buckets", _swapped_buckets, "not strictly increasing"),
    ("repeated counter", lambda f: _reencoded(f, _set("ci", _ids(0, 0))), "counter ids repeat"),
    ("gauge id as counter", lambda f: _reencoded(f, _set("ci", _ids(0, 2))), "not a counter"),
    ("older catalog version", lambda f: encode_frame(dataclasses.replace(f, catalog_version=1)), "beyond the catalog"),
    ("unknown instance", lambda f: encode_frame(dataclasses.replace(f, instance="inst-z")), "no catalog of inst-z"),
    ("interval of zero", lambda f: _reencoded(f, _set("d", 0)), "interval 0 ns"),
    ("repeated sequence", lambda f: encode_frame(dataclasses.replace(f, seq=f.seq - 1)), "repeats or steps back"),
]


@pytest.mark.parametrize(("what", "spoil", "message"), BAD, ids=[b[0] for b in BAD])
def test_a_spoilt_stored_frame_fails_the_snapshot_with_its_reason(
    tmp_path: Path, what: str, spoil: Callable[[Frame], bytes], message: str
) -> None:
    """A stored payload (intact CRC) outside the contract names the reason; no table, no file."""
    buffer = make(tmp_path / "buf", interval_ns=INTERVAL, duration_ns=3600 * S, segment_span_ns=3 * S)
    agent = _Agent(_catalog("inst-a", BASE, "alpha"), seed=3)
    for i in range(60):
        frame = agent.frame(T0 + i * INTERVAL)
        _ingest(buffer, agent, frame, spoil(frame) if i == 45 else None)
    with pytest.raises(snapshot.SnapshotError, match=message) as caught:
        snapshot.build_table(buffer.select(0, 2**63 - 1), source="agent", interval_ns=INTERVAL)
    assert "\n" not in str(caught.value), what
    path = tmp_path / "snap.parquet"
    with pytest.raises(snapshot.SnapshotError, match=message):
        snapshot.write(buffer.select(0, 2**63 - 1), path, source="agent", interval_ns=INTERVAL)
    assert not path.exists()
    assert list(tmp_path.glob(".*tmp")) == []
    buffer.close()
