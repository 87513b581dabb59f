import pytest

from rezolus_recorder.grid import Grid

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
