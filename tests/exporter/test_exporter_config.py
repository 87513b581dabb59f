"""Configuration: the shipped file, every key, and one-line errors with exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rezolus_core.config import ConfigError
from rezolus_exporter import config

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "exporter.toml"


def test_shipped_file_equals_the_defaults():
    """config/exporter.toml documents exactly the built-in defaults."""
    assert config.load(SHIPPED) == config.load(None)


def test_every_key_is_read(tmp_path):
    """Each key of the file changes the loaded configuration."""
    path = tmp_path / "e.toml"
    path.write_text(
        'listen = "[::1]:9000"\nsource = "ipc:///tmp/agent"\nlog_level = "debug"\n'
        "stale_intervals = 5\ngzip_level = 6\n[prometheus]\nsummaries = false\n"
        'quantiles = [0.99, 0.5]\nwindow = "30s"\nhistograms = true\nhistogram_grouping_power = 1\n'
        'native_histograms = true\nnaming = "rezolus"\n'
    )
    cfg = config.load(path)
    assert cfg == config.ExporterConfig(
        listen=config.ListenAddress("::1", 9000),
        source="ipc:///tmp/agent",
        log_level="debug",
        stale_intervals=5,
        summaries=False,
        quantiles=(0.5, 0.99),
        window_ns=30_000_000_000,
        histograms=True,
        native_histograms=True,
        histogram_grouping_power=1,
        naming="rezolus",
        gzip_level=6,
    )
    assert str(cfg.listen) == "[::1]:9000"
    assert cfg.percents == (50.0, 99.0)


def test_histogram_flags_override_the_file(tmp_path):
    """--histograms and --native-histograms switch on what the file leaves off."""
    cfg = config.load(None, histograms=True, native_histograms=True)
    assert (cfg.histograms, cfg.native_histograms) == (True, True)
    assert (config.load(None).histograms, config.load(None).native_histograms) == (False, False)
    path = tmp_path / "e.toml"
    path.write_text("[prometheus]\nnaming = 'upstream'\n")
    with pytest.raises(ConfigError, match="naming: 'upstream' is not one of prometheus, rezolus"):
        config.load(path)


def test_quantiles_become_exact_percents():
    """0.999 is 99.9 percent exactly, not 99.89999999999999."""
    cfg = config.load(None)
    assert cfg.percents == (50.0, 90.0, 99.0, 99.9, 99.99)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("lisen = '0.0.0.0:1'", "lisen: unknown key"),
        (
            "[prometheus]\nhistogram_grouping_power = 4",
            "prometheus.histogram_grouping_power: 4 is outside 0..3",
        ),
        ("[prometheus]\nquantiles = [1.5]", "not strictly between 0 and 1"),
        ("[prometheus]\nquantiles = []", "at least one quantile"),
        ("[prometheus]\nquantiles = [0.5, 0.5]", "duplicates"),
        ("[prometheus]\nwindow = 'soon'", "prometheus.window"),
        ("[prometheus]\ninterval = '1s'", "prometheus.interval: unknown key"),
        ("listen = 'nowhere'", "is not HOST:PORT"),
        ("listen = '1.2.3.4:70000'", "outside 0..65535"),
        ("source = 'http://x'", "is not an endpoint"),
        ("log_level = 'loud'", "log_level"),
        ("stale_intervals = 0", "stale_intervals"),
        ("summaries = [", "not valid TOML"),
    ],
)
def test_bad_config_is_a_config_error(tmp_path, text, fragment):
    """Each mistake is one ConfigError naming the key."""
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=None) as info:
        config.load(path)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the exporter's command line to completion."""
    return subprocess.run(
        [sys.executable, "-m", "rezolus_exporter.main", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize(
    "args",
    [
        ["--config", "/nonexistent/exporter.toml"],
        ["--listen", "not-an-address"],
        ["--source", "garbage"],
        ["--bogus-flag"],
    ],
)
def test_cli_rejects_bad_input_with_one_line_and_exit_2(args):
    """Usage and configuration errors print one line on stderr, no traceback, and exit 2."""
    result = run_cli(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("rezolus-exporter: error:")
    if args[0] != "--bogus-flag":
        assert len(lines) == 1


def test_busy_listen_address_exits_1_with_one_line():
    """A port already in use is reported in one line and exit 1."""
    import socket  # noqa: PLC0415 - only this test needs a listening socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run_cli("--listen", f"127.0.0.1:{port}", "--source", "tcp://127.0.0.1:1")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert errors == [errors[0]]
    assert f"cannot listen on 127.0.0.1:{port}" in errors[0]
