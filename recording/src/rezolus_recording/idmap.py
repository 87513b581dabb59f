"""Catalog series id -> column index maps, one per metric type, grown as an agent's catalog grows.

Invariant: catalogs of one agent instance are append-only (a newer version
only adds series at its tail), so the map of the newest version seen serves
every older version, and a newer one costs only its new series.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rezolus_core.frame import MetricType

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import NDArray

    from rezolus_core.frame import Catalog, SeriesSpec

IdMap = dict[MetricType, "NDArray[np.intp]"]


def extend(
    known: tuple[int, IdMap] | None, catalog: Catalog, column_of: Callable[[SeriesSpec], int]
) -> tuple[int, IdMap]:
    """The (version, maps) for ``catalog`` given the instance's last ``known`` one; -1 marks another type's id."""
    if known is not None and known[0] >= catalog.version:
        return known
    start = 0 if known is None else known[0]
    maps = {t: np.full(catalog.version, -1, dtype=np.intp) for t in MetricType}
    if known is not None:
        for kind, old in known[1].items():
            maps[kind][:start] = old
    for spec in catalog.series[start:]:
        maps[spec.type][spec.id] = column_of(spec)
    return catalog.version, maps
