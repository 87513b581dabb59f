"""One message that decodes but lies never breaks the tracker or a subscriber (property-based).

The stream is an honest agent's catalog and frames; hypothesis picks one
position and one lie (one field or one array element of the next frame, or
a catalog that rewrites history), inserted before that frame or replacing
it.  After every message: no exception, nothing served goes backwards
without a marked reset, the exporter's window and hindsight's retained rows
never shrink, nothing from the future is stored.  At the end: every honest
frame from ``BOUND`` messages after the lie on was delivered, none later
than ``CONFIRM - 1`` messages after it arrived, and the recorder and
hindsight hold rows up to the last honest frame.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from adversary import CONFIRM, FIGURES, T0, S, Subscribers, catalog, catalog_lie, honest, mutate, write_figures
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rezolus_core.frame import encode_catalog, encode_frame

FRAMES = 16
BOUND = 4
YEARS_50 = 50 * 365 * 86_400 * S
U64 = 2**64 - 1
I63 = 2**63 - 1

FIELD_LIES = st.one_of(
    st.tuples(st.just("s"), st.one_of(st.sampled_from([0, 1, 2, 1000, 10**12, I63]), st.integers(0, I63))),
    st.tuples(
        st.just("t"),
        st.one_of(st.sampled_from([0, T0 + YEARS_50, T0 + 3600 * S, T0 - 3600 * S, I63]), st.integers(0, I63)),
    ),
    st.tuples(st.just("m"), st.integers(0, I63)),
    st.tuples(st.just("d"), st.one_of(st.sampled_from([1, 2 * S, 86_400 * S]), st.integers(1, 86_400 * S))),
    st.tuples(st.just("i"), st.sampled_from(["b" * 32, "", "a" * 31])),
    st.tuples(st.just("c"), st.one_of(st.sampled_from([0, 4, 6, 1 << 20, (1 << 20) + 1]), st.integers(0, I63))),
    st.tuples(st.sampled_from(["ci", "gi", "hi"]), st.one_of(st.integers(0, 6), st.integers(0, 2**32 - 1))),
    st.tuples(st.sampled_from(["cv", "hc"]), st.one_of(st.sampled_from([0, 1, U64]), st.integers(0, U64))),
    st.tuples(st.just("gv"), st.integers(-(2**63), I63)),
    st.tuples(st.just("hx"), st.one_of(st.sampled_from([495, 496, 600, 65535]), st.integers(0, 65535))),
    st.tuples(st.just("hn"), st.integers(0, 2**32 - 1)),
)
CATALOG_LIES = st.tuples(st.sampled_from(["shorter", "retype", "relabel", "instance"]), st.integers(0, 1000))


def run_stream(lie: Any, position: int, *, replace: bool, element: int, is_catalog: bool) -> Subscribers:
    """Feed catalog, frames 1..FRAMES with the lie at ``position``; check the end-of-stream invariants."""
    with tempfile.TemporaryDirectory() as tmp:
        subs = Subscribers(Path(tmp), clock=lambda: T0 + 10_000 * S)
        try:
            subs.feed(encode_catalog(catalog()))
            arrival: dict[int, int] = {}
            lie_at = None
            for seq in range(1, FRAMES + 1):
                payload = encode_frame(honest(seq))
                if seq == position:
                    bad = catalog_lie(*lie) if is_catalog else mutate(payload, lie[0], lie[1], element)
                    subs.feed(bad)
                    lie_at = subs.messages
                    if replace and not is_catalog:
                        continue
                subs.feed(payload)
                arrival[seq] = subs.messages
                if seq % 5 == 0:
                    subs.feed(encode_catalog(catalog()))  # the agent republishes its catalog
            assert lie_at is not None
            outcome(subs)
            check_delivery(subs, arrival, lie_at)
            check_rows(subs)
        finally:
            subs.close()
    return subs


def outcome(subs: Subscribers) -> None:
    """Count what became of the lie, for docs/reliability.md."""
    stats = subs.tracker.stats
    if stats.decode_errors:
        FIGURES["lie refused by decode or the catalog check"] += 1
    elif stats.suspect:
        FIGURES["lie dropped as suspect"] += 1
    elif stats.resyncs:
        FIGURES["lie delivered, then honest frames resynced"] += 1
    elif stats.duplicates:
        FIGURES["lie or honest frames dropped as duplicates"] += 1
    else:
        FIGURES["lie changed nothing the tracker checks (a gauge, a small seq step, a waiting frame)"] += 1


def check_delivery(subs: Subscribers, arrival: dict[int, int], lie_at: int) -> None:
    """Honest frames after the lie are delivered, and promptly."""
    delivered_at = {d.frame.seq: at for at, d in subs.delivered if _same(d, d.frame.seq)}
    for seq, at in arrival.items():
        if at < lie_at + BOUND:
            continue
        assert seq in delivered_at, f"honest frame {seq} (message {at}, lie at {lie_at}) was never delivered"
        assert delivered_at[seq] - at <= CONFIRM - 1, f"frame {seq} waited {delivered_at[seq] - at} messages"
        FIGURES["tracker: honest frames after the lie delivered in time"] += 1


def _same(delivery: Any, seq: int) -> bool:
    return encode_frame(delivery.frame) == encode_frame(honest(seq))


def check_rows(subs: Subscribers) -> None:
    """The recorder and hindsight keep taking rows up to the last honest frame."""
    last = T0 + FRAMES * S
    assert subs.buffer.newest_ns == last, "hindsight stopped storing"
    FIGURES["hindsight: stores up to the last honest frame"] += 1
    assert subs.buffer.rows() >= FRAMES - BOUND
    grid = subs.recorder.grid
    assert grid.last_taken == last // S, "the recorder stopped taking rows"
    assert subs.recorder.rows >= FRAMES - BOUND
    FIGURES["recorder: rows up to the last honest frame"] += 1


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lie=FIELD_LIES,
    position=st.integers(3, FRAMES - BOUND - CONFIRM),
    replace=st.booleans(),
    element=st.integers(0, 50),
)
def test_one_lying_frame(lie: tuple[str, Any], position: int, *, replace: bool, element: int) -> None:
    """One frame with one field or element changed breaks nothing downstream."""
    FIGURES["frame lies tried"] += 1
    run_stream(lie, position, replace=replace, element=element, is_catalog=False)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lie=CATALOG_LIES, position=st.integers(3, FRAMES - BOUND - CONFIRM))
def test_one_lying_catalog(lie: tuple[str, int], position: int) -> None:
    """A catalog that rewrites series, shrinks, or names another instance changes nothing served."""
    FIGURES["catalog lies tried"] += 1
    subs = run_stream(lie, position, replace=False, element=0, is_catalog=True)
    assert subs.tracker.stats.restarts == 0


@pytest.fixture(autouse=True, scope="module")
def _figures() -> Any:
    yield
    write_figures()
