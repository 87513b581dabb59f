import pytest

from rezolus_recording.grid import Grid

SEC = 1_000_000_000
MS = 1_000_000
T0 = 1_800_000_000 * SEC


def _picks(grid, stamps, agent_interval):
    out = []
    for t in stamps:
        pick = grid.offer(t, agent_interval)
        if pick is not None:
            out.append((t, pick.slot, pick.missed))
    return out


def test_faster_agent_gives_the_frame_nearest_each_grid_point():
    """With a 100 ms agent and a 1 s grid, the rows are the frames on whole seconds."""
    grid = Grid(SEC)
    stamps = [T0 + 300 * MS + k * 100 * MS for k in range(40)]
    picks = _picks(grid, stamps, 100 * MS)
    assert [t for t, _, _ in picks] == [T0 + s * SEC for s in (1, 2, 3, 4)]
    assert [m for _, _, m in picks] == [0, 0, 0, 0]


def test_same_rate_agent_with_an_offset_clock_loses_no_rows():
    """An agent at the grid's rate but 300 ms off the grid still yields every frame."""
    grid = Grid(SEC)
    stamps = [T0 + 300 * MS + k * SEC for k in range(10)]
    assert len(_picks(grid, stamps, SEC)) == 10


def test_jitter_never_makes_a_gap():
    """Frames up to 49 ms (under half an interval) off their 100 ms grid are one row per slot."""
    grid = Grid(100 * MS)
    offsets = [0, 45, -40, 49, -49, 10, 30, -20]
    stamps = [T0 + k * 100 * MS + o * MS for k, o in enumerate(offsets)]
    picks = _picks(grid, stamps, 100 * MS)
    assert [m for _, _, m in picks] == [0] * len(offsets)
    assert [s for _, s, _ in picks] == list(range(picks[0][1], picks[0][1] + len(offsets)))


def test_missing_frames_count_as_missed_rows():
    """An outage of three frames shows up as missed = 3 on the next row."""
    grid = Grid(SEC)
    stamps = [T0, T0 + SEC, T0 + 5 * SEC, T0 + 6 * SEC]
    assert [m for _, _, m in _picks(grid, stamps, SEC)] == [0, 0, 3, 0]


def test_rows_stop_at_the_wanted_count():
    """With ``rows`` set, no slot after the last one is taken and ``done`` turns true."""
    grid = Grid(SEC, rows=3)
    stamps = [T0 + k * SEC for k in range(6)]
    picks = _picks(grid, stamps, SEC)
    assert len(picks) == 3
    assert grid.done
    assert grid.deadline_ns() == T0 + 2 * SEC


def test_a_frame_off_the_grid_does_not_start_the_recording():
    """The first row waits for a frame near a grid point."""
    grid = Grid(SEC)
    assert grid.offer(T0 + 300 * MS, 100 * MS) is None
    assert grid.offer(T0 + SEC, 100 * MS) is not None


def test_invalid_interval_is_refused():
    """A zero interval is a ValueError."""
    with pytest.raises(ValueError, match="positive"):
        Grid(0)


def test_an_agent_without_an_interval_still_gets_rows():
    """A frame that states no interval is matched with half the grid interval as tolerance."""
    grid = Grid(SEC)
    assert grid.offer(T0 + 200 * MS, 0) is not None


def test_late_frames_keep_their_own_slot_by_sequence():
    """Frames 70 ms late at 100 ms stay on their tick (by seq): no gap, no frame dropped."""
    grid = Grid(100 * MS)
    lateness = [0, 70, 0, 80, 75, 0, 10]
    picks = [
        grid.offer(T0 + k * 100 * MS + late * MS, 100 * MS, seq=k, instance="a")
        for k, late in enumerate(lateness)
    ]
    assert all(p is not None for p in picks)
    assert [p.missed for p in picks if p] == [0] * len(lateness)
    assert [p.slot for p in picks if p] == [T0 // (100 * MS) + k for k in range(len(lateness))]


def test_skipped_ticks_are_gaps_and_a_restart_reanchors():
    """A sequence jump is a gap of that many rows; a new instance anchors anew."""
    grid = Grid(SEC)
    assert grid.offer(T0, SEC, seq=5, instance="a").missed == 0
    assert grid.offer(T0 + 4 * SEC, SEC, seq=9, instance="a").missed == 3
    pick = grid.offer(T0 + 5 * SEC + 300 * MS, SEC, seq=0, instance="b")
    assert pick is not None
    assert pick.slot == T0 // SEC + 5


def test_a_sequence_that_does_not_track_ticks_reanchors():
    """If seq says one tick but 10 s passed, the timestamp wins (gap of 9 rows)."""
    grid = Grid(SEC)
    grid.offer(T0, SEC, seq=1, instance="a")
    pick = grid.offer(T0 + 10 * SEC, SEC, seq=2, instance="a")
    assert pick is not None
    assert pick.missed == 9
