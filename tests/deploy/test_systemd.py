"""The systemd units in deploy/systemd: valid for systemd-analyze, real programs, presets.

Unit names are upstream's (the seed README's commands must work as written):
``rezolus`` (the agent, alias ``rezolus-agent``), ``rezolus-exporter`` and
``rezolus-hindsight`` (disabled by the preset).
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from compose_stack import poll, require_service

from support.docker import require_docker
from support.env import IN_CI, need_tool, require

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "deploy" / "systemd"
INSTALL_BIN = "/opt/rezolus/bin/"
SERVICES = {
    "rezolus.service": "services/agent",
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
    """Path of systemd-analyze (Debian's systemd package, installed when root); required in CI."""
    if shutil.which("systemd-analyze") is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "-qq",
                        "--no-install-recommends", "systemd"], capture_output=True, timeout=900,
                       check=False, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    return need_tool("systemd-analyze", "apt-get install systemd")


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


def test_agent_unit_is_rezolus_with_the_old_name_as_alias():
    """The agent's unit is `rezolus` (as upstream's); enabling it keeps `rezolus-agent` as an alias."""
    assert unit("rezolus.service")["Install"]["Alias"] == "rezolus-agent.service"
    assert not (UNITS / "rezolus-agent.service").exists()
    for name in ("rezolus-exporter.service", "rezolus-hindsight.service"):
        service = unit(name)["Unit"]
        assert service["Wants"] == "rezolus.service"
        assert "rezolus.service" in service["After"].split()


