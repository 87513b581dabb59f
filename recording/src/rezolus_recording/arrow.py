"""pyarrow in a service process, without pandas.

pyarrow looks for pandas the first time it builds an array (to recognise a
``pandas.Series``); when pandas is installed that import alone adds about
35 MB of resident memory to a process that never uses it.  ``without_pandas``
lets pyarrow's one look fail while pandas cannot be imported, so pyarrow
remembers that it has no pandas; the import is allowed again afterwards, so
code that imports pandas itself still can.  It does nothing when pandas is
already imported.
"""

from __future__ import annotations

import sys

import pyarrow as pa

from rezolus_core.imports import refusing


def without_pandas() -> None:
    """Make this process's pyarrow run as if pandas were not installed (see the module head)."""
    if "pandas" in sys.modules:
        return
    with refusing("pandas"):
        pa.array([0])
