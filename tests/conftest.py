"""Shared fixtures: capability checks that fail in CI instead of skipping, free ports, the agent."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
IN_CI = os.environ.get("CI", "").lower() == "true"


def require(condition: bool, reason: str) -> None:
    """Skip locally when a capability is missing, but fail in CI (nothing is skipped silently there)."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required capability missing in CI: {reason}")
    pytest.skip(reason)


def bpf_capable() -> tuple[bool, str]:
    """Whether this process can compile and attach BPF with bcc."""
    if os.geteuid() != 0:
        return False, "needs root"
    probe = subprocess.run([sys.executable, "-c", "import bcc"], capture_output=True, check=False)
    if probe.returncode != 0:
        return False, "bcc is not importable (python3-bpfcc)"
    if not Path("/sys/kernel/tracing/events/raw_syscalls").is_dir():
        return False, "tracefs is not mounted"
    return True, ""


@pytest.fixture(scope="session")
def root_bpf() -> None:
    """Require root + bcc + tracefs."""
    ok, reason = bpf_capable()
    require(ok, reason)


@pytest.fixture(scope="session")
def bpftrace() -> str:
    """Path of bpftrace, required in CI."""
    path = shutil.which("bpftrace")
    require(path is not None, "bpftrace is not installed")
    assert path is not None
    return path


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):  # noqa: ANN001, ANN201
    """Poll ``predicate`` until it returns a truthy value or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class AgentProcess:
    """A live rezolus-agent subprocess on a free loopback port."""

    def __init__(self, interval: str = "100ms", extra: list[str] | None = None, config: Path | None = None) -> None:
        self.endpoint = f"tcp://127.0.0.1:{free_port()}"
        args = [str(VENV_BIN / "rezolus-agent"), "--listen", self.endpoint, "--interval", interval]
        if config is not None:
            args += ["--config", str(config)]
        self.proc = subprocess.Popen([*args, *(extra or [])], stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def stop(self) -> tuple[int, str]:
        """SIGTERM and collect exit code and stderr."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return self.proc.returncode, err.decode(errors="replace")


@pytest.fixture
def agent_factory() -> Iterator[type[AgentProcess]]:
    """Start agents on demand; all are stopped at teardown."""
    started: list[AgentProcess] = []

    class _Factory(AgentProcess):
        def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
            super().__init__(*args, **kwargs)
            started.append(self)

    yield _Factory
    for agent in started:
        agent.stop()
