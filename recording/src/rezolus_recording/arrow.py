"""pyarrow in a service process: without pandas, and giving memory back after a large write.

pyarrow looks for pandas the first time it builds an array (to recognise a
``pandas.Series``); when pandas is installed that import alone adds about
35 MB of resident memory to a process that never uses it.  ``without_pandas``
lets pyarrow's one look fail while pandas cannot be imported, so pyarrow
remembers that it has no pandas; the import is allowed again afterwards, so
code that imports pandas itself still can.  It does nothing when pandas is
already imported.

A snapshot or conversion frees its row groups, but neither pyarrow's memory
pool nor glibc's heap returns the pages to the system by itself (tens of MB
stay resident); ``release_memory`` asks both to.  It only returns memory
that is free, so it is safe while other threads allocate, and it does
nothing where the C library has no ``malloc_trim``.
"""

from __future__ import annotations

import ctypes
import functools
import sys
from typing import TYPE_CHECKING

import pyarrow as pa

from rezolus_core.imports import refusing

if TYPE_CHECKING:
    from collections.abc import Callable


def without_pandas() -> None:
    """Make this process's pyarrow run as if pandas were not installed (see the module head)."""
    if "pandas" in sys.modules:
        return
    with refusing("pandas"):
        pa.array([0])


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def release_memory() -> None:
    """Return the free memory of pyarrow's pool and of the C heap to the system (see the module head)."""
    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
