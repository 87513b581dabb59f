"""Online CPU numbers from sysfs (``devices/system/cpu/online``, e.g. ``0-3,6``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


def online_cpus(sys_root: Path) -> list[int]:
    """CPU numbers listed as online; empty when the file cannot be read."""
    try:
        text = (sys_root / "devices" / "system" / "cpu" / "online").read_text(encoding="ascii").strip()
    except OSError:
        return []
    cpus: list[int] = []
    for part in filter(None, text.split(",")):
        low, _, high = part.partition("-")
        cpus.extend(range(int(low), int(high or low) + 1))
    return cpus
