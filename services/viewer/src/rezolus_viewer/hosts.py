"""Recordings of several hosts: one viewable file per ``host``.

Invariants:
- A file without a ``host`` column, or with one value in it, is viewed as is.
- With several hosts, each host is viewed through its own file: that host's
  rows in timestamp order, the same schema and file metadata (written once,
  on first use, into a temporary directory removed by ``close``), so
  ``Recording`` only ever sees one agent's rows.
- A host's file names that host in its ``hostname`` metadata and its facts
  (from the ``hosts`` metadata) in ``host``, so it describes itself.
- Hosts are listed in the order they first appear in the file.
- ``HostViews`` serves them to the API (mode ``hosts``): side ``""`` is the
  first host, any other side a host's name (the API's ``instance=``);
  each host's recording and page plan are opened on first use.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rezolus_recording import layout, reader
from rezolus_viewer.recording import _primitive
from rezolus_viewer.views import View

if TYPE_CHECKING:
    from rezolus_viewer.dashboard import Dashboard
    from rezolus_viewer.recording import Recording
    from rezolus_viewer.source import Source


def _facts(meta: dict[str, str], host: str) -> dict[str, str]:
    try:
        facts = json.loads(meta.get(layout.HOSTS, "{}")).get(host, {})
    except (ValueError, AttributeError):
        facts = {}
    return {str(k): str(v) for k, v in facts.items() if k != layout.SOURCE} if isinstance(facts, dict) else {}


def _dictionary_values(column: pa.ChunkedArray) -> list[str] | None:
    """The distinct non-null values of a dictionary-of-strings column in order of first appearance, else None.

    Done with numpy on the indices: ``pyarrow.compute`` costs more to import than the recorder's files need.
    """
    if not pa.types.is_dictionary(column.type) or not pa.types.is_string(column.type.value_type):
        return None
    out: dict[str, None] = {}
    for chunk in column.chunks:
        indices, present = _primitive(chunk.indices)
        used, first = np.unique(indices[present], return_index=True)
        names = chunk.dictionary.to_pylist()
        out.update(dict.fromkeys(n for i in used[np.argsort(first)] if (n := names[int(i)]) is not None))
    return list(out)


def host_names(path: Path) -> list[str]:
    """The ``host`` values of the file, in order of first appearance ([] without the column).

    Raises ``RecordingError`` when ``path`` is not a readable recording.
    """
    handle = reader.open_recording(path)
    if layout.HOST_COLUMN not in handle.schema_arrow.names:
        return []
    column = handle.read(columns=[layout.HOST_COLUMN]).column(0)
    names = _dictionary_values(column)
    if names is not None:
        return names
    import pyarrow.compute as pc  # noqa: PLC0415 - only a host column other writers typed otherwise needs it

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
                raw = pq.read_metadata(self.path).metadata or {}
                meta = {k.decode(): v.decode() for k, v in raw.items() if not k.startswith(b"ARROW:")}
                facts = _facts(meta, host)
                meta.update({layout.HOSTNAME: host, layout.HOST: json.dumps(facts, sort_keys=True),
                             layout.KERNEL: facts.get(layout.KERNEL, ""),
                             layout.AGENT_VERSION: facts.get(layout.AGENT_VERSION, "")})
                table = table.replace_schema_metadata(meta)
                done = self._dir / f"host-{len(self._files)}.parquet"
                from rezolus_recording.writer import write_table  # noqa: PLC0415 - only several hosts write files

                write_table(table, done)
                self._files[host] = done
            return done

    def close(self) -> None:
        """Remove the per-host files (a later ``file`` writes them again)."""
        with self._lock:
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
            self._dir, self._files = None, {}


class HostViews:
    """The API's views of a recording of several hosts, one host at a time."""

    mode = "hosts"

    def __init__(self, files: HostFiles, first: Recording, dash: Dashboard) -> None:
        self.files = files
        self._open: dict[str, View] = {files.names[0]: View(first, dash)}
        self._lock = threading.Lock()

    def get(self, side: str) -> View:
        """The view of host ``side`` (``""``: the first); LookupError for a host the file lacks."""
        from rezolus_viewer import dashboard  # noqa: PLC0415 - cycle: dashboard plans from recordings
        from rezolus_viewer.recording import Recording  # noqa: PLC0415

        name = side or self.files.names[0]
        with self._lock:
            view = self._open.get(name)
            if view is None:
                if name not in self.files.names:
                    raise LookupError(f"no host {name!r} in this recording (have {', '.join(self.files.names)})")
                rec = Recording(self.files.file(name))
                view = self._open[name] = View(rec, dashboard.plan(rec.columns.values()))
            return view

    def recordings(self) -> list[Source]:
        """Every host's recording opened so far."""
        return [v.rec for v in self._open.values()]

    def info(self) -> dict[str, Any]:
        """The hosts (for the page's selector) and the file's own name."""
        return {"hosts": self.files.names, "file": self.files.path.name}
