"""Keeping optional modules that a library would load on its own out of a service process.

Some libraries import an optional module as soon as they load, or on first
use, only to offer something a service never uses (pyarrow looks for pandas;
structlog loads rich for prettier tracebacks), and each such import costs
resident memory for the life of the process.  ``refusing(...)`` makes those
imports fail inside a ``with`` block, so the library takes its "not
installed" path; the modules can be imported again as soon as the block
ends.  Modules already imported are not affected.
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType


class _Refuse:
    """A meta path finder that refuses some top-level modules and their submodules."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names

    def find_spec(
        self, name: str, _path: Sequence[str] | None = None, _target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


@contextlib.contextmanager
def refusing(*names: str) -> Iterator[None]:
    """Inside the block, importing any of the top-level modules ``names`` fails."""
    finder = _Refuse(names)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
