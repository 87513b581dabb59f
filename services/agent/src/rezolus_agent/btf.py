"""Struct member offsets, enum values and raw tracepoint arities from the running kernel's BTF.

BPF sources must never read kernel structs through the installed headers
(their layouts belong to another kernel).  Samplers that need a field ask
here for its byte offset in *this* kernel and pass it to the compiler as a
``-D`` macro; the BPF code reads it with ``bpf_probe_read_kernel`` (or a
direct load through a trusted BTF pointer).

Invariants:
- This is the only BTF reader.  ``kernel()`` parses ``/sys/kernel/btf/vmlinux``
  once per process (``kernel()`` and ``kernel(VMLINUX)`` share that parse);
  ``release()`` drops the parsed copy (the agent calls it after start-up, so
  steady memory does not hold it).
- A missing file, struct, member, enumerator or tracepoint raises
  ``BtfError`` naming what was asked for, never a guess.  ``BtfError`` is a
  ``SamplerUnavailable``: raised while a sampler prepares, it makes that
  sampler unavailable with this message and the others run.
- Bitfield members are refused: they have no byte offset.
- Anonymous struct/union members are searched through, as C does.
"""

from __future__ import annotations

import struct
from functools import cache
from pathlib import Path

from rezolus_agent.sampler import SamplerUnavailable

VMLINUX = Path("/sys/kernel/btf/vmlinux")

_MAGIC = 0xEB9F
_PTR, _STRUCT, _UNION, _ENUM, _TYPEDEF, _VOLATILE, _CONST, _RESTRICT, _FUNC_PROTO, _TYPE_TAG, _ENUM64 = (
    2, 4, 5, 6, 8, 9, 10, 11, 13, 18, 19)
_TRACE_PREFIX = "btf_trace_"
# Bytes after the 12-byte type header: fixed part, and per-vlen entry.
_EXTRA = {1: (4, 0), 3: (12, 0), 4: (0, 12), 5: (0, 12), 6: (0, 8), 13: (0, 8),
          14: (4, 0), 15: (0, 12), 17: (4, 0), 19: (0, 12)}


class BtfError(SamplerUnavailable):
    """The kernel's BTF is missing or lacks what was asked for (the sampler that asked cannot run)."""


