"""Frames as flat arrays: decoding many frames without one object per histogram.

Invariants:
- A ``FlatFrame`` holds exactly what a ``Frame`` holds, with its histograms
  as the wire carries them: ids, then each histogram's bucket count, then
  every histogram's bucket indices and counts concatenated.  ``flatten(f)``
  of a decoded frame and ``FlatDecoder().decode`` of the same message give
  equal arrays.
- ``FlatDecoder.decode`` accepts exactly the frame messages ``frame.decode``
  accepts and raises ``DecodeError`` for every other message (the same
  contract checks).  The checks of an id or bucket array are not repeated
  when the array is byte for byte the one of the previous frame that passed
  them (with the same catalog version): frames of one agent repeat their id
  arrays, so those checks cost one comparison per frame.
- ``IdCheck.check`` is ``frame.check_ids`` for flat frames: every id below
  the catalog's version and naming a series of its array's type, vectorised
  and likewise not repeated for the previous frame's arrays and catalog.
- Everything here is pure: no IO, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rezolus_core.frame import (
    _U16,
    _U32,
    _U64,
    Catalog,
    DecodeError,
    Frame,
    MetricType,
    _array,
    _check_buckets,
    _check_unique,
    _get,
    _uint,
    check_scalars,
    message_body,
)

if TYPE_CHECKING:
    from numpy.typing import NDArray

_KINDS = {MetricType.COUNTER: 0, MetricType.GAUGE: 1, MetricType.HISTOGRAM: 2}
_BEYOND = 3


@dataclass(frozen=True, slots=True)
class FlatFrame:
    """One sample of every series at one instant, histograms concatenated."""

    instance: str
    seq: int
    timestamp_ns: int
    monotonic_ns: int
    interval_ns: int
    host: str
    catalog_version: int
    counter_ids: NDArray[np.uint32]
    counter_values: NDArray[np.uint64]
    gauge_ids: NDArray[np.uint32]
    gauge_values: NDArray[np.int64]
    hist_ids: NDArray[np.uint32]
    hist_sizes: NDArray[np.uint32]
    hist_indices: NDArray[np.uint16]
    hist_counts: NDArray[np.uint64]


def flatten(frame: Frame) -> FlatFrame:
    """The flat form of a decoded frame."""
    hists = frame.histograms
    count = len(hists)
    return FlatFrame(
        frame.instance, frame.seq, frame.timestamp_ns, frame.monotonic_ns, frame.interval_ns, frame.host,
        frame.catalog_version, frame.counter_ids, frame.counter_values, frame.gauge_ids, frame.gauge_values,
        np.fromiter((h.id for h in hists), _U32, count),
        np.fromiter((h.indices.size for h in hists), _U32, count),
        np.concatenate([h.indices for h in hists]) if count else np.empty(0, _U16),
        np.concatenate([h.counts for h in hists]) if count else np.empty(0, _U64),
    )


def _body(data: bytes) -> dict[str, Any]:
    body = message_body(data)
    kind = body.get("k")
    if kind != "f":
        raise DecodeError(f"message kind {kind!r} is not a frame")
    return body


class FlatDecoder:
    """Decodes frame messages into ``FlatFrame``s, remembering the id and bucket arrays last checked."""

    def __init__(self) -> None:
        self._passed: dict[str, tuple[object, ...]] = {}

    def _unchanged(self, what: str, key: tuple[object, ...]) -> bool:
        return self._passed.get(what) == key

    def decode(self, data: bytes) -> FlatFrame:
        """Decode one frame message or raise ``DecodeError``."""
        body = _body(data)
        counter_ids, counter_values = _array(body, "ci", _U32), _array(body, "cv", _U64)
        gauge_ids, gauge_values = _array(body, "gi", _U32), _array(body, "gv", np.dtype("<i8"))
        if counter_ids.size != counter_values.size or gauge_ids.size != gauge_values.size:
            raise DecodeError("series ids and values differ in length")
        hist_ids, hist_sizes = _array(body, "hi", _U32), _array(body, "hn", _U32)
        indices, counts = _array(body, "hx", _U16), _array(body, "hc", _U64)
        if hist_ids.size != hist_sizes.size or indices.size != counts.size:
            raise DecodeError("histogram arrays differ in length")
        if int(hist_sizes.sum(dtype=np.uint64)) != indices.size:
            raise DecodeError("histogram bucket counts do not add up to the bucket arrays")
        frame = FlatFrame(
            _get(body, "i", str), _uint(body, "s"), _uint(body, "t"), _uint(body, "m"), _uint(body, "d"),
            _get(body, "h", str), _uint(body, "c"),
            counter_ids, counter_values, gauge_ids, gauge_values, hist_ids, hist_sizes, indices, counts,
        )
        check_scalars(frame)
        version = frame.catalog_version
        for what, ids, raw in (
            ("counter", counter_ids, body["ci"]), ("gauge", gauge_ids, body["gi"]), ("histogram", hist_ids, body["hi"])
        ):
            key = (version, raw)
            if not self._unchanged(what, key):
                _check_unique(ids, version, what)
                self._passed[what] = key
        buckets = (0, body["hi"], body["hn"], body["hx"])
        if not self._unchanged("buckets", buckets):
            _check_buckets(hist_ids, hist_sizes, indices)
            self._passed["buckets"] = buckets
        return frame


class IdCheck:
    """``frame.check_ids`` for flat frames; remembers the catalog and arrays it last passed."""

    def __init__(self) -> None:
        self._catalog: Catalog | None = None
        self._types = np.empty(0, np.uint8)
        self._passed: tuple[bytes, bytes, bytes] | None = None

    def check(self, frame: FlatFrame, catalog: Catalog) -> None:
        """Raise ``DecodeError`` unless every id of ``frame`` names a series of its type in ``catalog``."""
        if catalog.instance != frame.instance:
            raise DecodeError(f"catalog of {catalog.instance} cannot read a frame of {frame.instance}")
        if frame.catalog_version > catalog.version:
            raise DecodeError(f"frame needs catalog version {frame.catalog_version}, have {catalog.version}")
        if catalog is not self._catalog:
            self._catalog, self._passed = catalog, None
            types = (_KINDS[s.type] for s in catalog.series)  # then _BEYOND for every id past the catalog
            self._types = np.fromiter((*types, _BEYOND), np.uint8, catalog.version + 1)
        arrays = (frame.counter_ids, frame.gauge_ids, frame.hist_ids)
        key = (arrays[0].tobytes(), arrays[1].tobytes(), arrays[2].tobytes())
        if key == self._passed:
            return
        for ids, want in zip(arrays, MetricType, strict=True):
            bad = self._types[np.minimum(ids, catalog.version)] != _KINDS[want]
            if bool(bad.any()):
                raise DecodeError(f"series id {int(ids[int(np.argmax(bad))])} is not a {want.value} in the catalog")
        self._passed = key
