"""The ``rezolus view`` command line: serving a file or a hindsight snapshot URL, and one-line errors."""

from __future__ import annotations

import http.server
import json
import pathlib
import subprocess
import tempfile
import threading
import urllib.request

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from support.env import VENV_BIN, free_port


def run(*args):
    """Run the viewer CLI to completion (for inputs it must refuse)."""
    return subprocess.run([str(VENV_BIN / "rezolus-viewer"), *args], capture_output=True, text=True, timeout=60,
                          check=False)


def get_json(url):
    """GET a JSON document."""
    with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 - a loopback http URL the test built
        return json.load(resp)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--listen", "nonsense"], "--listen"),
        (["--listen", "127.0.0.1:99999"], "--listen"),
    ],
)
def test_bad_listen_is_a_one_line_usage_error(recording, args, message):
    """A malformed --listen exits 2 with one line naming the option."""
    result = run(str(recording), *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_missing_or_non_parquet_file_is_a_one_line_usage_error(tmp_path):
    """A missing, non-parquet, empty or foreign parquet file exits 2 with one line, no stack trace."""
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet at all")
    empty, other = tmp_path / "empty.parquet", tmp_path / "other.parquet"
    pq.write_table(pa.table({"timestamp": pa.array([], pa.uint64())}), empty)
    pq.write_table(pa.table({"x": [1]}), other)
    cases = (
        (tmp_path / "absent.parquet", "is not a file"), (junk, "not a readable parquet file"),
        (empty, "the recording has no rows"), (other, "no 'timestamp' column"),
    )
    for path, words in cases:
        result = run(str(path))
        assert result.returncode == 2
        assert words in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_port_in_use_is_a_one_line_startup_error(recording, viewer_factory):
    """A second viewer on a taken port exits 1 with one line."""
    first = viewer_factory(str(recording))
    port = first.url.rsplit(":", 1)[1].strip("/")
    result = run(str(recording), "--listen", f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert "cannot listen on 127.0.0.1" in result.stderr
    assert "Traceback" not in result.stderr


def test_serves_a_file_and_stops_cleanly_on_sigterm(recording, viewer_factory):
    """The umbrella-registered viewer serves the file's info and exits 0 on SIGTERM."""
    viewer = viewer_factory(str(recording))
    info = get_json(viewer.url + "api/info")
    assert info["file"] == "fixture.parquet"
    assert info["rows"] == 600
    assert viewer.stop() == 0


def test_umbrella_command_lists_view():
    """``rezolus`` lists the ``view`` command registered by the viewer package."""
    result = subprocess.run([str(VENV_BIN / "rezolus"), "--help"], capture_output=True, text=True, timeout=60,
                            check=False)
    assert "view" in result.stdout.split("commands:")[1]


class _Snapshot(http.server.BaseHTTPRequestHandler):
    body = b""
    token = ""

    def do_GET(self):
        """Serve the recording at /snapshot, like hindsight (JSON errors, optional bearer token)."""
        if self.path.split("?")[0] != "/snapshot":
            self.send_error(404)
            return
        if self.token and self.headers.get("Authorization") != f"Bearer {self.token}":
            error = json.dumps({"error": "this endpoint needs 'Authorization: Bearer <token>'", "status": 401})
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(error.encode())
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.apache.parquet")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        """Stay quiet."""


@pytest.fixture
def hindsight(recording):
    """A stand-in hindsight serving the fixture at GET /snapshot, token "s3cret"; yields its base URL."""
    handler = type("Snap", (_Snapshot,), {"body": recording.read_bytes(), "token": "s3cret"})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_snapshot_url_without_the_token_is_a_one_line_error_with_hindsights_reason(hindsight):
    """A 401 from hindsight exits 1 with one line carrying hindsight's own error message."""
    result = run(hindsight + "/snapshot?last=5m")
    assert result.returncode == 1
    assert "HTTP 401: this endpoint needs 'Authorization: Bearer <token>'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_views_a_hindsight_snapshot_url_and_removes_the_download(hindsight, viewer_factory, tmp_path):
    """A GET /snapshot URL is downloaded with the token, served, and the temporary file is removed at exit."""
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    viewer = viewer_factory(hindsight + "/snapshot?last=5m", "--token-file", str(token))
    info = get_json(viewer.url + "api/info")
    assert info["rows"] == 600
    assert info["file"].startswith("rezolus-snapshot-")
    assert viewer.stop() == 0, viewer.stderr[-3000:]
    assert not (pathlib.Path(tempfile.gettempdir()) / info["file"]).exists()
    base = viewer_factory(hindsight, "--token-file", str(token))
    assert get_json(base.url + "api/info")["rows"] == 600


def test_unreachable_snapshot_url_is_a_one_line_error():
    """A snapshot URL nobody answers exits 1 with one line."""
    result = run(f"http://127.0.0.1:{free_port()}/snapshot")
    assert result.returncode == 1
    assert "cannot download" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
