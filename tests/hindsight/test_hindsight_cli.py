"""Command line: flags over the file, one-line config errors, the snapshot client."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hindsight_helpers import Hindsight, Publisher

from rezolus_hindsight import config

BIN = Path(sys.executable).parent


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its text output."""
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)


def test_flags_override_the_file(tmp_path: Path) -> None:
    """Every flag replaces the file's value; untouched keys keep the file's."""
    path = tmp_path / "h.toml"
    path.write_text('interval = "1s"\nduration = "10m"\nmax_bytes = "2GiB"\nlisten = "127.0.0.1:5000"\n')
    loaded = config.load(str(path), {"interval": "100ms", "max_bytes": "8MiB", "listen": None})
    assert loaded.interval_ns == 100_000_000
    assert loaded.duration_ns == 600_000_000_000
    assert loaded.max_bytes == 8 * 1024 * 1024
    assert (loaded.host, loaded.port) == ("127.0.0.1", 5000)
    assert loaded.token is None


@pytest.mark.parametrize(
    ("content", "flags", "fragment"),
    [
        ('interval = "fast"\n', [], "interval"),
        ("colour = 1\n", [], "unknown key"),
        ("", ["--interval", "0.5ms"], "shorter than the minimum"),
        ("", ["--duration", "1s", "--interval", "1s"], "two intervals"),
        ("", ["--max-bytes", "1KiB"], "at least"),
        ("", ["--max-bytes", "lots"], "not a size"),
        ("", ["--listen", "nowhere"], "is not HOST:PORT"),
        ("", ["--listen", "127.0.0.1:99999"], "outside 0..65535"),
        ('listen = "[::]:4243"\n', [], "not loopback"),
        ('token = "short"\nlisten = "0.0.0.0:4243"\n', [], "16 characters"),
        ('token_file = "/nonexistent/token"\n', [], "cannot read"),
        ('segment = "2h"\n', [], "longer than duration"),
        ("this is not toml", [], "not valid TOML"),
    ],
)
def test_config_errors_are_one_line_and_exit_2(tmp_path: Path, content: str, flags: list[str], fragment: str) -> None:
    """Every bad value stops the service before it starts, with one line naming the key."""
    path = tmp_path / "h.toml"
    paths = f'directory = "{tmp_path}/b"\noutput = "{tmp_path}/o"\n'
    path.write_text(content if "not toml" in content else content + paths)
    done = run(str(BIN / "rezolus-hindsight"), "--config", str(path), *flags)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert fragment in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "b").exists()


def test_help_and_umbrella_dispatch() -> None:
    """``rezolus hindsight --help`` and ``rezolus hindsight snapshot --help`` both answer."""
    service = run(str(BIN / "rezolus"), "hindsight", "--help")
    assert service.returncode == 0
    assert "--max-bytes" in service.stdout
    client = run(str(BIN / "rezolus"), "hindsight", "snapshot", "--help")
    assert client.returncode == 0
    assert "--last" in client.stdout


def test_unusable_listen_address_is_one_line_exit_1(tmp_path: Path, publisher: Publisher, hindsights) -> None:
    """A port already in use stops the second service with one line, exit 1."""
    first = Hindsight(tmp_path / "a", publisher.endpoint)
    hindsights.append(first)
    (tmp_path / "b").mkdir()
    done = run(
        str(BIN / "rezolus-hindsight"), "--config", str(first.config),
        "--directory", str(tmp_path / "b" / "buf"), "--output", str(tmp_path / "b" / "out"),
    )
    assert done.returncode == 1
    assert "cannot listen" in done.stderr
    assert "Traceback" not in done.stderr


def test_snapshot_client(tmp_path: Path, publisher: Publisher, hindsights) -> None:
    """The client writes into hindsight's output, downloads, and fails in one line."""
    hs = Hindsight(tmp_path, publisher.endpoint, interval="100ms")
    hindsights.append(hs)
    hs.wait_rows(15)
    done = run(str(BIN / "rezolus"), "hindsight", "snapshot", "--url", hs.url, "--last", "1s", "--name", "cli")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(str(hs.output / "cli.parquet"))
    assert pq.read_table(hs.output / "cli.parquet").num_rows >= 9

    target = tmp_path / "here.parquet"
    done = run(str(BIN / "rezolus-hindsight"), "snapshot", "--url", hs.url, "--download", str(target))
    assert done.returncode == 0, done.stderr
    assert pq.read_table(target).num_rows >= 15

    done = run(str(BIN / "rezolus-hindsight"), "snapshot", "--url", hs.url, "--last", "abc")
    assert done.returncode == 1
    assert done.stderr.strip().endswith("HTTP 400: last='abc': 'abc' is not a duration like 500ms, 1s, 15m or 2h")
    assert done.stderr.count("\n") == 1

    done = run(str(BIN / "rezolus-hindsight"), "snapshot", "--url", "http://127.0.0.1:9", "--timeout", "5")
    assert done.returncode == 1
    assert "cannot reach" in done.stderr
    assert done.stderr.count("\n") == 1

    done = run(str(BIN / "rezolus-hindsight"), "snapshot", "--url", "file:///etc/passwd")
    assert done.returncode == 2
    assert "http://" in done.stderr


def test_the_documented_config_file_states_the_defaults() -> None:
    """config/hindsight.toml, read as is, gives exactly the built-in defaults."""
    documented = Path(__file__).resolve().parents[2] / "config" / "hindsight.toml"
    assert config.load(str(documented), {}) == config.load(None, {})
