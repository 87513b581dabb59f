"""A procfs/sysfs file held open and re-read with ``pread`` at offset 0.

Opening a file costs more than reading it: a procfs seq_file or a sysfs
attribute regenerates its contents on every read at offset 0, so keeping one
descriptor per file and calling ``pread(fd, n, 0)`` gives the same bytes as
``open(); read(); close()`` with one syscall instead of three (and no Python
file object).  A failed read closes the descriptor and the next read opens
the file again, so a file that comes back (an interface re-created) is
followed.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

_CHUNK = 1 << 16


class ProcFile:
    """One file read whole, at offset 0, on a held descriptor."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = -1
        self._size = _CHUNK

    def read(self) -> bytes:
        """The file's current contents (OSError when it cannot be read)."""
        if self._fd < 0:
            self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            data = os.pread(self._fd, self._size, 0)
            while len(data) >= self._size:
                self._size *= 2
                data = os.pread(self._fd, self._size, 0)
        except OSError:
            self.close()
            raise
        return data

    def close(self) -> None:
        """Release the descriptor."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
