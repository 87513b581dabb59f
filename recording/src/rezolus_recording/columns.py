"""Arrow columns of a recording built from numpy buffers, without the modules pyarrow would load.

``pa.array`` on a numpy array loads ``numpy.ma`` (about 7 MB), and
``dictionary_encode`` or ``ListArray.from_arrays(mask=...)`` load pyarrow's
compute module (about 12 MB); a service keeps neither.  Every column here is
made with ``pa.Array.from_buffers`` over numpy arrays (the ones given, without
a copy, or one new block of histogram buckets), so the caller must not change
them afterwards.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from numpy.typing import NDArray


def dictionary(values: list[str]) -> pa.DictionaryArray:
    """Dictionary-encode strings in order of first appearance (as ``dictionary_encode`` does).

    Built by hand: pyarrow's compute module, which its own encoder loads, adds
    about 12 MB to a process.
    """
    codes: dict[str, int] = {}
    indices = [codes.setdefault(v, len(codes)) for v in values]
    return pa.DictionaryArray.from_arrays(
        pa.array(indices, type=pa.int32()), pa.array(list(codes), type=pa.string())
    )


def array(
    arrow_type: pa.DataType, values: NDArray[Any], validity: NDArray[np.uint8] | None, nulls: int
) -> pa.Array:
    """A primitive column over ``values`` (no copy), null where the ``validity`` bit is 0.

    Built from buffers: ``pa.array`` on a numpy array loads ``numpy.ma`` (about 7 MB).
    """
    bitmap = pa.py_buffer(validity) if nulls else None
    return pa.Array.from_buffers(arrow_type, len(values), [bitmap, pa.py_buffer(values)], null_count=nulls)


def list_columns(
    cols: NDArray[np.intp], rows: NDArray[np.intp], sizes: NDArray[np.intp],
    indices: NDArray[Any], counts: NDArray[Any], *, shape: tuple[int, int, int],
) -> list[pa.Array]:
    """``List<UInt64>`` columns of ``shape = (columns, rows, width)``, scattered in one numpy step.

    Histogram ``h`` puts its ``sizes[h]`` buckets (``indices``, ``counts``,
    concatenated over every histogram) into column ``cols[h]`` at row
    ``rows[h]``; a cell no histogram fills is null.  When a cell is given
    twice, the last histogram given wins.  Built from buffers (not
    ``ListArray.from_arrays(mask=...)``, which loads pyarrow's compute module),
    each column in an array of its own holding only its non-null rows: one
    block for all columns would exceed 4 MiB, which numpy asks the kernel to
    back with huge pages, so every 2 MiB the scatter touches becomes resident.
    """
    k, n, width = shape
    cells = cols * n + rows
    _, reversed_first = np.unique(cells[::-1], return_index=True)
    if reversed_first.size != cells.size:
        keep = np.zeros(cells.size, dtype=bool)
        keep[cells.size - 1 - reversed_first] = True
        indices, counts = indices[np.repeat(keep, sizes)], counts[np.repeat(keep, sizes)]
        cells, sizes = cells[keep], sizes[keep]
    starts = np.cumsum(sizes) - sizes
    order = np.argsort(cells // max(n, 1), kind="stable")
    bounds = np.searchsorted(cells[order] // max(n, 1), np.arange(k + 1)).tolist()
    dense = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    out = []
    for c in range(k):
        chosen = order[bounds[c] : bounds[c + 1]]
        rows_c, sizes_c = cells[chosen] % n, sizes[chosen]
        take = np.repeat(starts[chosen] - (np.cumsum(sizes_c) - sizes_c), sizes_c) + np.arange(int(sizes_c.sum()))
        present = np.zeros(n, dtype=bool)
        present[rows_c] = True
        nulls = n - chosen.size
        rank = rows_c if not nulls else (np.cumsum(present) - 1)[rows_c]
        values = np.zeros(chosen.size * width, dtype=np.uint64)  # one column: below numpy's 4 MiB huge-page size
        values[np.repeat(rank * width, sizes_c) + indices[take]] = counts[take]
        offsets, validity = dense, None
        if nulls:
            offsets = np.zeros(n + 1, dtype=np.int32)
            np.cumsum(present * np.int32(width), out=offsets[1:])
            validity = pa.py_buffer(np.packbits(present, bitorder="little"))
        out.append(pa.Array.from_buffers(
            pa.list_(pa.uint64()), n, [validity, pa.py_buffer(offsets)], null_count=nulls,
            children=[array(pa.uint64(), values, None, 0)],
        ))
    return out
