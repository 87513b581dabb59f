"""The frame codec: round trips, compactness, and clean rejection of bad input."""

from __future__ import annotations

import contextlib
import dataclasses

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rezolus_core.frame import (
    Catalog,
    DecodeError,
    Frame,
    check_ids,
    decode,
    encode_catalog,
    encode_frame,
    iter_values,
)
from support.frames import catalog, frame


def test_catalog_round_trip() -> None:
    """A catalog decodes to an equal catalog."""
    original = catalog(extra=5)
    decoded = decode(encode_catalog(original))
    assert isinstance(decoded, Catalog)
    assert decoded == original
    assert decoded.version == 8


def test_frame_round_trip() -> None:
    """Every field and value of a frame survives encode and decode."""
    original = frame(7)
    decoded = decode(encode_frame(original))
    assert isinstance(decoded, Frame)
    assert (decoded.instance, decoded.seq, decoded.timestamp_ns) == (original.instance, 7, original.timestamp_ns)
    assert decoded.counter_values.tolist() == [7000]
    assert decoded.gauge_values.tolist() == [-7]
    assert decoded.histograms[0].indices.tolist() == original.histograms[0].indices.tolist()
    assert decoded.histograms[0].counts.tolist() == original.histograms[0].counts.tolist()
    check_ids(decoded, catalog())
    names = [spec.name for spec, _ in iter_values(decoded, catalog())]
    assert names == ["cpu_usage", "memory_free", "syscall_latency"]


def test_full_uint64_counter_survives() -> None:
    """A counter at 2^64-1 is carried exactly."""
    original = frame(1, value=2**64 - 1)
    decoded = decode(encode_frame(original))
    assert isinstance(decoded, Frame)
    assert int(decoded.counter_values[0]) == 2**64 - 1


def test_histograms_are_sparse() -> None:
    """Only non-zero buckets travel: a 3-value histogram costs a few dozen bytes, not 496 counts."""
    assert len(encode_frame(frame(1))) < 400


def test_unknown_future_version_is_rejected() -> None:
    """A message from a newer format version raises DecodeError naming the version."""
    body = msgpack.unpackb(encode_frame(frame(1)))
    body["v"] = 99
    with pytest.raises(DecodeError, match="version 99"):
        decode(msgpack.packb(body))


def test_truncated_frame_is_rejected() -> None:
    """Every strict prefix of a frame raises DecodeError, never anything else."""
    data = encode_frame(frame(3))
    for cut in range(len(data)):
        with pytest.raises(DecodeError):
            decode(data[:cut])


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_garbage_raises_only_decode_error(data: bytes) -> None:
    """Arbitrary bytes either decode or raise DecodeError."""
    with contextlib.suppress(DecodeError):
        decode(data)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("cv", b"\x00" * 7, "multiple of 8"),
        ("ci", b"", "differ in length"),
        ("s", -1, "negative"),
        ("s", "one", "not"),
        ("hn", b"\x05\x00\x00\x00", "add up"),
        ("k", "z", "unknown message kind"),
    ],
)
def test_malformed_fields_are_named(key: str, value: object, message: str) -> None:
    """A malformed field raises DecodeError with a message that says what is wrong."""
    body = msgpack.unpackb(encode_frame(frame(1)))
    body[key] = value
    with pytest.raises(DecodeError, match=message):
        decode(msgpack.packb(body))


def test_check_ids_rejects_type_confusion() -> None:
    """A frame whose counter id names a histogram in the catalog is rejected."""
    bad = frame(1)
    bad = dataclasses.replace(bad, counter_ids=np.array([2], dtype=np.uint32))
    with pytest.raises(DecodeError, match="not a counter"):
        check_ids(bad, catalog())


def test_check_ids_needs_new_enough_catalog() -> None:
    """A frame that needs a newer catalog than the one held is rejected."""
    with pytest.raises(DecodeError, match="needs catalog version 5"):
        check_ids(frame(1, version=5), catalog())
