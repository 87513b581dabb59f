"""Arrow columns of a recording built from numpy buffers, without the modules pyarrow would load.

``pa.array`` on a numpy array loads ``numpy.ma`` (about 7 MB), and
``dictionary_encode`` or ``ListArray.from_arrays(mask=...)`` load pyarrow's
compute module (about 12 MB); a service keeps neither.  Every column here is
made with ``pa.Array.from_buffers`` over the numpy arrays given (no copy), so
the caller must not change them afterwards.
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


def list_array(
    cells: dict[int, tuple[NDArray[np.uint16], NDArray[np.uint64]]], n: int, width: int
) -> pa.Array:
    """A ``List<UInt64>`` column of ``n`` rows: ``width`` counts in the rows of ``cells``, else null.

    Built from buffers (not ``ListArray.from_arrays(mask=...)``, which loads
    pyarrow's compute module); the counts are scattered in one numpy step.
    """
    rows = np.fromiter(cells, np.intp, len(cells))
    flat = np.zeros(rows.size * width, dtype=np.uint64)
    if rows.size:
        indices = [cells[r][0] for r in cells]
        sizes = np.fromiter((i.size for i in indices), np.intp, rows.size)
        starts = np.repeat(np.arange(rows.size, dtype=np.intp) * width, sizes)
        flat[starts + np.concatenate(indices)] = np.concatenate([cells[r][1] for r in cells])
    present = np.zeros(n, dtype=bool)
    present[rows] = True
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(present * np.int32(width), out=offsets[1:])
    nulls = n - rows.size
    validity = pa.py_buffer(np.packbits(present, bitorder="little")) if nulls else None
    return pa.Array.from_buffers(
        pa.list_(pa.uint64()), n, [validity, pa.py_buffer(offsets)], null_count=nulls,
        children=[array(pa.uint64(), flat, None, 0)],
    )
