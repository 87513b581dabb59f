"""Member offsets and enum values from the running kernel's BTF (``/sys/kernel/btf/vmlinux``).

Invariants:
- Offsets come only from the running kernel's own type information, never
  from installed headers (which may describe another kernel).
- A missing struct, member or enum value raises ``BtfError`` (a ``BpfError``)
  with the name; raised from ``Sampler.cflags`` it makes the loader report
  that sampler unavailable with this message and load the others.
- Bitfield members are refused (a byte offset would be wrong for them).
"""

from __future__ import annotations

import struct
from pathlib import Path

from rezolus_agent.bpfload import BpfError

VMLINUX = Path("/sys/kernel/btf/vmlinux")
_MAGIC = 0xEB9F
_STRUCT, _UNION, _ENUM, _ENUM64 = 4, 5, 6, 19
# Bytes after the 12-byte common header: fixed part, and per-vlen entry size.
_EXTRA = {
    1: (4, 0),
    3: (12, 0),
    4: (0, 12),
    5: (0, 12),
    6: (0, 8),
    13: (0, 8),
    14: (4, 0),
    15: (0, 12),
    17: (4, 0),
    19: (0, 12),
}


class BtfError(BpfError):
    """The kernel's BTF is missing or lacks a type or member we need (the loader reports the sampler unavailable)."""


def _load(path: Path) -> tuple[memoryview, int, int, bytes]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BtfError(f"cannot read {path}: {exc.strerror}") from exc
    if len(data) < 24 or struct.unpack_from("<H", data, 0)[0] != _MAGIC:
        raise BtfError(f"{path} is not little-endian BTF")
    hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from("<5I", data, 4)
    strings = data[hdr_len + str_off : hdr_len + str_off + str_len]
    start = hdr_len + type_off
    return memoryview(data), start, start + type_len, strings


def _name_offsets(strings: bytes, names: set[str]) -> dict[int, str]:
    found: dict[int, str] = {}
    for name in names:
        needle = b"\0" + name.encode() + b"\0"
        at = strings.find(needle)
        if at >= 0:
            found[at + 1] = name
    return found


def _name(strings: bytes, offset: int) -> str:
    end = strings.index(b"\0", offset)
    return strings[offset:end].decode()


def lookup(  # noqa: C901, PLR0912 - one pass over the BTF type records, by kind
    structs: dict[str, tuple[str, ...]], enums: tuple[str, ...] = (), path: Path = VMLINUX
) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """Byte offsets of the wanted direct members per struct, and values of the wanted enumerators."""
    data, pos, end, strings = _load(path)
    wanted = _name_offsets(strings, set(structs))
    offsets: dict[str, dict[str, int]] = {}
    values: dict[str, int] = {}
    enum_wanted = set(enums)
    while pos < end:
        name_off, info, _size = struct.unpack_from("<3I", data, pos)
        kind, vlen, kflag = (info >> 24) & 0x1F, info & 0xFFFF, info >> 31
        fixed, per = _EXTRA.get(kind, (0, 0))
        body = pos + 12
        if kind in (_STRUCT, _UNION) and name_off in wanted and wanted[name_off] not in offsets:
            members: dict[str, int] = {}
            for i in range(vlen):
                m_name, _m_type, m_off = struct.unpack_from("<3I", data, body + 12 * i)
                bits = m_off & 0xFFFFFF if kflag else m_off
                bitfield = (m_off >> 24) if kflag else 0
                if m_name and not bitfield and bits % 8 == 0:
                    members[_name(strings, m_name)] = bits // 8
            offsets[wanted[name_off]] = members
        elif kind in (_ENUM, _ENUM64) and enum_wanted:
            for i in range(vlen):
                e_name = struct.unpack_from("<I", data, body + per * i)[0]
                label = _name(strings, e_name)
                if label in enum_wanted:
                    if kind == _ENUM:
                        values[label] = struct.unpack_from("<i", data, body + 8 * i + 4)[0]
                    else:
                        lo, hi = struct.unpack_from("<II", data, body + 12 * i + 4)
                        values[label] = lo | (hi << 32)
        pos = body + fixed + per * vlen
    result: dict[str, dict[str, int]] = {}
    for struct_name, member_names in structs.items():
        found = offsets.get(struct_name)
        if found is None:
            raise BtfError(f"struct {struct_name} is not in the kernel's BTF")
        missing = [m for m in member_names if m not in found]
        if missing:
            raise BtfError(f"struct {struct_name} has no byte-aligned member {', '.join(missing)}")
        result[struct_name] = {m: found[m] for m in member_names}
    missing_enums = sorted(enum_wanted - set(values))
    if missing_enums:
        raise BtfError(f"enum values not in the kernel's BTF: {', '.join(missing_enums)}")
    return result, values
