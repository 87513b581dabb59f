"""network_traffic: bytes and packets through the host's network interfaces.

Reads ``/proc/net/dev`` (every interface except ``lo``).
Emits ``network_bytes{direction}`` (counter, bytes) and
``network_packets{direction}`` (counter, packets), direction receive/transmit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rezolus_agent.sampler import ProcSampler, SamplerUnavailable
from rezolus_agent.samplers._accumulate import Accumulator
from rezolus_agent.samplers._procfile import ProcFile

if TYPE_CHECKING:
    from pathlib import Path

    from rezolus_agent.series import FrameBuilder

_COLUMNS = {"rx_bytes": 0, "rx_packets": 1, "tx_bytes": 8, "tx_packets": 9}


def parse_net_dev(data: bytes) -> dict[tuple[str, str], int]:
    """``(interface, column) -> value`` for the columns of interest, from the bytes of /proc/net/dev."""
    readings: dict[tuple[str, str], int] = {}
    for line in data.split(b"\n")[2:]:
        name, _, rest = line.partition(b":")
        iface = name.strip().decode("ascii")
        if not rest or iface == "lo":
            continue
        fields = rest.split()
        for column, position in _COLUMNS.items():
            readings[(iface, column)] = int(fields[position])
    return readings


def read_net_dev(path: Path) -> dict[tuple[str, str], int]:
    """``(interface, column) -> value`` for the columns of interest."""
    return parse_net_dev(path.read_bytes())


class NetworkTraffic(ProcSampler):
    """Host network traffic from /proc/net/dev."""

    name = "network_traffic"

    def start(self) -> None:
        """Check the file and register the four counters."""
        self._path = self.ctx.proc / "net" / "dev"
        try:
            read_net_dev(self._path)
        except OSError as exc:
            raise SamplerUnavailable(f"cannot read {self._path}: {exc.strerror}") from exc
        reg = self.ctx.registry
        self._ids = {}
        for direction, prefix in (("receive", "rx"), ("transmit", "tx")):
            self._ids[f"{prefix}_bytes"] = reg.counter(
                "network_bytes", {"direction": direction}, "bytes", "Bytes through network interfaces."
            )
            self._ids[f"{prefix}_packets"] = reg.counter(
                "network_packets", {"direction": direction}, "packets", "Packets through network interfaces."
            )
        self._acc = Accumulator()
        self._file = ProcFile(self._path)

    def sample(self, out: FrameBuilder) -> None:
        """Read once, accumulate increases, emit the totals."""
        totals = self._acc.update(parse_net_dev(self._file.read()))
        for column, sid in self._ids.items():
            out.counter(sid, totals.get(column, 0))

    def close(self) -> None:
        """Release the held file."""
        self._file.close()


SAMPLER = NetworkTraffic
