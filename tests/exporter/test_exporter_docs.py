"""docs/exporter.md maps every metric of the live agent's catalog to its exposed names."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from rezolus_core.bus import ZmqSubscriber
from rezolus_exporter import naming, plan

pytestmark = pytest.mark.slow

DOC = Path(__file__).resolve().parents[2] / "docs" / "exporter.md"


def live_catalog(agent_factory):
    """Return the catalog a freshly started agent announces."""
    agent = agent_factory(interval="200ms")
    subscriber = ZmqSubscriber(agent.endpoint)
    try:
        for _ in range(60):
            deliveries = subscriber.poll(0.5)
            if deliveries:
                return deliveries[-1].catalog
    finally:
        subscriber.close()
    code, stderr = agent.stop()
    raise AssertionError(f"no frame from the agent (exit {code}): {stderr[-2000:]}")


def test_every_agent_metric_and_exposed_name_is_documented(agent_factory):
    """Each catalog metric has a row naming its type, unit and every exposed family."""
    catalog = live_catalog(agent_factory)
    rows = {
        match.group(1): line
        for line in DOC.read_text().splitlines()
        if (match := re.match(r"\| `([a-z0-9_]+)` \|", line))
    }
    modes = ((True, False), (True, True), (False, True))
    for (summaries, histograms), names in itertools.product(modes, naming.NAMINGS):
        built = plan.build(catalog, summaries=summaries, histograms=histograms, names=names)
        assert built.dropped == ()
        for family in built.families:
            row = rows.get(family.source)
            assert row is not None, f"{family.source} has no row in {DOC.name}"
            assert f"`{family.name}" in row, (family.name, row)
            spec = next(s for s in catalog.series if s.name == family.source)
            assert f"| {spec.type.value} | {spec.unit} |" in row, row
