"""Decoding many frames of one agent, each check done once per distinct array.

Invariants:
- ``FlatDecoder.decode`` gives the ``Frame`` ``frame.decode`` gives, accepts
  exactly the frame messages ``frame.decode`` accepts and raises ``DecodeError`` for every other message (the same
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

from typing import Any

import numpy as np

from rezolus_core.frame import (
    Catalog,
    DecodeError,
    Frame,
    MetricType,
    _check_buckets,
    _check_unique,
    check_scalars,
    frame_fields,
    message_body,
)

_KINDS = {MetricType.COUNTER: 0, MetricType.GAUGE: 1, MetricType.HISTOGRAM: 2}
_BEYOND = 3


def _body(data: bytes) -> dict[str, Any]:
    body = message_body(data)
    kind = body.get("k")
    if kind != "f":
        raise DecodeError(f"message kind {kind!r} is not a frame")
    return body


class FlatDecoder:
    """Decodes frame messages into ``Frame``s, remembering the id and bucket arrays last checked."""

    def __init__(self) -> None:
        self._passed: dict[str, tuple[object, ...]] = {}

    def _unchanged(self, what: str, key: tuple[object, ...]) -> bool:
        return self._passed.get(what) == key

    def decode(self, data: bytes) -> Frame:
        """Decode one frame message or raise ``DecodeError``."""
        body = _body(data)
        frame = frame_fields(body)
        check_scalars(frame)
        version = frame.catalog_version
        for what, ids, raw in (
            ("counter", frame.counter_ids, body["ci"]),
            ("gauge", frame.gauge_ids, body["gi"]),
            ("histogram", frame.hist_ids, body["hi"]),
        ):
            key = (version, raw)
            if not self._unchanged(what, key):
                _check_unique(ids, version, what)
                self._passed[what] = key
        buckets = (0, body["hi"], body["hn"], body["hx"])
        if not self._unchanged("buckets", buckets):
            _check_buckets(frame.hist_ids, frame.hist_sizes, frame.hist_indices)
            self._passed["buckets"] = buckets
        return frame


class IdCheck:
    """``frame.check_ids`` for flat frames; remembers the catalog and arrays it last passed."""

    def __init__(self) -> None:
        self._catalog: Catalog | None = None
        self._types = np.empty(0, np.uint8)
        self._passed: tuple[bytes, bytes, bytes] | None = None

    def check(self, frame: Frame, catalog: Catalog) -> None:
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
