"""The `make run` supervisor: config parsing, prefixed output, signal forwarding, stopping."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rezolus_core.config import ConfigError
from rezolus_core.supervise import load_plan, render

REPO = Path(__file__).resolve().parents[2]

# A child that prints "NAME ready", reports each stop signal once, then exits
# with the code given for that signal (SIGINT/SIGTERM), or ignores it.
CHILD = r"""
import signal, sys
name, on_int, on_term = sys.argv[1], sys.argv[2], sys.argv[3]
def handler(signum, frame):
    print(f"{name} got {signal.Signals(signum).name}", flush=True)
    action = on_int if signum == signal.SIGINT else on_term
    if action != "ignore":
        sys.exit(int(action))
signal.signal(signal.SIGINT, handler)
signal.signal(signal.SIGTERM, handler)
print(f"{name} ready", flush=True)
open(f"{name}.ready", "w").close()
print('{"event": "hello", "level": "info", "service": "x", "n": 1}', file=sys.stderr, flush=True)
while True:
    signal.pause()
"""


def child(tmp_path: Path, name: str, on_int: str = "0", on_term: str = "0") -> str:
    """Return a TOML service table running the CHILD script."""
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    return (f'[services.{name}]\ncommand = ["{{python}}", "{script}", "{name}", '
            f'"{on_int}", "{on_term}"]\n')


class Run:
    """A supervisor subprocess whose output is read line by line with deadlines."""

    def __init__(self, config: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rezolus_core.supervise", "--config", str(config)],
            cwd=config.parent,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        assert self.proc.stdout is not None
        self._fd = self.proc.stdout.fileno()
        self.lines: list[str] = []
        self._partial = b""
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._fd, selectors.EVENT_READ)

    def _read(self, timeout: float) -> bool:
        """Read what is available (raw fd, no hidden buffer); False at EOF or timeout."""
        if not self._sel.select(timeout):
            return False
        chunk = os.read(self._fd, 65536)
        if not chunk:
            return False
        *complete, self._partial = (self._partial + chunk).split(b"\n")
        self.lines += [line.decode() for line in complete]
        return True

    def expect(self, *needles: str, timeout: float = 30.0) -> None:
        """Read output until every needle has appeared in some line."""
        deadline = time.monotonic() + timeout
        while not all(any(n in line for line in self.lines) for n in needles):
            if not self._read(max(0.0, deadline - time.monotonic())):
                pytest.fail(f"no {needles} within {timeout}s; output: {self.lines}")

    def finish(self, timeout: float = 30.0) -> int:
        """Wait for exit and collect the rest of the output."""
        deadline = time.monotonic() + timeout
        while self._read(max(0.0, deadline - time.monotonic())):
            pass
        if self._partial:
            self.lines.append(self._partial.decode())
        code = self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        self.close()
        return code

    def close(self) -> None:
        """Kill the supervisor's group if still running and release the pipe."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._sel.close()
        assert self.proc.stdout is not None
        self.proc.stdout.close()

    def count(self, needle: str) -> int:
        """How many lines contain the needle."""
        return sum(needle in line for line in self.lines)


@pytest.fixture
def run_config(tmp_path):
    """Write a run.toml from parts and return its path."""
    def make(*parts: str, grace: str = "10s") -> Path:
        path = tmp_path / "run.toml"
        path.write_text(f'[supervise]\ngrace = "{grace}"\nnotes = ["look here"]\n' + "".join(parts))
        return path
    return make


@pytest.fixture
def start():
    """Start supervisors; whatever a failing test leaves running is killed afterwards."""
    runs: list[Run] = []

    def make(config: Path) -> Run:
        runs.append(Run(config))
        return runs[-1]
    yield make
    for run in runs:
        if not run.proc.stdout or not run.proc.stdout.closed:
            run.close()


def test_plan_expands_placeholders_and_skips_disabled(tmp_path):
    """Enabled services keep file order, placeholders expand, disabled ones are left out."""
    path = tmp_path / "run.toml"
    path.write_text(
        '[services.b]\ncommand = ["{bin}/x", "--p={python}"]\nnote = "see b"\n'
        '[services.off]\nenabled = false\ncommand = ["nothing"]\n'
        '[services.a]\ncommand = ["y"]\n'
    )
    plan = load_plan(path)
    assert [s.name for s in plan.services] == ["b", "a"]
    assert plan.services[0].command == (f"{Path(sys.executable).parent}/x", f"--p={sys.executable}")
    assert plan.services[0].note == "see b"
    assert plan.grace_s == 15.0


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('[services.a]\ncommand = ["x"]\ncolour = 1\n', "services.a.colour"),
        ("[services.a]\ncommand = []\n", "services.a.command"),
        ('[services.a]\ncommand = "x"\n', "services.a.command"),
        ('[services.a]\nenabled = false\ncommand = ["x"]\n', "services"),
        ('[supervise]\ngrace = "soon"\n[services.a]\ncommand = ["x"]\n', "supervise.grace"),
        ("[services.a\n", "not valid TOML"),
    ],
)
def test_plan_errors_name_the_key(tmp_path, text, where):
    """Every configuration problem is a ConfigError that names where it is."""
    path = tmp_path / "run.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=where.replace(".", r"\.")):
        load_plan(path)


