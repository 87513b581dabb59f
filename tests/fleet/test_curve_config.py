"""CURVE settings: key files, the agent's bind rule, and the subscriber options of every service."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import pytest
import zmq.auth

from rezolus_agent import config as agent_config
from rezolus_core import curve, tap
from rezolus_core.bus import client_keys
from rezolus_core.config import ConfigError
from rezolus_exporter import config as exporter_config
from rezolus_hindsight import config as hindsight_config
from rezolus_recorder import main as recorder_main
from support.env import VENV_BIN

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    """A directory with the pairs ``agent`` and ``sub``, and ``authorized/sub.key``."""
    for name in ("agent", "sub"):
        zmq.auth.create_certificates(tmp_path, name)
    (tmp_path / "authorized").mkdir()
    (tmp_path / "authorized" / "sub.key").write_bytes((tmp_path / "sub.key").read_bytes())
    return tmp_path


@pytest.mark.parametrize(
    ("endpoint", "local"),
    [("tcp://127.0.0.1:4241", True), ("tcp://127.5.0.1:1", True), ("tcp://[::1]:4241", True),
     ("tcp://localhost:4241", True), ("ipc:///run/rezolus/agent.sock", True), ("inproc://bus", True),
     ("tcp://0.0.0.0:4241", False), ("tcp://*:4241", False), ("tcp://10.0.0.1:4241", False),
     ("tcp://[::]:4241", False), ("tcp://agent-1:4241", False)],
)
def test_loopback_endpoints(endpoint: str, local: bool) -> None:
    """Only ipc, inproc and loopback TCP count as local."""
    assert curve.is_loopback(endpoint) is local


def test_agent_bind_rule(keys: Path) -> None:
    """Non-loopback needs CURVE or --insecure; CURVE applies on loopback too; half a pair is an error."""
    with pytest.raises(ConfigError, match="not a loopback address"):
        agent_config.load(None, {}, listen="tcp://0.0.0.0:4241")
    assert agent_config.load(None, {}, listen="tcp://0.0.0.0:4241", insecure=True).curve is None
    secured = agent_config.load(None, {}, listen="tcp://0.0.0.0:4241",
                                curve_secret_key=str(keys / "agent.key_secret"),
                                curve_authorized_keys=str(keys / "authorized"))
    assert secured.curve == curve.ServerKeys(keys / "agent.key_secret", keys / "authorized")
    with pytest.raises(ConfigError, match="--curve-authorized-keys"):
        agent_config.load(None, {}, curve_secret_key=str(keys / "agent.key_secret"))
    with pytest.raises(ConfigError, match="no secret key"):
        agent_config.load(None, {}, curve_secret_key=str(keys / "agent.key"),
                          curve_authorized_keys=str(keys / "authorized"))
    with pytest.raises(ConfigError, match="not a directory"):
        agent_config.load(None, {}, curve_secret_key=str(keys / "agent.key_secret"),
                          curve_authorized_keys=str(keys / "nowhere"))


def test_agent_bus_table_in_toml(keys: Path, tmp_path: Path) -> None:
    """The TOML ``[bus]`` table says the same as the flags."""
    path = tmp_path / "agent.toml"
    path.write_text(f'[general]\nlisten = "tcp://0.0.0.0:4241"\n[bus]\ncurve_secret_key = "{keys}/agent.key_secret"\n'
                    f'curve_authorized_keys = "{keys}/authorized"\n')
    assert agent_config.load(path, {}).curve == curve.ServerKeys(keys / "agent.key_secret", keys / "authorized")


def test_every_subscriber_reads_its_keys(keys: Path, tmp_path: Path) -> None:
    """Exporter, hindsight, recorder and tap take the same two options, from flags or from ``[bus]``."""
    flags = {"curve_server_key": str(keys / "agent.key"), "curve_key": str(keys / "sub.key_secret")}
    expected = curve.ClientKeys(keys / "agent.key", keys / "sub.key_secret")
    assert exporter_config.load(None, **flags).curve == expected
    assert hindsight_config.load(None, dict(flags)).curve == expected
    for spec in (recorder_main.SPEC, tap.SPEC):
        assert client_keys(spec.load(None, flags)) == expected
    toml = tmp_path / "exporter.toml"
    toml.write_text(f'[bus]\ncurve_server_key = "{keys}/agent.key"\ncurve_key = "{keys}/sub.key_secret"\n')
    assert exporter_config.load(toml).curve == expected
    with pytest.raises(ConfigError, match="--curve-key"):
        hindsight_config.load(None, {"curve_server_key": str(keys / "agent.key")})


def test_keys_generate(tmp_path: Path) -> None:
    """``rezolus keys generate`` writes a loadable pair, keeps the secret private and never overwrites."""
    made = subprocess.run([str(VENV_BIN / "rezolus"), "keys", "generate", str(tmp_path / "k"), "node"],
                          capture_output=True, text=True, check=False)
    assert made.returncode == 0, made.stderr
    public, secret = curve.read_pair(tmp_path / "k" / "node.key_secret")
    assert curve.read_public(tmp_path / "k" / "node.key") == public
    assert len(public) == len(secret) == 40
    assert (tmp_path / "k" / "node.key_secret").stat().st_mode & 0o077 == 0
    again = subprocess.run([str(VENV_BIN / "rezolus"), "keys", "generate", str(tmp_path / "k"), "node"],
                           capture_output=True, text=True, check=False)
    assert again.returncode == 1
    assert again.stderr.count("\n") == 1
    assert "exists" in again.stderr
