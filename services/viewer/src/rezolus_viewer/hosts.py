"""Recordings of several hosts: one viewable file per ``host``.

Invariants:
- A file without a ``host`` column, or with one value in it, is viewed as is.
- With several hosts, each host is viewed through its own file: that host's
  rows in timestamp order, the same schema and file metadata (written once,
  on first use, into a temporary directory removed by ``close``), so
  ``Recording`` only ever sees one agent's rows.
- Hosts are listed in the order they first appear in the file.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from rezolus_recording import layout, reader
from rezolus_recording.writer import write_table


def host_names(path: Path) -> list[str]:
    """The ``host`` values of the file, in order of first appearance ([] without the column).

    Raises ``RecordingError`` when ``path`` is not a readable recording.
    """
    handle = reader.open_recording(path)
    if layout.HOST_COLUMN not in handle.schema_arrow.names:
        return []
    column = handle.read(columns=[layout.HOST_COLUMN]).column(0)
    return [str(v) for v in pc.unique(column.cast("string")).to_pylist() if v is not None]


class HostFiles:
    """The per-host files of one recording."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.names = host_names(path)
        self._dir: Path | None = None
        self._files: dict[str, Path] = {}
        self._lock = threading.Lock()

    @property
    def many(self) -> bool:
        """Whether the recording holds more than one host."""
        return len(self.names) > 1

    def file(self, host: str) -> Path:
        """The file to view for ``host`` (the recording itself when it holds one host)."""
        if not self.many:
            return self.path
        if host not in self.names:
            raise KeyError(host)
        with self._lock:
            done = self._files.get(host)
            if done is None:
                if self._dir is None:
                    self._dir = Path(tempfile.mkdtemp(prefix="rezolus-viewer-"))
                table = pq.read_table(self.path, filters=[(layout.HOST_COLUMN, "=", host)])
                table = table.sort_by(layout.TIMESTAMP)
                meta = pq.read_metadata(self.path).metadata or {}
                table = table.replace_schema_metadata({k.decode(): v.decode() for k, v in meta.items()
                                                      if not k.startswith(b"ARROW:")})
                done = self._dir / f"host-{len(self._files)}.parquet"
                write_table(table, done)
                self._files[host] = done
            return done

    def close(self) -> None:
        """Remove the per-host files (a later ``file`` writes them again)."""
        with self._lock:
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
            self._dir, self._files = None, {}
