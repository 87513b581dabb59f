"""The one parser of the kernel's CPU-list syntax, and the sysfs files read with it."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from rezolus_agent.cpus import online_cpus, parse_cpu_list, possible_cpus

if TYPE_CHECKING:
    from pathlib import Path


def test_cpu_lists_parse_ranges_singles_and_blanks() -> None:
    """Ranges and single CPUs in any mix; a trailing newline or empty list gives what it says."""
    assert parse_cpu_list("0-3,5,7-8\n") == [0, 1, 2, 3, 5, 7, 8]
    assert parse_cpu_list("4") == [4]
    assert parse_cpu_list("\n") == []


def test_online_and_possible_read_sysfs(tmp_path: Path) -> None:
    """The possible count is the highest number + 1 (rows are indexed by CPU number); missing files fall back."""
    cpu = tmp_path / "devices" / "system" / "cpu"
    assert online_cpus(tmp_path) == []
    assert possible_cpus(tmp_path) == (os.cpu_count() or 1)
    cpu.mkdir(parents=True)
    (cpu / "online").write_text("0,2-3\n")
    (cpu / "possible").write_text("0-5\n")
    assert online_cpus(tmp_path) == [0, 2, 3]
    assert possible_cpus(tmp_path) == 6
    (cpu / "possible").write_text("0,8\n")
    assert possible_cpus(tmp_path) == 9
