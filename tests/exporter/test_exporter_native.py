"""Native histogram mapping: bucket keys against exact arithmetic, spans, and the stated quantile error."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rezolus_core import histogram
from rezolus_exporter import native

UNITS = ((1.0, 1e9), (1.0, 1.0), (1024.0, 1.0))
QUANTILES = (Fraction("0.5"), Fraction("0.9"), Fraction("0.99"), Fraction("0.999"))


def exact_key(value: float) -> int:
    """The k with 2**((k-1)/16) < value <= 2**(k/16), decided on value**16 as an exact fraction."""
    x = Fraction(value) ** (1 << native.SCHEMA)
    k = math.floor(math.log2(value) * (1 << native.SCHEMA))
    while Fraction(2) ** (k - 1) >= x:
        k -= 1
    while Fraction(2) ** k < x:
        k += 1
    return k


def test_keys_of_every_agent_bucket_bound_match_exact_arithmetic():
    """Each agent upper bound (ns->s, bytes, KiB) lands in the native bucket exact arithmetic says."""
    for multiplier, divisor in UNITS:
        keys = native.agent_keys(multiplier, divisor)
        upper = histogram.layout().upper.tolist()
        assert keys[0] == native.ZERO_KEY
        for u, key in zip(upper[1:], keys[1:].tolist(), strict=True):
            assert key == exact_key(u * multiplier / divisor), u


@given(st.floats(min_value=1e-300, max_value=1e300))
def test_key_of_matches_exact_arithmetic(value):
    """key_of agrees with the exact definition of the bucket boundaries for any positive float."""
    assert native.key_of(value) == exact_key(value)


def test_schema_is_the_coarsest_that_keeps_agent_buckets_apart():
    """At schema 4 no two agent buckets share a native bucket; at schema 3 some would."""
    keys = native.agent_keys(1.0, 1e9).tolist()
    assert len(set(keys)) == len(keys)
    upper = histogram.layout().upper.tolist()[1:]
    coarser = [math.ceil(math.log2(u / 1e9) * 8 - 1e-12) for u in upper]
    assert len(set(coarser)) < len(coarser)
    assert native.MAX_RELATIVE_ERROR == 2 ** (1 / 16) - 1


def prometheus_quantile(q: Fraction, buckets: native.NativeBuckets, count: int) -> float:
    """Prometheus 2.42's histogram_quantile on a native histogram (linear inside a bucket), exact rank."""
    rows = [(0.0, native.ZERO_THRESHOLD, buckets.zero_count)]
    rows += [(*native.bucket_bounds(k), c) for k, c in sorted(buckets.counts().items())]
    rank, seen = q * count, 0
    for lower, upper, c in rows:
        seen += c
        if seen >= rank and c:
            inside = rank - (seen - c)
            return lower + (upper - lower) * float(inside / c)
    return rows[-1][1]


values_ns = st.lists(
    st.one_of(
        st.integers(min_value=0, max_value=20),
        st.integers(min_value=0, max_value=2**40),
        st.integers(min_value=1000, max_value=5000),
    ),
    min_size=1,
    max_size=400,
)


@settings(max_examples=300, deadline=None)
@given(values_ns, st.sampled_from(UNITS))
def test_native_quantiles_stay_within_the_stated_error_of_the_agents(values, unit):
    """Brute force: the true quantile is in the agent's bucket; native answers within MAX_RELATIVE_ERROR of it."""
    multiplier, divisor = unit
    counts = histogram.from_values(values)
    buckets = native.to_native(counts, native.agent_keys(multiplier, divisor))
    ordered = sorted(values)
    lay = histogram.layout()
    for q in QUANTILES:
        target = max(1, math.ceil(q * len(values)))
        true_value = ordered[target - 1]
        (index,) = histogram.percentile_indices(counts, [float(q * 100)])
        assert index is not None
        assert int(lay.lower[index]) <= true_value <= int(lay.upper[index])
        agent = int(lay.upper[index]) * multiplier / divisor
        got = prometheus_quantile(q, buckets, len(values))
        if agent == 0:
            assert got <= native.ZERO_THRESHOLD
        else:
            assert abs(got / agent - 1) < native.MAX_RELATIVE_ERROR, (q, got, agent)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2**64 - 1), max_size=200), st.sampled_from(UNITS))
def test_spans_and_deltas_carry_every_count(values, unit):
    """Decoding spans and deltas gives back each agent bucket's count at its native key."""
    counts = histogram.from_values(values)
    keys = native.agent_keys(*unit)
    buckets = native.to_native(counts, keys)
    want: dict[int, int] = {}
    for i in np.flatnonzero(counts).tolist():
        if keys[i] != native.ZERO_KEY:
            want[int(keys[i])] = want.get(int(keys[i]), 0) + int(counts[i])
    decoded = buckets.counts()
    assert {k: c for k, c in decoded.items() if c} == want
    assert all(decoded[k] == 0 for k in decoded.keys() - want.keys())
    assert buckets.zero_count == int(counts[0])
    assert sum(length for _offset, length in buckets.spans) == len(buckets.deltas)
    assert all(length > 0 for _offset, length in buckets.spans) or buckets.spans == ((0, 0),)
    assert all(offset > native.MAX_FILLED_GAP for offset, _length in buckets.spans[1:])


def test_native_buckets_never_go_down_as_the_agent_counts_up():
    """Cumulative agent counts give native bucket counts that only grow (no false resets)."""
    rng = np.random.default_rng(7)
    keys = native.agent_keys(1.0, 1e9)
    counts = histogram.empty()
    previous: dict[int, int] = {}
    for _ in range(50):
        histogram.record(counts, rng.lognormal(10, 3, size=100).astype(np.uint64))
        now = native.to_native(counts, keys).counts()
        assert all(now.get(k, 0) >= c for k, c in previous.items())
        previous = now


def test_an_empty_histogram_is_still_recognisably_native():
    """No observations: a no-op span and a non-zero zero threshold, as Prometheus needs."""
    buckets = native.to_native(histogram.empty(), native.agent_keys(1.0, 1e9))
    assert buckets == native.NativeBuckets(0, ((0, 0),), ())
    assert native.ZERO_THRESHOLD > 0
