"""Bad requests, unwritable output, full disks and tokens: clear JSON errors, nothing misplaced."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hindsight_helpers import Hindsight, Publisher, fill, http, poll, tmpfs

TOKEN = "s3cret-token-for-tests-0123456789"  # noqa: S105 - a throwaway token for a loopback test


def tree(root: Path) -> set[Path]:
    """Every path under ``root`` except the buffer and the log."""
    return {p for p in root.rglob("*") if "buffer" not in p.parts and p.suffix != ".log"}


@pytest.fixture
def running(tmp_path: Path, publisher: Publisher, hindsights) -> Hindsight:
    """A hindsight with a few seconds of frames."""
    hs = Hindsight(tmp_path, publisher.endpoint, interval="100ms")
    hindsights.append(hs)
    hs.wait_rows(10)
    return hs


BAD = [
    ("last=abc", "not a duration"),
    ("last=-5m", "not a duration"),
    ("last=0s", "longer than zero"),
    ("last=99999999999999999999999999d", "too large"),
    ("start=2000000000&end=1000000000", "after end"),
    ("start=4000000000", "outside the buffer"),
    ("end=1000000000", "outside the buffer"),
    ("start=1&end=2", "outside the buffer"),
    ("start=1e400", "not Unix seconds or RFC 3339"),
    ("start=99999999999999999999", "outside the representable range"),
    ("start=9999-12-31T23:59:59Z", "outside the representable range"),
    ("start=2026-11-18T19:46:40", "not Unix seconds or RFC 3339"),
    ("name=../../etc/x", "plain file name"),
    ("name=/tmp/absolute", "plain file name"),
    ("name=a/b", "plain file name"),
    ("name=..", "plain file name"),
    ("name=.hidden", "plain file name"),
    ("last=5m&start=1", "not both"),
    ("last=1s&last=2s", "given twice"),
    ("colour=red", "unknown parameter"),
    ("last=" + "9" * 300, "longer than"),
]


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_bad_requests_are_400_and_write_nothing(running: Hindsight, method: str) -> None:
    """Every bad parameter is a 400 with a message; no file appears anywhere."""
    before = tree(running.base)
    for query, fragment in BAD:
        code, body, headers = running.request(method, query)
        assert code == 400, (query, body)
        assert headers["Content-Type"].startswith("application/json")
        answer = json.loads(body)
        assert fragment in answer["error"], (query, answer)
        assert answer["status"] == 400
    assert tree(running.base) == before
    assert not Path("/etc/x").exists()
    assert running.status()["snapshots"]["written"] == 0


def test_bad_bodies_and_routes_are_json_errors(running: Hindsight) -> None:
    """Malformed bodies, unknown routes and methods still answer JSON with 4xx."""
    cases = [
        ("POST", "/snapshot", b"{not json", "application/json", 400),
        ("POST", "/snapshot", b"[1, 2]", "application/json", 400),
        ("POST", "/snapshot", b'{"last": {"a": 1}}', "application/json", 400),
        ("POST", "/snapshot", b"\x00\x01", "application/octet-stream", 415),
        ("POST", "/snapshot", b"x" * 70_000, "application/x-www-form-urlencoded", 413),
        ("GET", "/nowhere", None, None, 404),
        ("DELETE", "/snapshot", None, None, 405),
    ]
    for method, path, body, kind, status in cases:
        code, text, _ = http(method, running.url + path, body, {"Content-Type": kind} if kind else {})
        assert code == status, (method, path, text)
        assert "error" in json.loads(text)
    code, answer = running.post({"last": "500ms", "name": "fine"})
    assert code == 200, answer
    assert Path(answer["path"]) == running.output / "fine.parquet"


def test_json_body_requests_work(running: Hindsight) -> None:
    """A JSON body with numbers and strings is accepted like a form."""
    now = running.status()["retained"]["end_ns"] / 1e9
    body = json.dumps({"start": now - 1, "end": f"{now:.9f}"}).encode()
    code, text, _ = http("POST", running.url + "/snapshot", body, {"Content-Type": "application/json"})
    assert code == 200, text
    assert json.loads(text)["rows"] >= 9


def test_unwritable_output_is_reported_and_ingestion_continues(running: Hindsight) -> None:
    """When the output directory cannot be written, the reply, /status and the log say so."""
    shutil.rmtree(running.output)
    running.output.write_text("not a directory")
    stored = running.status()["frames_stored"]
    code, answer = running.post({"last": "1s"})
    assert code == 500
    assert str(running.output) in answer["error"]
    assert "cannot write snapshot" in answer["error"]
    status = poll(lambda: (s := running.status())["frames_stored"] > stored + 5 and s, 10, "ingestion")
    assert any("cannot write snapshot" in e["message"] for e in status["errors"])
    assert status["snapshots"]["failed"] == 1
    assert "cannot write snapshot" in running.log()
    running.output.unlink()
    code, answer = running.post({"last": "1s"})
    assert code == 200, answer


def test_full_disk_is_507_and_ingestion_continues(tmp_path: Path, publisher: Publisher, hindsights) -> None:
    """A snapshot into a full filesystem fails with 507 and a message; frames keep coming."""
    with tmpfs(tmp_path / "small", "16k", hindsights) as small:
        hs = Hindsight(tmp_path, publisher.endpoint, interval="100ms", output=small)
        hindsights.append(hs)
        hs.wait_rows(20)
        filler = fill(small)
        stored = hs.status()["frames_stored"]
        code, answer = hs.post({})
        assert code == 507, answer
        assert "No space left on device" in answer["error"]
        status = poll(lambda: (s := hs.status())["frames_stored"] > stored + 5 and s, 10, "ingestion")
        assert any("No space left" in e["message"] for e in status["errors"])
        assert "No space left" in hs.log()
        assert [p.name for p in small.iterdir()] == ["filler"]
        filler.unlink()
        code, answer = hs.post({"last": "1s"})
        assert code == 200, answer


def test_token_guards_snapshots_when_listening_beyond_loopback(
    tmp_path: Path, publisher: Publisher, hindsights
) -> None:
    """On a non-loopback address snapshots need the bearer token; /status does not."""
    hs = Hindsight(tmp_path, publisher.endpoint, interval="100ms", listen_host="0.0.0.0", token=TOKEN)  # noqa: S104 - the point of the test
    hindsights.append(hs)
    hs.wait_rows(5)
    for token in ("", "wrong-token-wrong-token", TOKEN + "x", TOKEN[:-1]):
        code, body, _ = hs.request("POST", {"last": "1s"}, token=token)
        assert code == 401, body
        assert "Bearer" in json.loads(body)["error"]
    code, _, _ = hs.request("GET", {"last": "1s"}, token="nope-nope-nope-nope")  # noqa: S106 - a wrong token
    assert code == 401
    assert list(hs.output.iterdir()) == []
    code, answer = hs.post({"last": "1s"}, token=TOKEN)
    assert code == 200, answer
    code, _, _ = hs.request("GET", {"last": "1s"}, token=TOKEN)
    assert code == 200


def test_non_loopback_without_a_token_refuses_to_start(tmp_path: Path) -> None:
    """Listening beyond loopback with no token is a configuration error (exit 2, one line)."""
    config = tmp_path / "h.toml"
    config.write_text(f'listen = "0.0.0.0:4243"\ndirectory = "{tmp_path}/b"\noutput = "{tmp_path}/o"\n')
    done = subprocess.run(
        [str(Path(sys.executable).parent / "rezolus-hindsight"), "--config", str(config)],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "not loopback" in done.stderr
    assert not (tmp_path / "b").exists()


def test_a_full_buffer_disk_is_reported_and_ingestion_recovers(
    tmp_path: Path, publisher: Publisher, hindsights
) -> None:
    """When the buffer's filesystem fills up, writes fail with a reason; once space returns, frames are stored."""
    with tmpfs(tmp_path / "buffer-fs", "1m", hindsights) as small:
        hs = Hindsight(tmp_path, publisher.endpoint, interval="20ms", directory=small)
        hindsights.append(hs)
        hs.wait_rows(20)
        filler = fill(small)
        status = poll(lambda: (s := hs.status())["write_errors"] > 0 and s, 20, "a failed write")
        assert any("No space left" in e["message"] for e in status["errors"])
        assert "No space left" in hs.log()
        filler.unlink()
        stored = hs.status()["frames_stored"]
        poll(lambda: hs.status()["frames_stored"] > stored + 20, 20, "ingestion to resume")
        code, answer = hs.post({"last": "1s"})
        assert code == 200, answer
        assert hs.stop() == 0
