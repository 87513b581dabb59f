import os
import random
import shutil
import signal
import subprocess
import threading
import time

import pyarrow.parquet as pq
import pytest

from rezolus_recorder import journal
from support.env import require
from support.synth import MS, SEC, wait_until

KILL_ITERATIONS = 6


def _journal_rows(path):
    if not path.exists():
        return 0
    return sum(1 for r in journal.read_records(path) if r.kind == journal.KIND_ROW)


def _check_recovered(out, agent, killed_at_ns):
    """Every frame the agent published from the first row to 1 s before the kill is a row."""
    table = pq.read_table(out)
    stamps = table.column("timestamp").to_pylist()
    assert stamps == sorted(stamps)
    published = [f.timestamp_ns for f in agent.published]
    wanted = [t for t in published if stamps[0] <= t <= killed_at_ns - SEC]
    assert wanted, "the kill came too early to check anything"
    assert set(wanted) <= set(stamps)
    return len(stamps)


@pytest.mark.slow
def test_kill_9_at_random_moments_loses_at_most_the_last_second(
    tmp_path, endpoint, agents, recorder
):
    """After kill -9 at random moments, --recover yields every row up to 1 s before the kill."""
    agent = agents(endpoint, interval_ns=100 * MS)
    seed = random.SystemRandom().randrange(1 << 30)
    rng = random.Random(seed)
    print(f"seed {seed}")
    for iteration in range(KILL_ITERATIONS):
        out = tmp_path / f"run{iteration}.parquet"
        journal_file = tmp_path / f"run{iteration}.parquet.journal"
        proc = recorder("--source", endpoint, "--interval", "100ms", out)
        wait_until(lambda j=journal_file: _journal_rows(j) >= 1, 20, "a first row")
        threading.Event().wait(rng.uniform(1.1, 3.0))
        killed_at = time.time_ns()
        proc.proc.send_signal(signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
        assert not out.exists()
        # Both spellings work: the journal itself, or the recording it belongs to.
        recovered = recorder("--recover", journal_file if iteration % 2 else out)
        assert recovered.wait() == 0, recovered.stderr
        rows = _check_recovered(out, agent, killed_at)
        print(f"iteration {iteration}: {rows} rows recovered")
        assert not journal_file.exists()


@pytest.mark.slow
def test_next_run_recovers_a_killed_recording_automatically(
    tmp_path, endpoint, agents, recorder
):
    """A journal left by kill -9 becomes a parquet file when the recorder next starts there."""
    agent = agents(endpoint, interval_ns=100 * MS)
    out = tmp_path / "rec.parquet"
    journal_file = tmp_path / "rec.parquet.journal"
    proc = recorder("--source", endpoint, "--interval", "100ms", out)
    wait_until(lambda: _journal_rows(journal_file) >= 20, 20, "twenty rows")
    killed_at = time.time_ns()
    proc.proc.send_signal(signal.SIGKILL)
    proc.wait()
    rows = _journal_rows(journal_file)
    second = recorder("--source", endpoint, "--interval", "100ms", "--duration", "300ms", out)
    assert second.wait() == 2
    assert "exists" in second.stderr
    assert "recovered the journal" in second.stderr
    assert pq.read_table(out).num_rows == rows
    _check_recovered(out, agent, killed_at)
    assert not journal_file.exists()


def test_recover_refuses_a_journal_a_running_recorder_holds(tmp_path, recorder):
    """--recover leaves alone a journal whose writer still holds its lock."""
    path = tmp_path / "busy.parquet.journal"
    writer = journal.JournalWriter(path, {"source": "s"})
    try:
        proc = recorder("--recover", path)
        assert proc.wait() == 1
        assert "running recorder" in proc.stderr
        assert path.exists()
    finally:
        writer.close()


@pytest.fixture
def small_tmpfs(tmp_path):
    """Mount a tmpfs with about 48 KiB free; unmount it at teardown."""
    mount = tmp_path / "small"
    mount.mkdir()
    require(os.geteuid() == 0 and shutil.which("mount") is not None,
            "mounting a tmpfs needs root and mount(8)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    require(done.returncode == 0, f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        filler = mount / "filler"
        free = shutil.disk_usage(mount).free
        filler.write_bytes(b"\0" * (free - 48 * 1024))
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow
def test_disk_full_is_a_clear_error_and_the_rows_stay_recoverable(
    tmp_path, small_tmpfs, endpoint, agents, recorder
):
    """When the disk fills, the recorder exits 1 naming the problem; the journal recovers."""
    agents(endpoint, interval_ns=100 * MS, cpus=96)
    out = small_tmpfs / "rec.parquet"
    journal_file = small_tmpfs / "rec.parquet.journal"
    proc = recorder("--source", endpoint, "--interval", "100ms", "--duration", "5m", out)
    assert proc.wait(120) == 1
    line = [x for x in proc.stderr.splitlines() if "error:" in x]
    assert len(line) == 1, proc.stderr
    assert "No space left on device" in line[0]
    assert "Traceback" not in proc.stderr
    assert journal_file.exists()
    rows = _journal_rows(journal_file)
    assert rows >= 3
    rescued = tmp_path / "rescued.parquet.journal"
    shutil.copyfile(journal_file, rescued)
    recovered = recorder("--recover", rescued)
    assert recovered.wait() == 0, recovered.stderr
    table = pq.read_table(tmp_path / "rescued.parquet")
    assert table.num_rows == rows


def test_a_second_recorder_on_the_same_output_is_refused(tmp_path, recorder):
    """Recording into an OUTPUT whose journal a live recorder holds fails with one clear line."""
    out = tmp_path / "rec.parquet"
    writer = journal.JournalWriter(journal.journal_path(out), {"source": "s"})
    try:
        proc = recorder("--timeout", "1s", out)
        assert proc.wait() == 1
        assert "a running recorder is writing it" in proc.stderr
        assert journal.journal_path(out).exists()
    finally:
        writer.close()
