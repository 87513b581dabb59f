"""Histogram bucket math against a brute-force reference built from the documented formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rezolus_core import histogram

U64_MAX = 2**64 - 1


def reference_index(value: int, g: int) -> int:
    """The index formula of upstream-facts.md, in Python integers."""
    if value < 2 ** (g + 1):
        return value
    p = value.bit_length() - 1
    return (p - g + 1) * 2**g + ((value - 2**p) >> (p - g))


def reference_range(index: int, g: int) -> tuple[int, int]:
    """Bucket range formula of upstream-facts.md."""
    group, h = index >> g, index - ((index >> g) << g)
    if group == 0:
        return h, h
    lower = 2 ** (g + group - 1) + 2 ** (group - 1) * h
    return lower, lower + 2 ** (group - 1) - 1


interesting = st.one_of(
    st.integers(0, U64_MAX),
    st.integers(0, 64).map(lambda p: min(2**p, U64_MAX)),
    st.integers(1, 64).map(lambda p: 2**p - 1),
    st.integers(0, 63).map(lambda p: 2**p + 1),
)


def test_documented_checkpoints() -> None:
    """The layout has 496 buckets and maps 17, 1000 and 2^64-1 as documented."""
    lay = histogram.layout()
    assert lay.buckets == 496
    assert lay.index_one(17) == 16
    assert lay.index_one(1000) == 63
    assert (int(lay.lower[63]), int(lay.upper[63])) == (960, 1023)
    assert lay.index_one(U64_MAX) == 495
    assert int(lay.upper[495]) == U64_MAX
    assert [histogram.layout(g).buckets for g in (0, 1, 2)] == [65, 128, 252]


@settings(max_examples=400)
@given(st.lists(interesting, min_size=1, max_size=50), st.integers(0, 3))
def test_vectorised_index_matches_reference(values: list[int], g: int) -> None:
    """The numpy index equals the integer formula for any uint64, at every grouping power."""
    lay = histogram.layout(g)
    got = lay.index(np.array(values, dtype=np.uint64)).tolist()
    assert got == [reference_index(v, g) for v in values]
    assert [lay.index_one(v) for v in values] == got


@pytest.mark.parametrize("g", [0, 1, 2, 3])
def test_bounds_match_reference_and_tile_the_range(g: int) -> None:
    """Bucket bounds follow the formula, are contiguous and cover 0..2^64-1."""
    lay = histogram.layout(g)
    for i in range(lay.buckets - 1):
        assert (int(lay.lower[i]), int(lay.upper[i])) == reference_range(i, g)
        assert int(lay.upper[i]) + 1 == int(lay.lower[i + 1])
    assert int(lay.lower[0]) == 0
    assert int(lay.upper[-1]) == U64_MAX


@settings(max_examples=200)
@given(st.lists(interesting, min_size=1, max_size=30))
def test_value_lies_in_its_bucket(values: list[int]) -> None:
    """Every value falls between the bounds of the bucket it is indexed to."""
    lay = histogram.layout()
    for v in values:
        i = lay.index_one(v)
        assert int(lay.lower[i]) <= v <= int(lay.upper[i])


@settings(max_examples=200)
@given(
    st.lists(st.integers(0, 2**40), min_size=1, max_size=200),
    st.sampled_from([50.0, 90.0, 99.0, 99.9, 99.99, 100.0, 0.0]),
)
def test_percentile_matches_sorted_reference(values: list[int], p: float) -> None:
    """The percentile is the upper bound of the bucket holding the ceil(p·n)-th smallest value."""
    counts = histogram.from_values(values)
    rank = max(1, math.ceil(p / 100 * len(values)))
    expected_value = sorted(values)[rank - 1]
    lay = histogram.layout()
    assert histogram.percentiles(counts, [p]) == [int(lay.upper[lay.index_one(expected_value)])]


def test_empty_histogram_has_no_percentiles() -> None:
    """An empty histogram answers None for every percentile."""
    assert histogram.percentiles(histogram.empty()) == [None] * 5


def test_percentile_rejects_out_of_range() -> None:
    """A percentile above 100 is an error, not a silent clamp."""
    with pytest.raises(ValueError, match="outside"):
        histogram.percentiles(histogram.from_values([1]), [101])


def test_delta_and_reset() -> None:
    """Delta subtracts cumulative snapshots and reports a reset when any bucket went down."""
    older = histogram.from_values([1, 2, 3])
    newer = histogram.from_values([1, 2, 3, 1000, 1000])
    diff, reset = histogram.delta(newer, older)
    assert not reset
    assert histogram.total(diff) == 2
    assert histogram.percentiles(diff, [50]) == [1023]
    restarted, reset = histogram.delta(older, newer)
    assert reset
    assert np.array_equal(restarted, older)


def test_merge_adds() -> None:
    """Merging two histograms adds their buckets."""
    a, b = histogram.from_values([5, 6]), histogram.from_values([6, 2**63])
    merged = histogram.merge(a, b)
    assert histogram.total(merged) == 4
    assert int(merged[6]) == 2


@settings(max_examples=200)
@given(st.lists(interesting, min_size=1, max_size=60), st.integers(0, 2))
def test_downsample_matches_rebucketing_lower_bounds(values: list[int], g: int) -> None:
    """Downsampling equals re-bucketing each value's bucket lower bound at the coarser power."""
    fine = histogram.layout()
    counts = histogram.from_values(values)
    coarse = histogram.downsample(counts, g)
    coarse_layout = histogram.layout(g)
    expected = np.zeros(coarse_layout.buckets, dtype=np.uint64)
    for v in values:
        expected[coarse_layout.index_one(int(fine.lower[fine.index_one(v)]))] += 1
    assert np.array_equal(coarse, expected)
    assert histogram.total(coarse) == len(values)


def test_downsample_refuses_finer() -> None:
    """Downsampling to a finer grouping power is refused."""
    with pytest.raises(ValueError, match="cannot downsample"):
        histogram.downsample(histogram.empty(), 4)


def test_sparse_round_trip() -> None:
    """Sparse indices and counts rebuild the dense array exactly."""
    counts = histogram.from_values([0, 7, 7, 2**50, U64_MAX])
    idx, cnt = histogram.to_sparse(counts)
    assert idx.dtype == np.uint16
    assert np.array_equal(histogram.to_dense(idx, cnt), counts)
