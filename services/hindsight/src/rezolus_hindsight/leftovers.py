"""Removing the temporary files a killed snapshot left in the output directory.

Invariants:
- A snapshot is written to ``.NAME.parquet.PID.tmp`` next to its final path
  and renamed into place (``rezolus_recorder.files.temp_path``); a kill -9
  in between leaves that file behind.
- At start-up such a file is removed when its PID is this process (a restart
  that reused the PID: nothing of ours is in flight yet) or no live process.
  A file of another live process (a recorder writing into the same
  directory) is left alone, as is every other file.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

_TEMP = re.compile(r"\.[^/]+\.parquet\.(\d{1,10})\.tmp")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def remove_stale_temps(directory: Path) -> list[Path]:
    """Delete the snapshot temporaries of dead processes in ``directory``; return what was removed."""
    removed: list[Path] = []
    try:
        candidates = list(directory.iterdir())
    except OSError:
        return removed
    for path in candidates:
        match = _TEMP.fullmatch(path.name)
        if match is None or _alive(int(match.group(1))) or not path.is_file():
            continue
        try:
            path.unlink()
        except OSError:
            continue
        removed.append(path)
    return removed
