"""network_interfaces: interface error and drop counters.

Reads ``/sys/class/net/<if>/carrier_changes`` and
``/sys/class/net/<if>/statistics/{rx_crc_errors,rx_dropped,rx_missed_errors,tx_dropped}``
summed over interfaces except ``lo``.  Emits ``network_carrier_changes``,
``network_receive_errors_crc``, ``network_receive_dropped``,
``network_receive_errors_missed``, ``network_transmit_dropped`` (counters).

The files are read at most once per ``interval`` (default 1s): they are five
files per interface (hundreds on a host with a veth per container) that
count rare events, so a fast agent interval must not multiply their cost;
frames in between repeat the last totals, so every frame carries every series
and the counters stay monotonic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rezolus_agent.sampler import ProcSampler, SamplerUnavailable
from rezolus_agent.samplers._accumulate import Accumulator
from rezolus_agent.samplers._cadence import Cadence

if TYPE_CHECKING:
    from pathlib import Path

    from rezolus_agent.series import FrameBuilder

FILES = {
    "carrier_changes": ("network_carrier_changes", "events", "Link carrier changes."),
    "statistics/rx_crc_errors": ("network_receive_errors_crc", "frames", "Received frames with CRC errors."),
    "statistics/rx_dropped": ("network_receive_dropped", "packets", "Received packets dropped."),
    "statistics/rx_missed_errors": ("network_receive_errors_missed", "packets", "Received packets missed."),
    "statistics/tx_dropped": ("network_transmit_dropped", "packets", "Transmitted packets dropped."),
}


def read_interfaces(root: Path) -> dict[tuple[str, str], int]:
    """``(interface, file) -> value`` for every readable file."""
    readings: dict[tuple[str, str], int] = {}
    for iface in sorted(root.iterdir()):
        if iface.name == "lo":
            continue
        for rel in FILES:
            try:
                readings[(iface.name, rel)] = int((iface / rel).read_text(encoding="ascii"))
            except (OSError, ValueError):
                continue
    return readings


class NetworkInterfaces(ProcSampler):
    """Interface error counters from sysfs."""

    name = "network_interfaces"

    def options(self) -> None:
        """``interval``: how often the files are read (default 1s)."""
        self.read_interval_ns = self.ctx.options.duration("interval", "1s", minimum_ns=10_000_000)

    def start(self) -> None:
        """Check the directory and register the counters."""
        self._root = self.ctx.sys / "class" / "net"
        if not self._root.is_dir():
            raise SamplerUnavailable(f"{self._root} does not exist")
        reg = self.ctx.registry
        self._ids = {rel: reg.counter(name, None, unit, text) for rel, (name, unit, text) in FILES.items()}
        self._acc = Accumulator()
        self._cadence = Cadence(self.read_interval_ns)

    def sample(self, out: FrameBuilder) -> None:
        """Read every interface when ``interval`` has passed, accumulate increases, emit the totals."""
        if self._cadence.due():
            self._acc.update(read_interfaces(self._root))
        totals = self._acc.totals
        out.counters(list(self._ids.values()), [totals.get(rel, 0) for rel in self._ids])


SAMPLER = NetworkInterfaces
