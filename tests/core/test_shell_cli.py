"""Every service's command line through the one shell: one line and exit 2 for bad settings (issue #17 items 9, 10).

Before the shell, a 400-digit duration or size ended in an OverflowError
traceback and exit 1, ``rezolus tap --count -1`` ran forever, ``--interval -1s``
gave argparse's "expected one argument", and a bad ``--source`` made the
recorder exit 1 (the exporter 2).
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import TYPE_CHECKING

import pytest

from support.env import VENV_BIN, free_port

if TYPE_CHECKING:
    from pathlib import Path

HUGE = "9" * 400


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a command to completion."""
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)


def one_line_exit_2(done: subprocess.CompletedProcess[str], prog: str, *fragments: str) -> str:
    """The run failed with exactly one ``PROG: error:`` line on stderr, exit 2, no traceback."""
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert len(lines[0]) < 300, lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("command", "flags"),
    [
        ("rezolus-agent", ["--interval", f"{HUGE}s"]),
        ("rezolus-recorder", ["--interval", f"{HUGE}s", "x.parquet"]),
        ("rezolus-recorder", ["--duration", f"{HUGE}m", "x.parquet"]),
        ("rezolus-hindsight", ["--interval", f"{HUGE}ms"]),
        ("rezolus-hindsight", ["--duration", f"{HUGE}m"]),
        ("rezolus-hindsight", ["--max-bytes", HUGE]),
        ("rezolus-hindsight", ["--max-bytes", f"{HUGE}GiB"]),
        ("rezolus-tap", ["--timeout", HUGE]),
        ("rezolus-tap", ["--count", HUGE]),
    ],
)
def test_huge_numbers_on_the_command_line(command: str, flags: list[str], tmp_path: Path) -> None:
    """A 400-digit duration, size or count is one line and exit 2 in every service."""
    done = subprocess.run([str(VENV_BIN / command), *flags], capture_output=True, text=True, timeout=60,
                          check=False, cwd=tmp_path)
    one_line_exit_2(done, command, f"command line: {flags[0]}:")


@pytest.mark.parametrize(
    ("command", "text", "key"),
    [
        ("rezolus-agent", f'[general]\ninterval = "{HUGE}s"\n', "general.interval"),
        ("rezolus-exporter", f'[prometheus]\nwindow = "{HUGE}s"\n', "prometheus.window"),
        ("rezolus-exporter", f"stale_intervals = {HUGE}\n", "stale_intervals"),
        ("rezolus-hindsight", f"max_bytes = {HUGE}\n", "max_bytes"),
        ("rezolus-hindsight", f'max_bytes = "{HUGE}"\n', "max_bytes"),
        ("rezolus-hindsight", f'duration = "{HUGE}h"\n', "duration"),
        ("rezolus-recorder", f'duration = "{HUGE}s"\n', "duration"),
        ("rezolus-viewer", f'listen = "127.0.0.1:{HUGE}"\n', "listen"),
    ],
)
def test_huge_numbers_in_the_file(command: str, text: str, key: str, tmp_path: Path) -> None:
    """The same in the TOML file of every service (recorder and viewer read one too)."""
    path = tmp_path / "c.toml"
    path.write_text(text)
    extra = ["x.parquet"] if command in {"rezolus-recorder", "rezolus-viewer"} else []
    done = subprocess.run([str(VENV_BIN / command), "--config", str(path), *extra], capture_output=True, text=True,
                          timeout=60, check=False, cwd=tmp_path)
    one_line_exit_2(done, command, f"{path}: {key}:")


@pytest.mark.parametrize("command", ["rezolus-agent", "rezolus-recorder", "rezolus-hindsight"])
def test_negative_interval_says_it_must_be_positive(command: str, tmp_path: Path) -> None:
    """``--interval -1s`` (with a space) reaches the reader, which says the interval must be positive."""
    done = subprocess.run([str(VENV_BIN / command), "--interval", "-1s"], capture_output=True, text=True,
                          timeout=60, check=False, cwd=tmp_path)
    one_line_exit_2(done, command, "--interval", "must be positive")


def test_tap_refuses_a_negative_count() -> None:
    """``rezolus tap --count -1`` is refused before it subscribes."""
    one_line_exit_2(run(str(VENV_BIN / "rezolus"), "tap", "--count", "-1"), "rezolus-tap", "--count", "at least 0")


@pytest.mark.parametrize("command", ["rezolus-recorder", "rezolus-exporter", "rezolus-hindsight"])
def test_bad_source_exits_2_everywhere(command: str, tmp_path: Path) -> None:
    """A malformed agent address is a configuration error in every subscriber."""
    done = subprocess.run([str(VENV_BIN / command), "--source", "garbage"], capture_output=True, text=True,
                          timeout=60, check=False, cwd=tmp_path)
    one_line_exit_2(done, command, "--source", "not an endpoint")


@pytest.mark.parametrize("command", ["rezolus-recorder", "rezolus-viewer"])
def test_recorder_and_viewer_read_a_config_file(command: str, tmp_path: Path) -> None:
    """``--config FILE`` is read strictly by the recorder and the viewer too."""
    path = tmp_path / "c.toml"
    path.write_text('log_level = "info"\ncolour = "blue"\n')
    done = subprocess.run([str(VENV_BIN / command), "--config", str(path), "x.parquet"], capture_output=True,
                          text=True, timeout=60, check=False, cwd=tmp_path)
    one_line_exit_2(done, command, f"{path}: colour: unknown key")


def test_a_toml_first_argument_runs_the_agent(tmp_path: Path) -> None:
    """``rezolus FILE.toml`` is ``rezolus agent FILE.toml`` (as in the original)."""
    path = tmp_path / "agent.toml"
    path.write_text('[general]\ninterval = "1ms"\n')
    one_line_exit_2(run(str(VENV_BIN / "rezolus"), str(path)), "rezolus-agent", "general.interval",
                    "shorter than the minimum 10ms")


def _first_log(proc: subprocess.Popen[str], event: str, timeout: float = 30) -> dict[str, object]:
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        record = json.loads(line)
        if record.get("event") == event:
            return record
    raise AssertionError(f"no {event!r} log line")


@pytest.mark.parametrize(
    ("command", "args", "event"),
    [
        ("rezolus-exporter", ["--listen", "127.0.0.1:0", "--source", "tcp://127.0.0.1:{port}"], "listening"),
        ("rezolus-hindsight", ["--listen", "127.0.0.1:0", "--source", "tcp://127.0.0.1:{port}",
                               "--directory", "{tmp}/b", "--output", "{tmp}/o"], "buffer ready"),
    ],
)
def test_log_lines_name_the_service_as_its_command(command: str, args: list[str], event: str, tmp_path: Path) -> None:
    """Log records carry one spelling of the service's name: its command (and the real port for port 0)."""
    port = free_port()
    argv = [a.format(port=port, tmp=tmp_path) for a in args]
    proc = subprocess.Popen([str(VENV_BIN / command), *argv], stderr=subprocess.PIPE, text=True)
    try:
        record = _first_log(proc, event)
        assert record["service"] == command
        assert not str(record["listen"]).endswith(":0"), record
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert proc.returncode == 0
