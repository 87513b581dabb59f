"""Fixtures for the viewer's tests: synthetic recordings, a running viewer, and a headless chromium."""

from __future__ import annotations

import pathlib
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
import viewer_synth as synth

from support.env import VENV_BIN, require

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser

CHROMIUM = pathlib.Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def recording(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A 10-minute synthetic recording at 1 s with one gap and one agent restart."""
    return synth.write(synth.FIXTURE_PLAN, tmp_path_factory.mktemp("viewer") / "fixture.parquet")


@pytest.fixture(scope="session")
def artifacts() -> pathlib.Path:
    """The directory for test artifacts (gitignored)."""
    path = pathlib.Path(__file__).resolve().parents[2] / "artifacts"
    path.mkdir(exist_ok=True)
    return path


class ViewerProcess:
    """A ``rezolus-viewer`` subprocess on a free port; ``url`` is what it printed."""

    def __init__(self, source: str, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "rezolus-viewer"), source, "--listen", "127.0.0.1:0", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("serving "):
            self.proc.kill()
            _, err = self.proc.communicate(timeout=10)
            raise RuntimeError(f"viewer did not start: {line!r} {err!r}")
        self.url = line.split()[1]

    def stop(self) -> int:
        """Stop with SIGTERM and return the exit code."""
        self.proc.terminate()
        try:
            _, self.stderr = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, self.stderr = self.proc.communicate(timeout=5)
        return self.proc.returncode


@pytest.fixture
def viewer_factory() -> Iterator[type[ViewerProcess]]:
    """Start viewers on demand; all are stopped at teardown."""
    started: list[ViewerProcess] = []

    class _Factory(ViewerProcess):
        def __init__(self, *args: str) -> None:
            super().__init__(*args)
            started.append(self)

    yield _Factory
    for viewer in started:
        if viewer.proc.poll() is None:
            viewer.stop()


@pytest.fixture(scope="session")
def chromium() -> pathlib.Path:
    """Debian's chromium (fails in CI when missing, skips elsewhere)."""
    require(CHROMIUM.exists(), "chromium is not installed (apt-get install chromium)")
    probe = subprocess.run([sys.executable, "-c", "import playwright.sync_api"], capture_output=True, check=False)
    require(probe.returncode == 0, "the playwright package is not installed")
    return CHROMIUM



@pytest.fixture
def browser(chromium: pathlib.Path) -> Iterator[Browser]:
    """A headless chromium (Debian's, never a downloaded one)."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - optional tool, checked by the chromium fixture

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(chromium), args=synth.CHROMIUM_ARGS)
        yield b
        b.close()
