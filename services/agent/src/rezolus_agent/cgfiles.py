"""Parsers of cgroup v1 and v2 interface files (bytes in, canonical values out; no I/O).

Invariants:
- Every parser returns ``{canonical key: int}`` in the agent's units
  (nanoseconds, bytes, counts) and raises ``ValueError`` on anything it does
  not recognise; a caller never gets a half-parsed file.
- Canonical keys (the sampler maps them to series): ``user``, ``system``,
  ``periods``, ``throttled_periods``, ``throttled_time``, ``quota``,
  ``period``, ``memory_current``, ``memory_limit``, ``swap_current``,
  ``event_<low|high|max|oom|oom_kill>``, ``io_read_bytes``,
  ``io_write_bytes``, ``io_read_ops``, ``io_write_ops``,
  ``<cpu|memory|io>_<some|full>`` (pressure stall, ns).
- An unlimited quota or memory limit is 0 (``max`` in v2, ``-1`` or the
  page-counter maximum in v1).
- Block IO is summed over devices; only the read and write directions count.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

US = 1000
# v1 reports "no limit" as PAGE_COUNTER_MAX pages; anything this large is no limit.
V1_UNLIMITED = 1 << 62


def flat(data: bytes) -> dict[bytes, int]:
    """A flat-keyed file (``key value`` per line) as raw keys → ints."""
    tokens = data.split()
    if len(tokens) % 2:
        raise ValueError("odd number of fields")
    return dict(zip(tokens[0::2], map(int, tokens[1::2]), strict=True))


def _pick(values: dict[bytes, int], wanted: dict[bytes, tuple[str, int]]) -> dict[str, int]:
    return {key: values[raw] * scale for raw, (key, scale) in wanted.items() if raw in values}


_V2_CPU = {
    b"user_usec": ("user", US), b"system_usec": ("system", US), b"nr_periods": ("periods", 1),
    b"nr_throttled": ("throttled_periods", 1), b"throttled_usec": ("throttled_time", US),
}
_V1_CPU = {b"nr_periods": ("periods", 1), b"nr_throttled": ("throttled_periods", 1),
           b"throttled_time": ("throttled_time", 1)}
_EVENTS = {k.encode(): (f"event_{k}", 1) for k in ("low", "high", "max", "oom", "oom_kill")}


def v2_cpu_stat(data: bytes) -> dict[str, int]:
    """v2 ``cpu.stat``: user/system time and (with the cpu controller) bandwidth counters."""
    values = _pick(flat(data), _V2_CPU)
    if "user" not in values or "system" not in values:
        raise ValueError("no user_usec/system_usec")
    return values


def v2_cpu_usage(data: bytes) -> dict[str, int]:
    """v2 ``cpu.stat`` read only for user/system time."""
    values = v2_cpu_stat(data)
    return {"user": values["user"], "system": values["system"]}


def v2_cpu_bandwidth(data: bytes) -> dict[str, int]:
    """v2 ``cpu.stat`` read only for the bandwidth counters."""
    values = v2_cpu_stat(data)
    return {k: v for k, v in values.items() if k not in ("user", "system")}


def v1_cpu_stat(data: bytes) -> dict[str, int]:
    """v1 ``cpu.stat``: bandwidth counters (throttled_time is already ns)."""
    values = _pick(flat(data), _V1_CPU)
    if len(values) != len(_V1_CPU):
        raise ValueError("missing nr_periods/nr_throttled/throttled_time")
    return values


def v2_cpu_max(data: bytes) -> dict[str, int]:
    """v2 ``cpu.max`` (``<quota|max> <period>`` in µs)."""
    fields = data.split()
    if len(fields) != 2:
        raise ValueError("expected '<quota> <period>'")
    quota = 0 if fields[0] == b"max" else int(fields[0]) * US
    return {"quota": quota, "period": int(fields[1]) * US}


def single(key: str, *, unlimited: bytes | None = None, scale: int = 1) -> Callable[[bytes], dict[str, int]]:
    """A one-number file; ``unlimited`` (v2 ``max``, v1 ``-1``) and v1's page-counter maximum read as 0."""

    def parse(data: bytes) -> dict[str, int]:
        text = data.strip()
        if unlimited is not None and text == unlimited:
            return {key: 0}
        value = int(text)
        if unlimited is not None and value >= V1_UNLIMITED:
            return {key: 0}
        if value < 0 or b"\n" in text:
            raise ValueError("not a single non-negative number")
        return {key: value * scale}

    return parse


