"""``promtool check metrics`` prints nothing for the exporter's real output, in every mode."""

from __future__ import annotations

import subprocess

import exporter_helpers as h
import pytest

from support.env import need_tool

pytestmark = pytest.mark.slow

MODES = {
    "defaults": None,
    "histograms only": "[prometheus]\nsummaries = false\nhistograms = true\n",
    "both, downsampled": "[prometheus]\nhistograms = true\nhistogram_grouping_power = 0\n",
}


@pytest.fixture(scope="module")
def promtool() -> str:
    """Debian's promtool (skipped locally when missing, a failure in CI)."""
    return need_tool("promtool", "apt-get install prometheus")


def check(promtool: str, text: str) -> str:
    """Everything promtool prints about the exposition."""
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return f"exit {result.returncode}\n{result.stdout}{result.stderr}".strip()


@pytest.mark.parametrize("mode", list(MODES))
def test_promtool_is_silent_on_the_live_agent(promtool, agent_factory, tmp_path, mode):
    """The full default catalog of a live agent passes promtool's lint with no output."""
    agent = agent_factory(interval="200ms")
    with h.Exporter(agent.endpoint, MODES[mode], tmp_path) as exporter:
        text = h.scrape_until(exporter, lambda t: "cpu_usage_seconds_total" in t, "agent series", 30)
        assert "syscall_latency" in text
        assert check(promtool, text) == "exit 0"


@pytest.mark.parametrize("mode", list(MODES))
def test_promtool_is_silent_on_unusual_units(promtool, tmp_path, mode):
    """The synthetic catalog (unknown units, dimensionless counts) passes too."""
    source = f"tcp://127.0.0.1:{h.free_port()}"
    with h.SyntheticAgent(source), h.Exporter(source, MODES[mode], tmp_path) as exporter:
        text = h.scrape_until(exporter, lambda t: "widget_level" in t, "synthetic series", 30)
        assert check(promtool, text) == "exit 0"


def test_promtool_catches_a_broken_exposition(promtool):
    """The check can fail: a counter without _total and a HELP-less metric are reported."""
    out = check(promtool, "# TYPE foo counter\nfoo 1\n")
    assert out != "exit 0"
