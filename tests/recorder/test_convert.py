import os

import pyarrow.parquet as pq

from rezolus_core.frame import encode_catalog, encode_frame
from rezolus_recorder import convert, journal
from rezolus_recording.builder import TableBuilder
from support import synth
from support.synth import SEC

T0 = 1_800_000_000 * SEC


def _journal(path, plan):
    """Write a journal from (catalog, seq, slot) steps, catalogs before their frames."""
    writer = journal.JournalWriter(path, {"source": "tcp://x", "interval_ns": SEC, "started_ns": 1})
    last = None
    for cat, seq, slot in plan:
        if last is not cat:
            writer.append(journal.KIND_CATALOG, encode_catalog(cat))
            last = cat
        frame = synth.frame(cat, seq, T0 + slot * SEC)
        writer.append_row(slot, frame.timestamp_ns, encode_frame(frame))
    writer.close()


PLAN_A, PLAN_B = synth.catalog("a"), synth.catalog("b", extra_cgroups=2)
PLAN = [(PLAN_A, s, s) for s in range(6)] + [(PLAN_B, s, 9 + s) for s in range(5)]


def test_conversion_matches_building_the_table_directly(tmp_path):
    """Replaying a journal gives the rows, gaps and restarts a direct TableBuilder gives."""
    path = tmp_path / "rec.parquet.journal"
    _journal(path, PLAN)
    result = convert.convert(path, tmp_path / "rec.parquet")
    assert not path.exists()
    got = pq.read_table(tmp_path / "rec.parquet")
    builder = TableBuilder(source="tcp://x", interval_ns=SEC)
    previous = None
    for cat, seq, slot in PLAN:
        if previous is not None and slot - previous > 1:
            builder.mark_gap(slot - previous - 1)
        builder.add(synth.delivery(cat, seq, T0 + slot * SEC, restarted=cat is PLAN_B and seq == 0))
        previous = slot
    want = builder.table()
    assert got.schema.names == want.schema.names
    for name in want.schema.names:
        assert got.column(name).to_pylist() == want.column(name).to_pylist(), name
    assert (result.rows, result.gaps, result.missed_rows, result.restarts) == (11, 1, 3, 1)
    assert got.schema.metadata[b"rows"] == b"11"


def test_small_chunks_write_the_same_file_contents(tmp_path):
    """Streaming in row groups of 4 rows yields the same rows and metadata as one group."""
    one, many = tmp_path / "one.parquet.journal", tmp_path / "many.parquet.journal"
    _journal(one, PLAN)
    _journal(many, PLAN)
    convert.convert(one, tmp_path / "one.parquet")
    convert.convert(many, tmp_path / "many.parquet", chunk_rows=4)
    a, b = pq.read_table(tmp_path / "one.parquet"), pq.read_table(tmp_path / "many.parquet")
    assert pq.read_metadata(tmp_path / "many.parquet").num_row_groups == 3
    assert a.to_pylist() == b.to_pylist()
    assert a.schema.metadata == b.schema.metadata
    assert a.schema == b.schema


def test_torn_tail_is_reported_and_the_rest_kept(tmp_path):
    """Cutting the journal mid-record keeps every earlier row and notes the torn bytes."""
    path = tmp_path / "rec.parquet.journal"
    _journal(path, PLAN)
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.truncate(size - 7)
    result = convert.convert(path, tmp_path / "rec.parquet")
    assert result.rows == len(PLAN) - 1
    assert result.read.discarded_bytes > 0
    table = pq.read_table(tmp_path / "rec.parquet")
    assert int(table.schema.metadata[b"recovered_torn_bytes"]) == result.read.discarded_bytes


def test_recovery_never_overwrites(tmp_path):
    """The recovery target is the journal's output name, else a fresh .recovered-N name."""
    path = tmp_path / "rec.parquet.journal"
    assert convert.recovery_target(path) == tmp_path / "rec.parquet"
    (tmp_path / "rec.parquet").write_bytes(b"x")
    assert convert.recovery_target(path) == tmp_path / "rec.recovered-1.parquet"
    (tmp_path / "rec.recovered-1.parquet").write_bytes(b"x")
    assert convert.recovery_target(path) == tmp_path / "rec.recovered-2.parquet"


def test_orphans_are_the_unlocked_journals(tmp_path):
    """find_orphans lists closed journals and skips ones a writer holds or foreign files."""
    closed = tmp_path / "a.parquet.journal"
    _journal(closed, PLAN[:2])
    held = journal.JournalWriter(tmp_path / "b.parquet.journal", {})
    (tmp_path / "c.journal").write_bytes(b"someone else's")
    try:
        assert convert.find_orphans(tmp_path) == [closed]
    finally:
        held.close()
    os.utime(closed, (1, 1))
    assert convert.find_orphans(tmp_path)[0] == closed
