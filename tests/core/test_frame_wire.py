"""Frames holding histograms flat encode to the bytes the per-histogram encoder gave, and decode back."""

from __future__ import annotations

import msgpack
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rezolus_core.flat import FlatDecoder
from rezolus_core.frame import BUCKETS, FORMAT_VERSION, Frame, HistogramValue, decode, encode_frame

U16, U32, U64, I64 = np.dtype("<u2"), np.dtype("<u4"), np.dtype("<u8"), np.dtype("<i8")


def reference_encoding(frame: Frame, hists: list[HistogramValue]) -> bytes:
    """The encoder as it was: one value object per histogram, their ids, sizes and arrays gathered one by one."""
    def joined(parts: list[np.ndarray], dtype: np.dtype) -> bytes:
        return np.concatenate(parts).astype(dtype, copy=False).tobytes() if parts else b""

    body = {
        "v": FORMAT_VERSION, "k": "f", "i": frame.instance, "s": frame.seq, "t": frame.timestamp_ns,
        "m": frame.monotonic_ns, "d": frame.interval_ns, "h": frame.host, "c": frame.catalog_version,
        "ci": np.ascontiguousarray(frame.counter_ids, U32).tobytes(),
        "cv": np.ascontiguousarray(frame.counter_values, U64).tobytes(),
        "gi": np.ascontiguousarray(frame.gauge_ids, U32).tobytes(),
        "gv": np.ascontiguousarray(frame.gauge_values, I64).tobytes(),
        "hi": np.fromiter((h.id for h in hists), U32, len(hists)).tobytes(),
        "hn": np.fromiter((h.indices.size for h in hists), U32, len(hists)).tobytes(),
        "hx": joined([h.indices for h in hists], U16),
        "hc": joined([h.counts for h in hists], U64),
    }
    return msgpack.packb(body, use_bin_type=True)  # type: ignore[no-any-return]


@st.composite
def frames(draw: st.DrawFn) -> tuple[Frame, list[HistogramValue]]:
    """A frame of random scalars, counters, gauges and histograms (some empty), with its histograms as values."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    counters, gauges, count = draw(st.integers(0, 20)), draw(st.integers(0, 20)), draw(st.integers(0, 40))
    ids = rng.permutation(counters + gauges + count + 5).astype(np.uint32)
    hists = []
    for sid in ids[counters + gauges : counters + gauges + count].tolist():
        size = int(rng.integers(0, 12))
        indices = np.sort(rng.choice(BUCKETS, size, replace=False)).astype(np.uint16)
        hists.append(HistogramValue(sid, indices, rng.integers(0, 2**64 - 1, size, dtype=np.uint64)))
    frame = Frame(
        draw(st.text(min_size=1, max_size=8)), draw(st.integers(0, 2**63 - 1)), draw(st.integers(0, 2**63 - 1)),
        draw(st.integers(0, 2**63 - 1)), draw(st.integers(1, 86_400 * 10**9)), draw(st.text(max_size=8)),
        ids.size, ids[:counters], rng.integers(0, 2**64 - 1, counters, dtype=np.uint64),
        ids[counters : counters + gauges], rng.integers(-(2**63), 2**63 - 1, gauges, dtype=np.int64),
    ).with_histograms(hists)
    return frame, hists


@settings(max_examples=300, deadline=None)
@given(case=frames())
def test_encoding_equals_the_per_histogram_encoding(case: tuple[Frame, list[HistogramValue]]) -> None:
    """Byte for byte the old encoder's message; both decoders give the same histograms back, cached."""
    frame, hists = case
    payload = encode_frame(frame)
    assert payload == reference_encoding(frame, hists)
    for decoded in (decode(payload), FlatDecoder().decode(payload)):
        assert isinstance(decoded, Frame)
        assert encode_frame(decoded) == payload
        got = [(h.id, h.indices.tolist(), h.counts.tolist()) for h in decoded.histograms]
        assert got == [(h.id, h.indices.tolist(), h.counts.tolist()) for h in hists]
        assert decoded.histograms is decoded.histograms
