"""Conversion output stays the same across changes to the conversion itself.

``data/agent-20rows.parquet.journal`` is a journal of 20 frames of a live
``rezolus-agent`` (every default sampler, 100 ms) written the way the
recorder writes one; ``data/agent-20rows.parquet`` is what the recorder made
of it before the single-pass conversion (two passes, row groups of 1,024
rows).  Converting the journal now must give the same rows, columns, field
metadata and file metadata, however the rows are cut into row groups.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from rezolus_recorder import convert

DATA = Path(__file__).parent / "data"
JOURNAL = DATA / "agent-20rows.parquet.journal"
EXPECTED = DATA / "agent-20rows.parquet"
CHANGES = {b"version", b"ARROW:schema"}  # the package version; the schema is compared decoded


def _convert(tmp_path: Path, **kwargs: int) -> Path:
    journal = tmp_path / "rec.parquet.journal"
    shutil.copyfile(JOURNAL, journal)
    convert.convert(journal, tmp_path / "rec.parquet", **kwargs)
    return tmp_path / "rec.parquet"


def _assert_same_recording(got: Path, want: Path) -> None:
    a, b = pq.read_table(got), pq.read_table(want)
    assert a.num_rows == b.num_rows == 20
    assert a.schema.names == b.schema.names
    for mine, theirs in zip(a.schema, b.schema, strict=True):
        assert mine.type == theirs.type, mine.name
        assert mine.nullable == theirs.nullable, mine.name
        assert mine.metadata == theirs.metadata, mine.name
    meta_a = {k: v for k, v in (a.schema.metadata or {}).items() if k not in CHANGES}
    meta_b = {k: v for k, v in (b.schema.metadata or {}).items() if k not in CHANGES}
    assert meta_a == meta_b
    kv_a = {k: v for k, v in pq.read_metadata(got).metadata.items() if k not in CHANGES}
    kv_b = {k: v for k, v in pq.read_metadata(want).metadata.items() if k not in CHANGES}
    assert kv_a == kv_b
    for name in b.schema.names:
        assert a.column(name).to_pylist() == b.column(name).to_pylist(), name


def test_a_recorded_journal_converts_to_the_same_recording_as_before(tmp_path: Path) -> None:
    """One row group, as before: every value and every metadata key equal."""
    got = _convert(tmp_path)
    assert pq.read_metadata(got).num_row_groups == 1
    _assert_same_recording(got, EXPECTED)


@pytest.mark.parametrize("chunk_rows", [1, 3, 7])
def test_row_group_boundaries_do_not_change_the_recording(tmp_path: Path, chunk_rows: int) -> None:
    """Cut into row groups of a few rows, the file reads back the same."""
    got = _convert(tmp_path, chunk_rows=chunk_rows)
    assert pq.read_metadata(got).num_row_groups == -(-20 // chunk_rows)
    _assert_same_recording(got, EXPECTED)


def test_the_byte_budget_ends_row_groups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A row group ends once its rows need the byte budget, before ``chunk_rows`` is reached."""
    monkeypatch.setattr(convert, "ROW_GROUP_BYTES", 1)
    got = _convert(tmp_path)
    assert pq.read_metadata(got).num_row_groups == 20
    _assert_same_recording(got, EXPECTED)
