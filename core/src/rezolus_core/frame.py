"""The frame contract: catalogs and frames, and their sans-IO msgpack codec.

Invariants:
- Encoding and decoding are pure functions over plain data; no sockets here.
- A catalog describes series once; it is append-only for the life of one agent
  instance, so ``catalog.version`` (its length) grows and a frame that needs
  version ``n`` can be read with any catalog of that instance whose version is
  ``>= n``.
- Counters (uint64) and histogram buckets (uint64) are cumulative since the
  agent instance started; gauges (int64) are instantaneous.
- Numeric payloads travel as little-endian packed arrays (one bytes object per
  array), so decoding is ``numpy.frombuffer`` and never one object per value.
- Histograms carry only non-zero buckets: per series the count of non-zero
  buckets, then all bucket indices (uint16) and counts (uint64) concatenated.
  A ``Frame`` holds them in that form (``hist_ids``, ``hist_sizes``,
  ``hist_indices``, ``hist_counts``), so encoding and decoding never make
  one object per histogram; ``frame.histograms``, one ``HistogramValue`` per
  series viewing those arrays, is made on first use and cached.
- ``decode`` raises ``DecodeError`` for anything that is not a well-formed
  message of a version it knows: garbage, truncation, wrong types, unknown
  future versions.  It never raises anything else for bad input.
- ``decode`` also refuses a message that is well-formed but outside the
  contract (``check_frame``, ``check_catalog``): bucket indices beyond the
  layout or not strictly increasing, repeated or out-of-catalog series ids,
  times, sequence numbers and intervals outside their ranges, catalogs with
  too many series or labels.  Every subscriber counts these as decode errors.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import msgpack
import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from numpy.typing import NDArray

FORMAT_VERSION = 1
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
BUCKETS = 496
MAX_SERIES = 1 << 20
MAX_LABELS = 64
MAX_TEXT = 4096
MAX_INT64 = 2**63 - 1
MAX_INTERVAL_NS = 86_400 * 1_000_000_000

_U16, _U32, _U64, _I64 = np.dtype("<u2"), np.dtype("<u4"), np.dtype("<u8"), np.dtype("<i8")


class DecodeError(ValueError):
    """A message could not be decoded; the message says why."""


class MetricType(enum.StrEnum):
    """The three kinds of series."""

    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


_TYPES = {t.value: t for t in MetricType}


@dataclass(frozen=True)
class SeriesSpec:
    """One series: a metric name plus labels, described once in the catalog."""

    id: int
    name: str
    type: MetricType
    labels: Mapping[str, str]
    unit: str
    description: str

    def key(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """Identity of the series independent of its id."""
        return self.name, tuple(sorted(self.labels.items()))


@dataclass(frozen=True)
class Catalog:
    """Every series an agent instance has announced, indexed by series id."""

    instance: str
    series: tuple[SeriesSpec, ...]
    host: Mapping[str, str] = field(default_factory=dict)

    @property
    def version(self) -> int:
        """Number of series; frames name the version they need."""
        return len(self.series)


@dataclass(frozen=True)
class HistogramValue:
    """Sparse cumulative bucket counts of one histogram series."""

    id: int
    indices: NDArray[np.uint16]
    counts: NDArray[np.uint64]


@dataclass(frozen=True)
class Frame:
    """One sample of every series at one instant, histograms as the wire carries them."""

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
    hist_ids: NDArray[np.uint32] = field(default_factory=lambda: np.empty(0, _U32))
    hist_sizes: NDArray[np.uint32] = field(default_factory=lambda: np.empty(0, _U32))
    hist_indices: NDArray[np.uint16] = field(default_factory=lambda: np.empty(0, _U16))
    hist_counts: NDArray[np.uint64] = field(default_factory=lambda: np.empty(0, _U64))

    @cached_property
    def histograms(self) -> tuple[HistogramValue, ...]:
        """One value per histogram series, its arrays views into ``hist_indices`` and ``hist_counts``."""
        ends = np.cumsum(self.hist_sizes, dtype=np.int64).tolist()
        indices, counts = self.hist_indices, self.hist_counts
        return tuple(
            HistogramValue(hid, indices[e - n : e], counts[e - n : e])
            for hid, n, e in zip(np.asarray(self.hist_ids).tolist(), self.hist_sizes.tolist(), ends, strict=True)
        )

    def with_histograms(self, histograms: Sequence[HistogramValue]) -> Frame:
        """This frame with ``histograms`` (in their order) in place of its own; each needs as many counts as indices."""
        count = len(histograms)
        if any(np.size(h.indices) != np.size(h.counts) for h in histograms):
            raise ValueError("a histogram has a different number of indices and counts")
        return dataclasses.replace(
            self,
            hist_ids=np.fromiter((h.id for h in histograms), _U32, count),
            hist_sizes=np.fromiter((np.size(h.indices) for h in histograms), _U32, count),
            hist_indices=np.concatenate([np.asarray(h.indices) for h in histograms]) if count else np.empty(0, _U16),
            hist_counts=np.concatenate([np.asarray(h.counts) for h in histograms]) if count else np.empty(0, _U64),
        )


def encode_catalog(catalog: Catalog) -> bytes:
    """Serialise a catalog."""
    rows = [[s.id, s.name, s.type.value, dict(s.labels), s.unit, s.description] for s in catalog.series]
    body = {"v": FORMAT_VERSION, "k": "c", "i": catalog.instance, "h": dict(catalog.host), "s": rows}
    return msgpack.packb(body, use_bin_type=True)  # type: ignore[no-any-return]


def encode_frame(frame: Frame) -> bytes:
    """Serialise a frame."""
    body = {
        "v": FORMAT_VERSION,
        "k": "f",
        "i": frame.instance,
        "s": frame.seq,
        "t": frame.timestamp_ns,
        "m": frame.monotonic_ns,
        "d": frame.interval_ns,
        "h": frame.host,
        "c": frame.catalog_version,
        "ci": np.ascontiguousarray(frame.counter_ids, _U32).tobytes(),
        "cv": np.ascontiguousarray(frame.counter_values, _U64).tobytes(),
        "gi": np.ascontiguousarray(frame.gauge_ids, _U32).tobytes(),
        "gv": np.ascontiguousarray(frame.gauge_values, _I64).tobytes(),
        "hi": np.ascontiguousarray(frame.hist_ids, _U32).tobytes(),
        "hn": np.ascontiguousarray(frame.hist_sizes, _U32).tobytes(),
        "hx": np.asarray(frame.hist_indices).astype(_U16, copy=False).tobytes(),
        "hc": np.asarray(frame.hist_counts).astype(_U64, copy=False).tobytes(),
    }
    return msgpack.packb(body, use_bin_type=True)  # type: ignore[no-any-return]


def message_body(data: bytes) -> dict[str, Any]:
    """The map of one message of this format version (kind not checked), or raise DecodeError."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    if len(data) > MAX_MESSAGE_BYTES:
        raise DecodeError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        body = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, ValueError) as exc:
        raise DecodeError(f"not a msgpack message: {exc}") from exc
    if not isinstance(body, dict):
        raise DecodeError(f"message is a {type(body).__name__}, not a map")
    version = body.get("v")
    if version != FORMAT_VERSION:
        raise DecodeError(f"unsupported format version {version!r} (this reader knows {FORMAT_VERSION})")
    return body


