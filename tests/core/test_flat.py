"""Flat frames: ``FlatDecoder`` and ``IdCheck`` accept and reject exactly what ``decode`` and ``check_ids`` do."""

from __future__ import annotations

import dataclasses

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rezolus_core.flat import FlatDecoder, IdCheck
from rezolus_core.frame import DecodeError, Frame, HistogramValue, check_ids, decode, encode_frame
from support.frames import catalog, frame

_U16, _U32 = np.dtype("<u2"), np.dtype("<u4")
ARRAYS = {"ci": _U32, "gi": _U32, "hi": _U32, "hn": _U32, "hx": _U16}
SCALARS = ["s", "t", "m", "d", "c", "i", "h", "v", "k"]


def _wide() -> Frame:
    """A frame of version 8 with two histograms (ids 2 and 5), so arrays have room to go wrong."""
    base = frame(9, version=8)
    hists = (
        HistogramValue(2, np.array([1, 7, 30], np.uint16), np.array([1, 2, 3], np.uint64)),
        HistogramValue(5, np.array([0, 495], np.uint16), np.array([4, 5], np.uint64)),
    )
    return base.with_histograms(hists)


def _same(flat: Frame, want: Frame) -> None:
    for field in dataclasses.fields(Frame):
        got, expected = getattr(flat, field.name), getattr(want, field.name)
        if isinstance(expected, np.ndarray):
            assert got.dtype == expected.dtype, field.name
            assert got.tolist() == expected.tolist(), field.name
        else:
            assert got == expected, field.name


def _outcome(decode_one: object, payload: bytes) -> Frame | str:
    try:
        return decode_one(payload)  # type: ignore[operator,no-any-return]
    except DecodeError as exc:
        return f"DecodeError: {exc}"


@settings(max_examples=400, deadline=None)
@given(
    key=st.sampled_from([*ARRAYS, *SCALARS]),
    values=st.lists(st.integers(0, 600), max_size=6),
    scalar=st.one_of(st.integers(-(2**63), 2**64 - 1), st.text(max_size=3), st.none(), st.binary(max_size=4)),
)
def test_a_mutated_frame_decodes_flat_exactly_as_decode_does(key: str, values: list[int], scalar: object) -> None:
    """Same accept/reject and message as ``decode``, whether the decoder checked the original frame before or not."""
    good = encode_frame(_wide())
    body = msgpack.unpackb(good, raw=False)
    if key in ARRAYS:
        body[key] = np.array(values, dtype=np.uint64).astype(ARRAYS[key]).tobytes()
    else:
        body[key] = scalar
    payload = msgpack.packb(body, use_bin_type=True)
    want = _outcome(decode, payload)
    warmed = FlatDecoder()
    warmed.decode(good)
    for decoder in (FlatDecoder(), warmed):
        got = _outcome(decoder.decode, payload)
        if isinstance(want, Frame):
            assert isinstance(got, Frame)
            _same(got, want)
        elif isinstance(want, str) and key != "k":
            assert got == want
        else:  # another kind (a catalog, or one decode does not know): not a frame either way
            assert isinstance(got, str)
            assert "is not a frame" in got


def test_flat_decode_equals_decode() -> None:
    """Every array and scalar, dtypes included, for frames with and without histograms."""
    decoder = FlatDecoder()
    for original in (_wide(), _wide().with_histograms(()), frame(3)):
        payload = encode_frame(original)
        decoded = decode(payload)
        assert isinstance(decoded, Frame)
        _same(decoder.decode(payload), decoded)


@settings(max_examples=300, deadline=None)
@given(
    counters=st.lists(st.integers(0, 12), max_size=4),
    gauges=st.lists(st.integers(0, 12), max_size=3),
    hists=st.lists(st.integers(0, 12), max_size=3),
)
def test_id_check_agrees_with_check_ids(counters: list[int], gauges: list[int], hists: list[int]) -> None:
    """Ids beyond the catalog or of another type: the same verdict and message, before and after a pass."""
    cat = catalog(extra=5)  # ids 0 counter, 1 gauge, 2 histogram, 3.. counters
    original = frame(4, version=cat.version)
    changed = dataclasses.replace(
        original,
        counter_ids=np.array(counters, np.uint32), counter_values=np.zeros(len(counters), np.uint64),
        gauge_ids=np.array(gauges, np.uint32), gauge_values=np.zeros(len(gauges), np.int64),
    ).with_histograms([HistogramValue(h, np.array([1], np.uint16), np.array([1], np.uint64)) for h in hists])
    try:
        check_ids(changed, cat)
        want = None
    except DecodeError as exc:
        want = str(exc)
    warmed = IdCheck()
    warmed.check(original, cat)
    for check in (IdCheck(), warmed):
        if want is None:
            check.check(changed, cat)
        else:
            with pytest.raises(DecodeError) as caught:
                check.check(changed, cat)
            assert str(caught.value) == want
