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
from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType


class _NoPandas:
    """A meta path finder that refuses pandas."""

    @staticmethod
    def find_spec(
        name: str, _path: Sequence[str] | None = None, _target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def without_pandas() -> None:
    """Make this process's pyarrow run as if pandas were not installed (see the module head)."""
    if "pandas" in sys.modules:
        return
    blocker = _NoPandas()
    sys.meta_path.insert(0, blocker)
    try:
        pa.array([0])
    finally:
        sys.meta_path.remove(blocker)