class Btf:
    """A parsed BTF blob: type records by id and struct/union ids by name."""

    def __init__(self, data: bytes) -> None:
        if len(data) < 24 or struct.unpack_from("<H", data, 0)[0] != _MAGIC:
            raise BtfError("not little-endian BTF")
        hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from("<5I", data, 4)
        self._data = data
        self._strings = data[hdr_len + str_off : hdr_len + str_off + str_len]
        self._starts = [0]  # type id 0 is void
        self.structs: dict[str, int] = {}
        self.tracepoints: dict[str, int] = {}
        self._enums: list[int] = []
        pos, end = hdr_len + type_off, hdr_len + type_off + type_len
        while pos < end:
            name_off, info = struct.unpack_from("<II", data, pos)
            kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
            self._starts.append(pos)
            if kind in (_STRUCT, _UNION) and name_off:
                self.structs.setdefault(self._name(name_off), len(self._starts) - 1)
            elif kind == _TYPEDEF and name_off:
                name = self._name(name_off)
                if name.startswith(_TRACE_PREFIX):
                    self.tracepoints[name[len(_TRACE_PREFIX) :]] = len(self._starts) - 1
            elif kind in (_ENUM, _ENUM64):
                self._enums.append(len(self._starts) - 1)
            fixed, each = _EXTRA.get(kind, (0, 0))
            pos += 12 + fixed + each * vlen

    def _name(self, off: int) -> str:
        return self._strings[off : self._strings.index(b"\0", off)].decode()

    def _header(self, tid: int) -> tuple[int, int, int, int]:
        name_off, info, size_or_type = struct.unpack_from("<III", self._data, self._starts[tid])
        return name_off, (info >> 24) & 0x1F, info, size_or_type

    def _resolve(self, tid: int) -> int:
        while True:
            _, kind, _, target = self._header(tid)
            if kind not in (_TYPEDEF, _VOLATILE, _CONST, _RESTRICT, _TYPE_TAG):
                return tid
            tid = target

    def _find(self, tid: int, member: str) -> tuple[int, int] | None:
        """(byte offset, member type id) of ``member`` in the struct/union ``tid``."""
        _, kind, info, _ = self._header(tid)
        if kind not in (_STRUCT, _UNION):
            return None
        kflag = info >> 31
        pos = self._starts[tid] + 12
        for i in range(info & 0xFFFF):
            name_off, mtype, offset = struct.unpack_from("<III", self._data, pos + 12 * i)
            bits = offset & 0xFFFFFF if kflag else offset
            bitfield = kflag and offset >> 24
            if name_off == 0:
                inner = self._find(self._resolve(mtype), member)
                if inner is not None:
                    return bits // 8 + inner[0], inner[1]
                continue
            if self._name(name_off) == member:
                if bitfield or bits % 8:
                    raise BtfError(f"{member} is a bitfield")
                return bits // 8, mtype
        return None

    def raw_tracepoint_args(self, name: str) -> int:
        """How many arguments a raw tracepoint passes (its TP_PROTO, without the hidden data pointer)."""
        tid = self.tracepoints.get(name)
        if tid is None:
            raise BtfError(f"tracepoint {name} is not in the kernel's BTF")
        _, kind, _, target = self._header(self._resolve(tid))
        if kind == _PTR:
            _, kind, info, _ = self._header(self._resolve(target))
            if kind == _FUNC_PROTO:
                return (info & 0xFFFF) - 1
        raise BtfError(f"btf_trace_{name} is not a function pointer")

    def enum_value(self, name: str) -> int:
        """Value of the enumerator ``name`` (first enum that has it)."""
        wanted = name.encode()
        for tid in self._enums:
            _, kind, info, _ = self._header(tid)
            body = self._starts[tid] + 12
            each = 8 if kind == _ENUM else 12
            for i in range(info & 0xFFFF):
                name_off = struct.unpack_from("<I", self._data, body + each * i)[0]
                if self._strings[name_off : name_off + len(wanted) + 1] != wanted + b"\0":
                    continue
                if kind == _ENUM:
                    return int(struct.unpack_from("<i", self._data, body + each * i + 4)[0])
                low, high = struct.unpack_from("<II", self._data, body + each * i + 4)
                return int(low | (high << 32))
        raise BtfError(f"enum value {name} is not in the kernel's BTF")

    def offset(self, path: str) -> int:
        """Byte offset of ``struct.member[.member...]``, e.g. ``task_struct.sched_info.run_delay``."""
        name, *members = path.split(".")
        tid = self.structs.get(name)
        if tid is None:
            raise BtfError(f"struct {name} is not in the kernel's BTF")
        total = 0
        for member in members:
            found = self._find(self._resolve(tid), member)
            if found is None:
                raise BtfError(f"{path}: no member {member}")
            total += found[0]
            tid = found[1]
        return total


def kernel(path: Path = VMLINUX) -> Btf:
    """The running kernel's BTF, parsed once per process (until ``release``)."""
    return _parse(path)


@cache
def _parse(path: Path) -> Btf:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BtfError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return Btf(data)
    except BtfError as exc:
        raise BtfError(f"{path}: {exc}") from None


def parsed() -> bool:
    """Whether a parsed BTF is held (``kernel`` was called since the last ``release``)."""
    return _parse.cache_info().currsize > 0


def release() -> None:
    """Forget the parsed BTF (start-up is over; its memory can go back to the OS)."""
    _parse.cache_clear()


def offsets(fields: dict[str, str], path: Path = VMLINUX) -> tuple[str, ...]:
    """``-DMACRO=offset`` flags for ``{MACRO: "struct.member..."}``."""
    btf = kernel(path)
    return tuple(f"-D{macro}={btf.offset(field)}" for macro, field in fields.items())
