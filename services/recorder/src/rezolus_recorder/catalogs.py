"""Catalogs in the journal: an instance's first catalog in full, later ones as the series they add.

Invariants:
- Catalogs of one agent instance are append-only (see ``rezolus_core.frame``),
  so catalog version ``v`` is the previous version plus series
  ``[previous.version, v)``.  With cgroups coming and going the agent
  announces hundreds of versions; journaling only the added series keeps the
  journal small and the replay linear in the number of series.
- ``CatalogJournal.records`` says what to append before a row that needs a
  catalog: nothing if the journal already covers it, the full bus encoding
  for a new instance (or one whose catalog shrank), else a delta record.
- ``CatalogReplay`` rebuilds exactly the catalogs the recorder saw; a delta
  that does not continue the catalog it names raises ``DecodeError``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgpack

from rezolus_core.frame import Catalog, DecodeError, MetricType, SeriesSpec, decode, encode_catalog
from rezolus_recording.records import KIND_CATALOG, KIND_SERIES

if TYPE_CHECKING:
    from collections.abc import Mapping



def encode_delta(catalog: Catalog, start: int) -> bytes:
    """Encode the series of ``catalog`` from id ``start`` on."""
    rows = [
        [s.id, s.name, s.type.value, dict(s.labels), s.unit, s.description]
        for s in catalog.series[start:]
    ]
    return msgpack.packb({"i": catalog.instance, "f": start, "s": rows}, use_bin_type=True)  # type: ignore[no-any-return]


def _spec(row: Any, expected_id: int) -> SeriesSpec:
    if not isinstance(row, list) or len(row) != 6:
        raise DecodeError(f"series row {expected_id} is not a 6-element list")
    sid, name, kind, labels, unit, description = row
    if sid != expected_id:
        raise DecodeError(f"series row has id {sid!r}, expected {expected_id}")
    if not all(isinstance(x, str) for x in (name, kind, unit, description)):
        raise DecodeError(f"series row {sid} has a non-string field")
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise DecodeError(f"labels of series {sid} must map strings to strings")
    try:
        metric_type = MetricType(kind)
    except ValueError as exc:
        raise DecodeError(f"series {sid} has unknown type {kind!r}") from exc
    return SeriesSpec(sid, name, metric_type, labels, unit, description)


def apply_delta(catalogs: Mapping[str, Catalog], payload: bytes) -> Catalog:
    """Return the catalog a delta record extends, extended, or raise DecodeError."""
    try:
        body = msgpack.unpackb(payload, raw=False, strict_map_key=True)
    except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, ValueError) as exc:
        raise DecodeError(f"series record is not msgpack: {exc}") from exc
    if not isinstance(body, dict) or not isinstance(body.get("s"), list):
        raise DecodeError("series record is not a map with a series list")
    instance, start = body.get("i"), body.get("f")
    base = catalogs.get(instance) if isinstance(instance, str) else None
    if base is None or base.instance != instance or not isinstance(start, int):
        raise DecodeError(f"series record for {instance!r} has no catalog to extend")
    if start > base.version:
        raise DecodeError(f"series record starts at {start}, catalog has {base.version}")
    added = [_spec(row, start + n) for n, row in enumerate(body["s"])]
    keep = base.version - start
    return Catalog(base.instance, base.series + tuple(added[keep:]), base.host)


class CatalogJournal:
    """Decides which catalog records the journal needs (the recording side)."""

    def __init__(self) -> None:
        self._known: tuple[str, int] | None = None

    def records(self, catalog: Catalog) -> list[tuple[int, bytes]]:
        """Return the (kind, payload) records to append before a row that needs ``catalog``."""
        known = self._known
        if known is not None and known[0] == catalog.instance and known[1] >= catalog.version:
            return []
        self._known = (catalog.instance, catalog.version)
        if known is None or known[0] != catalog.instance:
            return [(KIND_CATALOG, encode_catalog(catalog))]
        return [(KIND_SERIES, encode_delta(catalog, known[1]))]


class CatalogReplay:
    """Rebuilds the catalogs from journal records (the conversion side)."""

    def __init__(self) -> None:
        self.catalogs: dict[str, Catalog] = {}

    def apply(self, kind: int, payload: bytes) -> Catalog:
        """Take one catalog or series record; return the catalog it completes."""
        if kind == KIND_CATALOG:
            message = decode(payload)
            if not isinstance(message, Catalog):
                raise DecodeError("catalog record holds a frame")
            catalog = message
        elif kind == KIND_SERIES:
            catalog = apply_delta(self.catalogs, payload)
        else:
            raise DecodeError(f"record kind {kind} is not a catalog")
        known = self.catalogs.get(catalog.instance)
        if known is None or catalog.version >= known.version:
            self.catalogs[catalog.instance] = catalog
        return catalog
