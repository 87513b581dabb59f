"""Several sources: the TOML list, the repeated flag, one string, and the checks on them."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING

import pyarrow.parquet as pq
import pytest
from hindsight_synth import T0, Feeder, S, SyntheticAgent

from rezolus_core.config import ConfigError
from rezolus_hindsight import config
from rezolus_hindsight.follow import buffer_directory
from rezolus_hindsight.service import HindsightService

if TYPE_CHECKING:
    from pathlib import Path


def _load(tmp_path: Path, text: str, flags: dict[str, object] | None = None) -> config.HindsightConfig:
    path = tmp_path / "h.toml"
    path.write_text(text)
    return config.load(str(path), flags or {})


def test_one_string_a_list_and_repeated_flags(tmp_path: Path) -> None:
    """``source`` may be one endpoint or a list; ``--source`` repeated replaces the file's list."""
    assert _load(tmp_path, 'source = "localhost:4241"\n').sources == ("tcp://localhost:4241",)
    listed = _load(tmp_path, 'source = ["tcp://10.0.0.1:4241", "10.0.0.2:4241"]\n')
    assert listed.sources == ("tcp://10.0.0.1:4241", "tcp://10.0.0.2:4241")
    assert listed.source == "tcp://10.0.0.1:4241"
    flagged = _load(tmp_path, 'source = ["tcp://10.0.0.1:4241"]\n', {"source": ["a:1", "b:2", "c:3"]})
    assert flagged.sources == ("tcp://a:1", "tcp://b:2", "tcp://c:3")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("source = []\n", "expected an endpoint or a list of endpoints"),
        ('source = ["a:1", 5]\n', "expected an endpoint or a list of endpoints"),
        ('source = ["a:1", "tcp://a:1"]\n', "tcp://a:1 is given twice"),
        ('source = ["a:1", "nonsense"]\n', "'nonsense' is not an endpoint"),
        ('source = ["a:1", "b:1", "c:1"]\nmax_bytes = "2MiB"\n', "per source (3 sources)"),
    ],
)
def test_bad_source_lists_are_config_errors(tmp_path: Path, text: str, fragment: str) -> None:
    """Each problem is one ConfigError naming the key."""
    with pytest.raises(ConfigError, match=r"source|max_bytes") as caught:
        _load(tmp_path, text)
    assert fragment in str(caught.value)


def test_each_source_gets_its_own_buffer_and_a_share_of_max_bytes(tmp_path: Path) -> None:
    """One source keeps DIRECTORY/buffer; several get one directory each and max_bytes / N."""
    single = HindsightService(_load(tmp_path, f'directory = "{tmp_path}"\n'))
    assert [f.buffer.directory for f in single.follows] == [tmp_path / "buffer"]
    many = HindsightService(
        _load(tmp_path, f'directory = "{tmp_path}"\nmax_bytes = "30MiB"\nsource = ["a:1", "ipc:///run/r.sock"]\n')
    )
    buffers = tmp_path / "buffer"
    assert [f.buffer.directory for f in many.follows] == [buffers / "a_1", buffers / "ipc_run_r.sock"]
    assert [f.buffer.max_bytes for f in many.follows] == [15 * 1024 * 1024] * 2
    assert buffer_directory(tmp_path, "tcp://[::1]:4241", many=True) == tmp_path / "buffer" / "1_4241"


@pytest.mark.parametrize("rows", [20, 600])  # 2 x 600 > CHUNK_ROWS: the streamed two-pass path
def test_a_snapshot_holds_every_source_under_its_host(tmp_path: Path, rows: int) -> None:
    """Rows of each source, in time order, under its agent's hostname; the second source has a gap."""
    cfg = _load(tmp_path, f'directory = "{tmp_path / "data"}"\noutput = "{tmp_path / "out"}"\n'
                'duration = "1h"\nmax_bytes = "64MiB"\nsource = ["a:1", "b:1"]\n')
    svc = HindsightService(cfg)
    for follow in svc.follows:
        follow.buffer.open()
    try:
        feeders = []
        for name, follow in zip(("host-a", "host-b"), svc.follows, strict=True):
            agent = SyntheticAgent()
            agent.cat = dataclasses.replace(agent.cat, host={"hostname": name})
            agent.hostname = name
            feeders.append(Feeder(follow.buffer, agent))
        for i in range(rows):
            feeders[0].feed(T0 + i * S)
            if i == rows // 2:
                feeders[1].agent.seq += 1  # a frame the bus lost: its tick is used up
            else:
                feeders[1].feed(T0 + i * S)
        result = asyncio.run(svc.snapshot({}))
    finally:
        for follow in svc.follows:
            follow.buffer.close()
    table = pq.read_table(result.path).to_pydict()
    assert result.rows == 2 * rows - 1
    assert table["host"] == ["host-a"] * rows + ["host-b"] * (rows - 1)
    assert table["timestamp"][:rows] == [f.timestamp_ns for f in feeders[0].stored]
    assert table["timestamp"][rows:] == [f.timestamp_ns for f in feeders[1].stored]
    assert table["missed"][:rows] == [0] * rows
    assert table["missed"][rows:] == [0] * (rows // 2) + [1] + [0] * (rows - rows // 2 - 2)
    assert table["duration"][0] is None
    assert table["duration"][rows] is None  # the second host starts afresh
    assert not any(table["restart"])
