"""Network namespaces for the seed tests, so the seed commands run exactly as written.

The seed README's commands use the default ports (4241 agent, 4242 exporter,
4243 hindsight) and, for hindsight, /var/lib/rezolus; inside a namespace of
its own a test can use them without touching the host's services or files.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from support.env import VENV_BIN

REPO = Path(__file__).resolve().parents[2]
SEED_AGENT = Path(__file__).with_name("seed_agent.py")


class Namespace:
    """A named network namespace; commands run in it with ``ip netns exec``."""

    def __init__(self) -> None:
        self.name = f"rzseed-{uuid.uuid4().hex[:8]}"
        self.processes: list[subprocess.Popen[str]] = []

    def command(self, *args: str, private_var_lib: bool = False) -> list[str]:
        """``args`` run inside the namespace (with a private tmpfs on /var/lib if asked)."""
        if private_var_lib:
            script = 'mount -t tmpfs rzseed /var/lib && exec "$@"'
            return ["ip", "netns", "exec", self.name, "sh", "-c", script, "sh", *args]
        return ["ip", "netns", "exec", self.name, *args]

    def run(self, *args: str, timeout: float = 60, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
        """Run to completion inside the namespace."""
        return subprocess.run(self.command(*args), capture_output=True, text=True, timeout=timeout, check=False,
                              cwd=cwd)

    def start(self, *args: str, cwd: Path = REPO, private_var_lib: bool = False) -> subprocess.Popen[str]:
        """Start a process inside the namespace (stopped at teardown)."""
        proc = subprocess.Popen(self.command(*args, private_var_lib=private_var_lib), cwd=cwd, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.processes.append(proc)
        return proc

    def synthetic_agent(self, interval_ms: int = 100) -> subprocess.Popen[str]:
        """A synthetic agent on tcp://127.0.0.1:4241, the agent's default address."""
        proc = self.start(sys.executable, str(SEED_AGENT), "tcp://127.0.0.1:4241", str(interval_ms))
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "bound", proc.stderr.read() if proc.stderr else line
        return proc

    def python(self, code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run Python code inside the namespace."""
        return self.run(sys.executable, "-c", code, timeout=timeout)


def rezolus(*args: str) -> list[str]:
    """The umbrella command with its arguments."""
    return [str(VENV_BIN / "rezolus"), *args]