def decode(data: bytes) -> Catalog | Frame:
    """Decode one message into a Catalog or a Frame, or raise DecodeError."""
    body = message_body(data)
    kind = body.get("k")
    if kind == "c":
        return _decode_catalog(body)
    if kind == "f":
        frame = frame_fields(body)
        check_frame(frame)
        return frame
    raise DecodeError(f"unknown message kind {kind!r}")


def _get(body: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = body.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise DecodeError(f"field {key!r} is missing or not {kind}")
    return value


def _uint(body: dict[str, Any], key: str) -> int:
    value: int = _get(body, key, int)
    if value < 0:
        raise DecodeError(f"field {key!r} is negative")
    return value


def _array(body: dict[str, Any], key: str, dtype: np.dtype[Any]) -> NDArray[Any]:
    raw = _get(body, key, bytes)
    if len(raw) % dtype.itemsize:
        raise DecodeError(f"field {key!r} has {len(raw)} bytes, not a multiple of {dtype.itemsize}")
    return np.frombuffer(raw, dtype=dtype)


def _str_map(value: Any, what: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise DecodeError(f"{what} must map strings to strings")
    return value


def _decode_catalog(body: dict[str, Any]) -> Catalog:
    rows = _get(body, "s", list)
    series = []
    for position, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != 6:
            raise DecodeError(f"catalog row {position} is not a 6-element list")
        sid, name, type_name, labels, unit, description = row
        if sid != position:
            raise DecodeError(f"catalog row {position} has id {sid!r}")
        if not all(isinstance(x, str) for x in (name, type_name, unit, description)):
            raise DecodeError(f"catalog row {position} has a non-string field")
        metric_type = _TYPES.get(type_name)
        if metric_type is None:
            raise DecodeError(f"catalog row {position} has unknown type {type_name!r}")
        series.append(
            SeriesSpec(sid, name, metric_type, _str_map(labels, f"labels of row {position}"), unit, description)
        )
    catalog = Catalog(
        instance=_get(body, "i", str),
        series=tuple(series),
        host=_str_map(body.get("h", {}), "host"),
    )
    check_catalog(catalog)
    return catalog


def frame_fields(body: dict[str, Any]) -> Frame:
    """The frame a message body holds, its arrays' lengths checked but not yet its contract (``check_frame``)."""
    counter_ids, counter_values = _array(body, "ci", _U32), _array(body, "cv", _U64)
    gauge_ids, gauge_values = _array(body, "gi", _U32), _array(body, "gv", _I64)
    if counter_ids.size != counter_values.size or gauge_ids.size != gauge_values.size:
        raise DecodeError("series ids and values differ in length")
    hist_ids, hist_sizes = _array(body, "hi", _U32), _array(body, "hn", _U32)
    indices, counts = _array(body, "hx", _U16), _array(body, "hc", _U64)
    if hist_ids.size != hist_sizes.size or indices.size != counts.size:
        raise DecodeError("histogram arrays differ in length")
    if int(hist_sizes.sum(dtype=np.uint64)) != indices.size:
        raise DecodeError("histogram bucket counts do not add up to the bucket arrays")
    return Frame(
        _get(body, "i", str), _uint(body, "s"), _uint(body, "t"), _uint(body, "m"), _uint(body, "d"),
        _get(body, "h", str), _uint(body, "c"),
        counter_ids, counter_values, gauge_ids, gauge_values, hist_ids, hist_sizes, indices, counts,
    )


def _check_text(text: str, what: str) -> None:
    if len(text) > MAX_TEXT:
        raise DecodeError(f"{what} is longer than {MAX_TEXT} characters")


def check_catalog(catalog: Catalog) -> None:
    """Raise DecodeError unless the catalog keeps to the contract's limits."""
    if not 0 < len(catalog.instance) <= MAX_TEXT:
        raise DecodeError("catalog instance id is empty or too long")
    if len(catalog.series) > MAX_SERIES:
        raise DecodeError(f"catalog has {len(catalog.series)} series, more than {MAX_SERIES}")
    for spec in catalog.series:
        labels = spec.labels
        if len(labels) > MAX_LABELS:
            raise DecodeError(f"series {spec.id} has {len(labels)} labels, more than {MAX_LABELS}")
        longest = max(len(spec.name), len(spec.unit), len(spec.description),
                      max(map(len, labels), default=0), max(map(len, labels.values()), default=0))
        if longest > MAX_TEXT:
            raise DecodeError(f"a field of series {spec.id} is longer than {MAX_TEXT} characters")
        if not spec.name:
            raise DecodeError(f"series {spec.id} has an empty name")


def _check_unique(ids: NDArray[Any], version: int, what: str) -> None:
    if ids.size == 0:
        return
    if int(ids.max()) >= version:
        raise DecodeError(f"{what} id {int(ids.max())} is beyond the catalog version {version}")
    if not bool(np.all(ids[1:] > ids[:-1])):  # sorted ids cannot repeat
        ordered = np.sort(ids)
        if bool(np.any(ordered[1:] == ordered[:-1])):
            raise DecodeError(f"{what} ids repeat")


def _check_buckets(hist_ids: NDArray[Any], sizes: NDArray[Any], indices: NDArray[Any]) -> None:
    """Every bucket index below BUCKETS and strictly increasing within its histogram (vectorised)."""
    if indices.size == 0:
        return
    ends = np.cumsum(sizes, dtype=np.int64)
    top = int(np.argmax(indices))
    if int(indices[top]) >= BUCKETS:
        owner = int(hist_ids[int(np.searchsorted(ends, top, side="right"))])
        raise DecodeError(f"histogram {owner} has bucket index {int(indices[top])}, the layout has {BUCKETS}")
    rising = indices[1:] > indices[:-1]
    starts = ends[:-1]
    rising[starts[(starts > 0) & (starts < indices.size)] - 1] = True  # a new histogram may start lower
    if not bool(np.all(rising)):
        owner = int(hist_ids[int(np.searchsorted(ends, int(np.argmin(rising)) + 1, side="right"))])
        raise DecodeError(f"histogram {owner} bucket indices are not strictly increasing")


def check_scalars(frame: Frame) -> None:
    """Raise DecodeError unless the frame's texts, times, interval and catalog version are in range."""
    if not 0 < len(frame.instance) <= MAX_TEXT:
        raise DecodeError("frame instance id is empty or too long")
    _check_text(frame.host, "host")
    for what, value in (("seq", frame.seq), ("timestamp", frame.timestamp_ns), ("monotonic", frame.monotonic_ns)):
        if not 0 <= value <= MAX_INT64:
            raise DecodeError(f"{what} {value} is outside 0 .. 2**63-1")
    if not 0 < frame.interval_ns <= MAX_INTERVAL_NS:
        raise DecodeError(f"interval {frame.interval_ns} ns is outside 1 ns .. 1 day")
    if frame.catalog_version > MAX_SERIES:
        raise DecodeError(f"catalog version {frame.catalog_version} exceeds {MAX_SERIES}")


def _check_fields(frame: Frame) -> None:
    check_scalars(frame)
    _check_unique(np.asarray(frame.counter_ids), frame.catalog_version, "counter")
    _check_unique(np.asarray(frame.gauge_ids), frame.catalog_version, "gauge")


def check_frame(frame: Frame) -> None:
    """Raise DecodeError unless every value of the frame is inside the contract.

    Times, sequence numbers and the interval must fit int64 (the recording's
    columns), the interval lies in ``1 ns .. 1 day``, series ids of each type
    are unique and below the catalog version the frame names, and each
    histogram's bucket indices are strictly increasing and below ``BUCKETS``.
    """
    _check_fields(frame)
    hist_ids, sizes = np.asarray(frame.hist_ids), np.asarray(frame.hist_sizes)
    _check_unique(hist_ids, frame.catalog_version, "histogram")
    indices, total = np.asarray(frame.hist_indices), int(sizes.sum(dtype=np.uint64))
    if hist_ids.size != sizes.size or not total == indices.size == np.size(frame.hist_counts):
        raise DecodeError("a histogram has a different number of indices and counts")
    _check_buckets(hist_ids, sizes, indices)


def check_ids(frame: Frame, catalog: Catalog) -> None:
    """Raise DecodeError unless every id in the frame names a series of the right type."""
    if catalog.instance != frame.instance:
        raise DecodeError(f"catalog of {catalog.instance} cannot read a frame of {frame.instance}")
    if frame.catalog_version > catalog.version:
        raise DecodeError(f"frame needs catalog version {frame.catalog_version}, have {catalog.version}")
    series, version = catalog.series, catalog.version
    for ids, want in (
        (frame.counter_ids.tolist(), MetricType.COUNTER),
        (frame.gauge_ids.tolist(), MetricType.GAUGE),
        (np.asarray(frame.hist_ids).tolist(), MetricType.HISTOGRAM),
    ):
        for sid in ids:
            if sid >= version or series[sid].type is not want:
                raise DecodeError(f"series id {sid} is not a {want.value} in the catalog")


def iter_values(frame: Frame, catalog: Catalog) -> Iterator[tuple[SeriesSpec, int | HistogramValue]]:
    """Each series of the frame with its value, joined to the catalog."""
    series = catalog.series
    for sid, value in zip(frame.counter_ids.tolist(), frame.counter_values.tolist(), strict=True):
        yield series[sid], value
    for sid, value in zip(frame.gauge_ids.tolist(), frame.gauge_values.tolist(), strict=True):
        yield series[sid], value
    for hist in frame.histograms:
        yield series[hist.id], hist
