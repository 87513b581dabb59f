"""``RecordingWriter(overlap=True)`` writes the same file as the plain writer and reports a failed row group."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rezolus_recording.builder import TableBuilder
from rezolus_recording.writer import RecordingWriter
from support import synth

SEC = 1_000_000_000
T0 = 1_800_000_000 * SEC


def _chunks() -> tuple[list[pa.Table], dict[str, str]]:
    builder = TableBuilder(source="s", interval_ns=SEC)
    cat = synth.catalog()
    builder.declare(cat)
    chunks = []
    for seq in range(10):
        builder.add(synth.delivery(cat, seq, T0 + seq * SEC))
        if seq % 4 == 3:
            chunks.append(builder.take())
    chunks.append(builder.take())
    return chunks, builder.file_metadata()


@pytest.mark.parametrize("overlap", [False, True])
def test_overlapped_row_groups_make_the_same_file(tmp_path, overlap):
    """Same row groups, values, schema and footer metadata with and without the background thread."""
    chunks, meta = _chunks()
    writer = RecordingWriter(tmp_path / "x.parquet", overlap=overlap)
    for chunk in chunks:
        writer.write(chunk)
    writer.commit(meta)
    reference = tmp_path / "ref.parquet"
    plain = RecordingWriter(reference)
    for chunk in chunks:
        plain.write(chunk)
    plain.commit(meta)
    got, want = pq.ParquetFile(tmp_path / "x.parquet"), pq.ParquetFile(reference)
    assert [got.metadata.row_group(i).num_rows for i in range(got.num_row_groups)] == [4, 4, 2]
    assert got.metadata.num_row_groups == want.metadata.num_row_groups
    assert got.read().equals(want.read())
    assert got.schema_arrow == want.schema_arrow
    assert got.metadata.metadata == want.metadata.metadata


def test_a_row_group_failing_in_the_background_fails_commit_and_leaves_no_file(tmp_path):
    """The thread's error surfaces at ``commit``, which removes the temp file."""
    chunks, meta = _chunks()
    target = tmp_path / "x.parquet"
    writer = RecordingWriter(target, overlap=True)
    writer.write(chunks[0])
    writer.write(chunks[1].drop_columns(["missed"]))  # a schema the file does not have
    with pytest.raises(ValueError, match="schema"):
        writer.commit(meta)
    assert list(tmp_path.iterdir()) == []