def test_presets_enable_agent_and_exporter_only():
    """The preset enables the agent and the exporter and leaves hindsight disabled."""
    lines = [
        line.split() for line in (UNITS / "90-rezolus.preset").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert sorted(map(tuple, lines)) == [
        ("disable", "rezolus-hindsight.service"),
        ("enable", "rezolus-exporter.service"),
        ("enable", "rezolus.service"),
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
    agent = unit("rezolus.service")["Service"]
    assert set(agent["CapabilityBoundingSet"].split()) <= {
        "CAP_BPF", "CAP_PERFMON", "CAP_SYS_ADMIN", "CAP_SYS_RESOURCE"
    }
    assert agent["ProtectSystem"] == "strict"


class SystemdHost:
    """A container booted with systemd as PID 1 and Rezolus installed from deploy/systemd."""

    def __init__(self) -> None:
        self.tag = "rezolus-systemd-host:test"
        self.name = f"rezolus-systemd-{os.getpid()}"

    def build(self) -> None:
        """Build tests/deploy/systemd_host/Dockerfile from the repository root."""
        ca = subprocess.run(["bash", str(REPO / "deploy/docker/local-ca.sh")], capture_output=True,
                            text=True, check=True).stdout
        proc = subprocess.run(
            ["docker", "build", "-q", "-f", "tests/deploy/systemd_host/Dockerfile", "-t", self.tag,
             "--build-arg", f"EXTRA_CA_CERTS={ca}", "."],
            cwd=REPO, capture_output=True, text=True, timeout=3000, check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]

    def boot(self) -> None:
        """Start it with every capability and its cgroups writable (systemd manages them)."""
        subprocess.run(
            ["docker", "run", "-d", "--name", self.name, "--cap-add=ALL",
             # --privileged would ask for capabilities a sandboxed dockerd may not hold
             "--cap-drop=SYS_RESOURCE", "--security-opt=seccomp=unconfined",
             "--security-opt=apparmor=unconfined", "--cgroupns=host",
             "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp",  # noqa: S108 - in the container
             "-v", "/sys/kernel/tracing:/sys/kernel/tracing",
             "-v", "/lib/modules:/lib/modules:ro", "-v", "/usr/src:/usr/src:ro", self.tag],
            capture_output=True, text=True, check=True)

    def sh(self, command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a shell command inside."""
        return subprocess.run(["docker", "exec", self.name, "sh", "-c", command],
                              capture_output=True, text=True, timeout=timeout, check=False)

    def remove(self) -> None:
        """Halt systemd cleanly (it removes its cgroups), then delete the container."""
        subprocess.run(["docker", "stop", "-t", "60", self.name], capture_output=True, check=False)
        subprocess.run(["docker", "rm", "-f", self.name], capture_output=True, check=False)


@pytest.fixture(scope="module")
def systemd_host():
    """A booted systemd host (slow: an image build; runs in CI or with REZOLUS_E2E=1)."""
    require(IN_CI or os.environ.get("REZOLUS_E2E") == "1",
            "slow systemd boot test: runs in CI or with REZOLUS_E2E=1")
    require(os.geteuid() == 0, "needs root for docker and BPF")
    for name in ("exporter", "hindsight"):
        require_service(name)
    require_docker()
    host = SystemdHost()
    host.build()
    try:
        host.boot()
        def booted() -> bool:
            state = host.sh("systemctl is-system-running").stdout.strip()
            return state in {"running", "degraded"}  # empty until systemd answers on its bus
        poll(booted, 180, "systemd to finish booting")
        yield host
    finally:
        host.remove()


SCRAPE = ('/opt/rezolus/bin/python -c "import urllib.request; print(urllib.request.urlopen('
          "'http://127.0.0.1:4242/metrics', timeout=5).read().decode())\"")
HINDSIGHT_ROWS = ('/opt/rezolus/bin/python -c "import json, urllib.request; print(json.load(urllib.request.urlopen('
                  "'http://127.0.0.1:4243/status', timeout=5))['rows'])\"")
SNAPSHOT_ROWS = ('for f in /var/lib/rezolus/snapshots/*.parquet; do [ -e "$f" ] && '
                 "/opt/rezolus/bin/python -c 'import sys, pyarrow.parquet as pq; "
                 "print(sys.argv[1], pq.read_metadata(sys.argv[1]).num_rows)' \"$f\"; done")


def snapshots(host: SystemdHost) -> dict[str, int]:
    """Snapshot files hindsight wrote, with their row counts (files that do not open yet are left out)."""
    rows = (line.split() for line in host.sh(SNAPSHOT_ROWS).stdout.splitlines())
    return {path: int(n) for path, n in (r for r in rows if len(r) == 2)}


def main_pid(host: SystemdHost, unit_name: str) -> str:
    """The unit's main PID ("0" when it has none)."""
    return host.sh(f"systemctl show -p MainPID --value {unit_name}").stdout.strip()


def hindsight_rows(host: SystemdHost) -> int:
    """Rows in hindsight's buffer (0 while it does not answer)."""
    out = host.sh(HINDSIGHT_ROWS).stdout.strip()
    return int(out) if out.isdigit() else 0


@pytest.mark.slow
@pytest.mark.root
@pytest.mark.timeout(3600)
def test_preset_runs_rezolus_and_the_exporter(systemd_host):
    """After the preset, `rezolus` and `rezolus-exporter` run hardened and serve BPF counts; hindsight is off."""
    host = systemd_host
    status = host.sh("systemctl is-active rezolus rezolus-exporter; "
                     "systemctl is-enabled rezolus-hindsight").stdout.split()
    assert status == ["active", "active", "disabled"], host.sh("journalctl -n 50 --no-pager").stdout

    def live() -> bool:
        text = host.sh(SCRAPE).stdout
        return "\nrezolus_exporter_agent_up 1.0" in text and "\nsyscall_total{" in text
    poll(live, 120, "BPF syscall counts served by the hardened exporter")
    down = host.sh("/opt/rezolus/bin/rezolus-agent --check 2>/dev/null | grep -v running").stdout
    print(f"\nsamplers not running in the systemd host: {down or 'none'}")


@pytest.mark.slow
@pytest.mark.root
@pytest.mark.timeout(3600)
def test_restart_rezolus_and_its_alias(systemd_host):
    """`systemctl restart rezolus` (the seed's command) and `restart rezolus-agent` both restart the agent."""
    host = systemd_host
    for name in ("rezolus", "rezolus-agent"):
        before = main_pid(host, "rezolus")
        assert host.sh(f"systemctl restart {name}").returncode == 0, name
        poll(lambda old=before: main_pid(host, "rezolus") not in {old, "0"}
             and host.sh("systemctl is-active rezolus").stdout.strip() == "active", 60,
             f"a new agent process after `systemctl restart {name}`")
    assert host.sh("systemctl show -p Id --value rezolus-agent").stdout.strip() == "rezolus.service"


@pytest.mark.slow
@pytest.mark.root
@pytest.mark.timeout(3600)
def test_seed_hindsight_commands_save_a_snapshot(systemd_host):
    """The seed's `enable`, `start`, then `systemctl kill -sHUP rezolus-hindsight` writes a snapshot with rows."""
    host = systemd_host
    for command in ("systemctl enable rezolus-hindsight", "systemctl start rezolus-hindsight"):
        proc = host.sh(command)
        assert proc.returncode == 0, (command, proc.stderr)
    assert host.sh("systemctl is-enabled rezolus-hindsight").stdout.strip() == "enabled"
    poll(lambda: host.sh("systemctl is-active rezolus-hindsight").stdout.strip() == "active", 60,
         "hindsight active")
    poll(lambda: hindsight_rows(host) >= 2, 60, "two frames in hindsight's buffer")
    before = snapshots(host)
    proc = host.sh("systemctl kill -sHUP rezolus-hindsight")
    assert proc.returncode == 0, proc.stderr
    new = poll(lambda: {p: n for p, n in snapshots(host).items() if p not in before}, 60,
               "a snapshot file after `systemctl kill -sHUP rezolus-hindsight`")
    assert all(n >= 2 for n in new.values()), new
    assert host.sh("systemctl is-active rezolus-hindsight").stdout.strip() == "active"


@pytest.mark.slow
@pytest.mark.root
@pytest.mark.timeout(3600)
def test_reload_saves_a_snapshot_too(systemd_host):
    """`systemctl reload rezolus-hindsight` (SIGHUP through ExecReload) writes a snapshot; nothing failed."""
    host = systemd_host
    if host.sh("systemctl is-active rezolus-hindsight").stdout.strip() != "active":
        assert host.sh("systemctl start rezolus-hindsight").returncode == 0
    poll(lambda: hindsight_rows(host) >= 2, 60, "two frames in hindsight's buffer")
    before = snapshots(host)
    assert host.sh("systemctl reload rezolus-hindsight").returncode == 0
    poll(lambda: any(p not in before for p in snapshots(host)), 60, "a snapshot after `systemctl reload`")
    failed = host.sh("systemctl is-failed rezolus rezolus-exporter rezolus-hindsight").stdout
    assert failed.split() == ["active", "active", "active"], failed