def test_config_error_is_one_line_and_exit_2(tmp_path):
    """A bad run.toml gives one line on stderr and exit code 2, no traceback."""
    path = tmp_path / "run.toml"
    path.write_text('[services.a]\ncommand = ["x"]\nbogus = true\n')
    proc = subprocess.run(
        [sys.executable, "-m", "rezolus_core.supervise", "--config", str(path)],
        capture_output=True, text=True, check=False, timeout=30,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "services.a.bogus: unknown key" in proc.stderr


def test_render_shows_json_logs_compactly():
    """Structlog JSON lines become 'level event k=v'; other lines pass through unchanged."""
    line = '{"event": "started", "level": "info", "timestamp": "t", "service": "s", "port": 1}'
    assert render(line) == "info    started port=1"
    assert render("plain text") == "plain text"
    assert render("{not json") == "{not json"
    assert render('{"no_event": 1}') == '{"no_event": 1}'


def test_ctrl_c_is_forwarded_once_to_each_service(tmp_path, run_config, start):
    """SIGINT to the supervisor's process group reaches each child exactly once; exit 0."""
    run = start(run_config(child(tmp_path, "one"), child(tmp_path, "two")))
    run.expect("one ready", "two ready", "look here", "info    hello n=1")
    os.killpg(run.proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    assert run.finish() == 0
    assert run.count("one got SIGINT") == 1
    assert run.count("two got SIGINT") == 1
    assert any(line.startswith("one |") for line in run.lines)
    assert any(line.startswith("two |") for line in run.lines)
    assert "supervise: one exited with code 0" in run.lines


def test_a_dying_service_stops_the_others(tmp_path, run_config, start):
    """When one service exits, the supervisor names it, SIGTERMs the rest and exits 1."""
    script = tmp_path / "die.py"
    script.write_text(
        "import os, sys, time\n"
        "deadline = time.monotonic() + 20\n"
        "while not os.path.exists('stayer.ready') and time.monotonic() < deadline:\n"
        "    time.sleep(0.01)\n"
        "print('dying', flush=True)\nsys.exit(3)\n"
    )
    dier = f'[services.dier]\ncommand = ["{{python}}", "{script}"]\n'
    run = start(run_config(child(tmp_path, "stayer"), dier))
    assert run.finish() == 1
    assert any("dier exited unexpectedly with code 3; stopping stayer" in ln for ln in run.lines)
    assert run.count("stayer got SIGTERM") == 1


def test_second_signal_kills(tmp_path, run_config, start):
    """A service that ignores SIGINT is killed by a second SIGINT; exit 1."""
    run = start(run_config(child(tmp_path, "stubborn", on_int="ignore")))
    run.expect("stubborn ready")
    os.kill(run.proc.pid, signal.SIGINT)
    run.expect("stubborn got SIGINT")
    os.kill(run.proc.pid, signal.SIGINT)
    assert run.finish() == 1
    assert any("second SIGINT: killing stubborn" in ln for ln in run.lines)
    assert f"supervise: stubborn exited with code {-signal.SIGKILL}" in run.lines


def test_grace_period_then_kill(tmp_path, run_config, start):
    """A service that ignores SIGTERM is killed once the grace period has passed."""
    run = start(run_config(child(tmp_path, "stubborn", on_term="ignore"), grace="500ms"))
    run.expect("stubborn ready")
    os.kill(run.proc.pid, signal.SIGTERM)
    assert run.finish() == 1
    assert any("still running after 0.5s: stubborn; killing" in ln for ln in run.lines)


def test_missing_program_stops_what_started(tmp_path, run_config, start):
    """A command that cannot start is reported, the services already started are stopped."""
    missing = '[services.ghost]\ncommand = ["/nonexistent/rezolus-ghost"]\n'
    run = start(run_config(child(tmp_path, "first"), missing))
    assert run.finish() == 1
    assert any("cannot start ghost" in ln and "/nonexistent/rezolus-ghost" in ln
               for ln in run.lines)
    # SIGTERM may arrive before the child installed its handler: either way it stopped.
    assert any(ln in {"supervise: first exited with code 0",
                      f"supervise: first exited with code {-signal.SIGTERM}"} for ln in run.lines)


def test_repository_run_toml_names_installed_programs():
    """config/run.toml runs the agent, exporter and hindsight, each a program installed in this venv."""
    plan = load_plan(REPO / "config" / "run.toml")
    names = [s.name for s in plan.services]
    assert names[:3] == ["agent", "exporter", "hindsight"]
    for spec in plan.services:
        assert Path(spec.command[0]).is_file(), f"{spec.name}: {spec.command[0]} is not installed"
