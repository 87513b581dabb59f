"""Environment helpers for tests: capability checks that fail in CI, free ports, polling, agents."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
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


def need_tool(name: str, install: str = "") -> str:
    """Path of a reference tool: skipped locally when missing, a failure in CI (``install``: how to get it)."""
    path = shutil.which(name)
    require(path is not None, f"{name} is not installed" + (f" ({install})" if install else ""))
    assert path is not None
    return path


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


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
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
