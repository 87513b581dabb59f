"""The systemd units in deploy/systemd: valid for systemd-analyze, real programs, presets."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from support.env import require

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "deploy" / "systemd"
INSTALL_BIN = "/opt/rezolus/bin/"
SERVICES = {
    "rezolus-agent.service": "services/agent",
    "rezolus-exporter.service": "services/exporter",
    "rezolus-hindsight.service": "services/hindsight",
}


def unit(name: str) -> configparser.RawConfigParser:
    """Parse a unit file (repeated keys keep the last value, enough for these checks)."""
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / name)
    return parser


def exec_start(name: str) -> list[str]:
    """The ExecStart command line of a unit, continuation lines joined."""
    return unit(name)["Service"]["ExecStart"].replace("\\\n", " ").split()


@pytest.fixture(scope="module")
def systemd_analyze() -> str:
    """Path of systemd-analyze (Debian's systemd package); required in CI."""
    path = shutil.which("systemd-analyze")
    require(path is not None, "systemd-analyze is not installed (apt-get install systemd)")
    assert path is not None
    return path


def test_units_pass_systemd_analyze_verify(tmp_path, systemd_analyze):
    """systemd-analyze verify accepts every unit with no warning, programs pointed at this venv."""
    venv_bin = str(Path(sys.executable).parent) + "/"
    for name in SERVICES:
        text = (UNITS / name).read_text().replace(INSTALL_BIN, venv_bin)
        (tmp_path / name).write_text(text)
    proc = subprocess.run(
        [systemd_analyze, "verify", *(str(tmp_path / n) for n in SERVICES)],
        capture_output=True, text=True, check=False, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "", proc.stderr


def test_exec_start_names_each_services_console_script():
    """Each unit runs the console script its service's pyproject declares, with /etc/rezolus config."""
    for name, directory in SERVICES.items():
        project = tomllib.loads((REPO / directory / "pyproject.toml").read_text())["project"]
        argv = exec_start(name)
        program = argv[0].removeprefix(INSTALL_BIN)
        assert argv[0].startswith(INSTALL_BIN)
        assert program in project["scripts"], f"{name}: {program} is not a script of {directory}"
        config = argv[argv.index("--config") + 1]
        assert config.startswith("/etc/rezolus/"), name
        assert Path(config).name == f"{program.removeprefix('rezolus-')}.toml"


def test_presets_enable_agent_and_exporter_only():
    """The preset enables the agent and the exporter and leaves hindsight disabled."""
    lines = [
        line.split() for line in (UNITS / "90-rezolus.preset").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert sorted(map(tuple, lines)) == [
        ("disable", "rezolus-hindsight.service"),
        ("enable", "rezolus-agent.service"),
        ("enable", "rezolus-exporter.service"),
    ]
    for name in SERVICES:
        assert unit(name)["Install"]["WantedBy"] == "multi-user.target"


def test_hindsight_reload_sends_sighup():
    """`systemctl reload rezolus-hindsight` sends SIGHUP, which makes hindsight take a snapshot."""
    assert unit("rezolus-hindsight.service")["Service"]["ExecReload"] == "/bin/kill -HUP $MAINPID"


def test_only_the_agent_keeps_capabilities():
    """The exporter and hindsight run with no capabilities as dynamic users; the agent keeps BPF's."""
    for name in ("rezolus-exporter.service", "rezolus-hindsight.service"):
        service = unit(name)["Service"]
        assert service["CapabilityBoundingSet"] == ""
        assert service["DynamicUser"] == "yes"
        assert service["NoNewPrivileges"] == "yes"
    agent = unit("rezolus-agent.service")["Service"]
    assert set(agent["CapabilityBoundingSet"].split()) <= {
        "CAP_BPF", "CAP_PERFMON", "CAP_SYS_ADMIN", "CAP_SYS_RESOURCE"
    }
    assert agent["ProtectSystem"] == "strict"
