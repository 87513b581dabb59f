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

glibc gives a thread that allocates an arena of its own, and ``malloc_trim``
returns the free top of the main heap only: once a 32 MB block has been
freed, glibc's dynamic trim threshold is 64 MB, so a snapshot's worker
thread kept about 30 MB resident after it ended.  ``one_heap`` (glibc's
``mallopt(M_ARENA_MAX, 1)``; call it before the process starts threads)
keeps every thread on the main heap, which ``release_memory`` trims.
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


M_ARENA_MAX = -8  # glibc's mallopt parameter


@functools.cache
def _libc(name: str) -> Callable[..., int] | None:
    try:
        function: Callable[..., int] = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None
    return function


def release_memory() -> None:
    """Return the free memory of pyarrow's pool and of the C heap to the system (see the module head)."""
    pa.default_memory_pool().release_unused()
    trim = _libc("malloc_trim")
    if trim is not None:
        trim(0)


def one_heap() -> None:
    """Make every thread of this process allocate from the C library's main heap (see the module head)."""
    mallopt = _libc("mallopt")
    if mallopt is not None:
        mallopt(M_ARENA_MAX, 1)
