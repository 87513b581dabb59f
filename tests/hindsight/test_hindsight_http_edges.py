"""Client mistakes get 4xx, HEAD builds nothing, names are plain, crashed snapshots are cleaned up."""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hindsight_inproc import app, service

if TYPE_CHECKING:
    from pathlib import Path

    from rezolus_hindsight.service import HindsightService


def call(svc: HindsightService, method: str, url: str, **kwargs: Any) -> tuple[int, bytes, dict[str, str]]:
    """One request against the in-process app; the status, body and headers."""

    async def run() -> tuple[int, bytes, dict[str, str]]:
        async with TestClient(TestServer(app(svc))) as client:
            response = await client.request(method, url, **kwargs)
            return response.status, await response.read(), dict(response.headers)

    try:
        return asyncio.run(run())
    finally:
        svc.buffer.close()


def test_name_with_a_trailing_newline_is_refused(tmp_path: Path) -> None:
    """``abc%0A`` is not a plain file name: 400, and no file appears."""
    svc = service(tmp_path)
    status, body, _ = call(svc, "POST", "/snapshot?name=abc%0A")
    assert status == 400, body
    assert b"plain file name" in body
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize(
    ("headers", "data"),
    [
        ({"Content-Type": "multipart/form-data; boundary=zzz"}, b"--xxx\r\nnot a part\r\n"),
        ({"Content-Type": "multipart/form-data"}, b"--xxx\r\n\r\n"),
        ({"Content-Type": "application/json"}, b"[" * 30_000),
        ({"Content-Type": "application/json", "Content-Encoding": "gzip"}, b"this is not gzip at all"),
        ({"Content-Type": "application/json", "Content-Encoding": "gzip"}, b"\x1f\x8b" + b"x" * 60_000),
        ({"Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": "deflate"}, b"last=1s"),
        ({"Content-Type": "application/json"}, b'{"last": "\xff\xfe"}'),
    ],
    ids=["bad-boundary", "no-boundary", "deep-json", "fake-gzip", "long-fake-gzip", "fake-deflate", "bad-utf8"],
)
def test_bad_bodies_are_client_errors(tmp_path: Path, headers: dict[str, str], data: bytes) -> None:
    """A body the client got wrong answers 400 (JSON unless aiohttp's parser refused it first), never 500."""
    svc = service(tmp_path)
    status, body, _ = call(svc, "POST", "/snapshot", headers=headers, data=data)
    assert status == 400, body
    assert list((tmp_path / "out").iterdir()) == []


def test_head_snapshot_builds_nothing_and_sends_no_body(tmp_path: Path) -> None:
    """HEAD answers 200 with headers only; no snapshot is built or written."""
    svc = service(tmp_path)
    status, body, headers = call(svc, "HEAD", "/snapshot?last=5s")
    assert status == 200
    assert body == b""
    assert headers["Content-Type"] == "application/vnd.apache.parquet"
    assert svc.snapshots == {"written": 0, "streamed": 0, "failed": 0, "in_flight": 0}
    assert list((tmp_path / "out").iterdir()) == []


def test_head_snapshot_reports_the_same_errors(tmp_path: Path) -> None:
    """HEAD with a bad range answers the status GET would, without a body."""
    svc = service(tmp_path)
    status, body, _ = call(svc, "HEAD", "/snapshot?start=1&end=2")
    assert status == 400
    assert body == b""


def test_startup_removes_temporaries_of_killed_snapshots(tmp_path: Path) -> None:
    """``.NAME.parquet.PID.tmp`` of a dead process (or of this PID, reused) goes; others stay."""
    out = tmp_path / "out"
    out.mkdir()
    dead = out / ".hindsight-x.parquet.4194303.tmp"
    mine = out / f".mine.parquet.{os.getpid()}.tmp"
    live = out / f".recorder.parquet.{os.getppid()}.tmp"
    kept = out / "kept.parquet"
    for path in (dead, mine, live, kept):
        path.write_bytes(b"partial")
    svc = service(tmp_path, rows=0)
    svc.buffer.close()
    assert sorted(p.name for p in out.iterdir()) == sorted([live.name, kept.name])
