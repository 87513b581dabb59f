"""CPU numbers from the kernel's CPU-list syntax (``0-3,6``) as used in sysfs.

Invariants:
- ``parse_cpu_list`` is the only parser of that syntax in the agent.
- ``online_cpus`` is empty when sysfs cannot be read (callers fall back to
  ``possible_cpus``); ``possible_cpus`` never fails.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


def parse_cpu_list(text: str) -> list[int]:
    """CPU numbers of a list such as ``0-3,5,7-8`` (whitespace and empty parts ignored)."""
    cpus: list[int] = []
    for part in filter(None, text.strip().split(",")):
        low, _, high = part.partition("-")
        cpus.extend(range(int(low), int(high or low) + 1))
    return cpus


def _read(sys_root: Path, name: str) -> str | None:
    try:
        return (sys_root / "devices" / "system" / "cpu" / name).read_text(encoding="ascii")
    except OSError:
        return None


def online_cpus(sys_root: Path) -> list[int]:
    """CPU numbers listed in ``devices/system/cpu/online``; empty when the file cannot be read."""
    text = _read(sys_root, "online")
    return parse_cpu_list(text) if text is not None else []


def possible_cpus(sys_root: Path) -> int:
    """Highest possible CPU number + 1 (BPF per-CPU rows are indexed by CPU number)."""
    text = _read(sys_root, "possible")
    cpus = parse_cpu_list(text) if text is not None else []
    return max(cpus) + 1 if cpus else os.cpu_count() or 1