def v2_memory_events(data: bytes) -> dict[str, int]:
    """v2 ``memory.events``."""
    values = _pick(flat(data), _EVENTS)
    if "event_max" not in values:
        raise ValueError("no max field")
    return values


def v1_oom_control(data: bytes) -> dict[str, int]:
    """v1 ``memory.oom_control``: the ``oom_kill`` counter (kernels since 4.13)."""
    values = flat(data)
    return {"event_oom_kill": values[b"oom_kill"]} if b"oom_kill" in values else {}


def v2_io_stat(data: bytes) -> dict[str, int]:
    """v2 ``io.stat``: bytes and operations summed over devices."""
    totals = {b"rbytes": 0, b"wbytes": 0, b"rios": 0, b"wios": 0}
    for line in data.splitlines():
        fields = line.split()
        if not fields:
            continue
        if b":" not in fields[0]:
            raise ValueError("line does not start with a device")
        for field in fields[1:]:
            name, sep, value = field.partition(b"=")
            if not sep:
                raise ValueError("field without '='")
            if name in totals:
                totals[name] += int(value)
    return {"io_read_bytes": totals[b"rbytes"], "io_write_bytes": totals[b"wbytes"],
            "io_read_ops": totals[b"rios"], "io_write_ops": totals[b"wios"]}


def v1_blkio(kind: str) -> Callable[[bytes], dict[str, int]]:
    """v1 ``blkio.throttle.io_service_bytes`` / ``io_serviced``: read and write summed over devices."""

    def parse(data: bytes) -> dict[str, int]:
        read = write = 0
        for line in data.splitlines():
            fields = line.split()
            if len(fields) == 2 and fields[0] == b"Total":
                int(fields[1])
                continue
            if len(fields) != 3 or b":" not in fields[0]:
                raise ValueError("expected '<major:minor> <op> <value>'")
            value = int(fields[2])
            if fields[1] == b"Read":
                read += value
            elif fields[1] == b"Write":
                write += value
        return {f"io_read_{kind}": read, f"io_write_{kind}": write}

    return parse


def pressure(resource: str) -> Callable[[bytes], dict[str, int]]:
    """A PSI file (``some``/``full`` lines): the ``total=`` stall time, µs → ns."""
    some, full = f"{resource}_some", f"{resource}_full"

    def parse(data: bytes) -> dict[str, int]:
        tokens = data.split()
        if len(tokens) == 10 and tokens[0] == b"some" and tokens[5] == b"full" and tokens[4][:6] == b"total=" \
                and tokens[9][:6] == b"total=":  # the kernel's layout, parsed without a loop
            return {some: int(tokens[4][6:]) * US, full: int(tokens[9][6:]) * US}
        return _pressure_lines(resource, data)

    return parse


def _pressure_lines(resource: str, data: bytes) -> dict[str, int]:
    values: dict[str, int] = {}
    for line in data.splitlines():
        fields = line.split()
        if not fields:
            continue
        if fields[0] not in (b"some", b"full"):
            raise ValueError("line is not some/full")
        total = next((f[6:] for f in fields[1:] if f.startswith(b"total=")), None)
        if total is None:
            raise ValueError("no total= field")
        values[f"{resource}_{fields[0].decode()}"] = int(total) * US
    if f"{resource}_some" not in values:
        raise ValueError("no some line")
    return values
