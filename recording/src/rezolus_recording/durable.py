"""Durable files: whole-or-nothing writes and directory fsync, for every writer of the project's files.

Invariants:
- A file written by ``write_atomic`` (or renamed into place by a caller that
  wrote ``temp_path``) appears at its path whole or not at all: the data goes
  to a temp file in the same directory, is fsynced, renamed over the path,
  and the directory is fsynced so the rename survives a power cut.
- Temp files are hidden (``.name.<pid>.tmp``) and end in ``TEMP_SUFFIX``, so
  an owner may delete stale ones at start-up; on any failure
  ``write_atomic`` removes its temp file.
- ``sync_dir`` is the one place a directory is fsynced.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

TEMP_SUFFIX = ".tmp"


def temp_path(path: Path) -> Path:
    """Return the hidden temp file beside ``path`` that is renamed over it when complete."""
    return path.with_name(f".{path.name}.{os.getpid()}{TEMP_SUFFIX}")


def sync_dir(directory: Path) -> None:
    """Fsync ``directory`` so a rename, link or unlink in it is durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes | memoryview) -> int:
    """Write all of ``data`` to ``fd`` (retrying short writes); return the bytes written."""
    view = memoryview(data)
    total = len(view)
    while view:
        view = view[os.write(fd, view) :]
    return total


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that it appears whole or not at all."""
    temp = temp_path(path)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        write_all(fd, data)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        temp.unlink(missing_ok=True)
        raise
    os.close(fd)
    try:
        temp.replace(path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    sync_dir(path.parent)
