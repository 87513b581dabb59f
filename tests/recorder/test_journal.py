import fcntl
import os

import pytest

from rezolus_recorder import journal


def _write(path, payloads):
    writer = journal.JournalWriter(path, {"source": "s"})
    for n, payload in enumerate(payloads):
        writer.append_row(n, 1000 + n, payload)
    writer.close()


def _rows(path, result=None):
    return [r.row() for r in journal.read_records(path, result) if r.kind == journal.KIND_ROW]


def test_records_round_trip_compressed_or_not(tmp_path):
    """Small and large (compressed) payloads come back byte for byte, in order."""
    path = tmp_path / "a.journal"
    payloads = [b"x", os.urandom(3000), b"y" * 5000]
    _write(path, payloads)
    records = list(journal.read_records(path))
    assert records[0].kind == journal.KIND_HEADER
    assert journal.header(records[0]) == {"source": "s"}
    assert _rows(path) == [(n, 1000 + n, p) for n, p in enumerate(payloads)]
    assert path.stat().st_size < sum(map(len, payloads))


def test_every_truncation_keeps_every_whole_record(tmp_path):
    """Cutting the file at any byte loses at most the record that the cut tore."""
    path = tmp_path / "a.journal"
    payloads = [bytes([n]) * (40 + 300 * n) for n in range(4)]
    _write(path, payloads)
    data = path.read_bytes()
    result = journal.ReadResult()
    ends = [len(journal.MAGIC)] + [result.valid_bytes for _ in journal.read_records(path, result)]
    cut_path = tmp_path / "cut.journal"
    for cut in range(len(journal.MAGIC), len(data) + 1):
        cut_path.write_bytes(data[:cut])
        result = journal.ReadResult()
        got = _rows(cut_path, result)
        whole = sum(1 for end in ends[2:] if end <= cut)
        assert got == [(n, 1000 + n, payloads[n]) for n in range(whole)], cut
        assert result.valid_bytes + result.discarded_bytes == cut
        assert (result.problem is None) == (cut in ends)


def test_a_flipped_bit_stops_reading_at_that_record(tmp_path):
    """A corrupted record fails its checksum; the records before it survive."""
    path = tmp_path / "a.journal"
    _write(path, [b"a" * 10, b"b" * 10, b"c" * 10])
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x40
    path.write_bytes(bytes(data))
    result = journal.ReadResult()
    assert [r[2] for r in _rows(path, result)] == [b"a" * 10, b"b" * 10]
    assert "checksum" in (result.problem or "")


def test_not_a_journal_is_a_clear_error(tmp_path):
    """Reading a file that is not a journal raises JournalError naming the file."""
    path = tmp_path / "x.journal"
    path.write_bytes(b"PAR1 something else")
    with pytest.raises(journal.JournalError, match="not a rezolus-recorder journal"):
        list(journal.read_records(path))


def test_a_journal_being_written_is_not_an_orphan(tmp_path):
    """The writer's lock marks the journal as live; after close it is an orphan."""
    path = tmp_path / "a.journal"
    writer = journal.JournalWriter(path, {})
    assert not journal.is_orphan(path)
    writer.close()
    assert journal.is_orphan(path)
    other = tmp_path / "b.journal"
    other.write_bytes(b"not ours")
    assert not journal.is_orphan(other)


def test_writer_refuses_an_existing_file(tmp_path):
    """A journal is never appended to or overwritten by a new writer."""
    path = tmp_path / "a.journal"
    path.write_bytes(b"keep")
    with pytest.raises(journal.JournalError, match="cannot create journal"):
        journal.JournalWriter(path, {})
    assert path.read_bytes() == b"keep"


def test_write_failure_is_a_journal_error(tmp_path):
    """An OS error while appending surfaces as JournalError with the OS reason."""
    path = tmp_path / "a.journal"
    writer = journal.JournalWriter(path, {})
    os.close(writer._fd)
    writer._fd = os.open(os.devnull, os.O_RDONLY)
    with pytest.raises(journal.JournalError, match="cannot write journal"):
        writer.append_row(0, 0, b"z")
    writer.close()
    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(fd)


def test_fsync_happens_about_every_second(tmp_path, monkeypatch):
    """Appends fsync once a second has passed since the last fsync, and idle ticks catch up."""
    clock = [1000.0]
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(journal.time, "monotonic", lambda: clock[0])
    writer = journal.JournalWriter(tmp_path / "a.journal", {})

    def counting_fsync(fd):
        synced.append(clock[0])
        real_fsync(fd)

    monkeypatch.setattr(journal.os, "fsync", counting_fsync)
    for n in range(10):
        clock[0] += 0.3
        writer.append_row(n, n, b"row")
    assert synced == pytest.approx([1001.2, 1002.4])
    clock[0] += 0.3
    writer.maybe_sync()
    assert len(synced) == 2
    clock[0] += 0.2
    writer.maybe_sync()
    assert len(synced) == 3
    clock[0] += 5
    writer.maybe_sync()
    assert len(synced) == 3
    writer.close()
