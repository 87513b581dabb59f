"""Fixtures for the recorder's tests: synthetic agents and recorder subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from support import synth


class RecorderProcess:
    """A ``rezolus-recorder`` subprocess with its output captured in files."""

    def __init__(self, args, cwd, *, stderr=None):
        self.out_path = cwd / f"recorder-{time.monotonic_ns()}.out"
        self.err_path = cwd / f"recorder-{time.monotonic_ns()}.err"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._out = self.out_path.open("wb")
        self._err = self.err_path.open("wb") if stderr is None else None
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rezolus_recorder.main", *map(str, args)],
            cwd=cwd, stdout=self._out, stderr=self._err if stderr is None else stderr, env=env,
        )

    def wait(self, timeout_s=60):
        """Wait for the exit code."""
        try:
            return self.proc.wait(timeout_s)
        finally:
            self._close()

    def _close(self):
        self._out.close()
        if self._err is not None:
            self._err.close()

    @property
    def stdout(self):
        """Everything printed on stdout so far."""
        return self.out_path.read_text()

    @property
    def stderr(self):
        """Everything printed on stderr so far."""
        return self.err_path.read_text() if self._err is not None else ""

    def kill(self):
        """Stop the process if it still runs (teardown)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._close()


@pytest.fixture
def endpoint():
    """Return a free loopback endpoint."""
    return synth.free_endpoint()


@pytest.fixture
def agents():
    """Start synthetic agents; all are stopped at teardown."""
    started = []

    def start(endpoint, **kwargs):
        agent = synth.SyntheticAgent(endpoint, **kwargs).start()
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.stop()


@pytest.fixture
def recorder(tmp_path):
    """Start recorder subprocesses in ``tmp_path``; all are killed at teardown."""
    started = []

    def start(*args, cwd=None, **kwargs):
        process = RecorderProcess(args, cwd or tmp_path, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
