"""Short-lived BPF compiler process: compile with bcc, attach, hand the fds back.

Run as ``python -m rezolus_agent.bpfchild FD`` where FD is one end of a Unix
socket pair.  It loads bcc, then reads one JSON request from stdin (source, cflags, hooks,
maps), compiles and attaches everything, then sends one JSON reply followed by
the map and attachment fds over the socket (SCM_RIGHTS) and exits.  The agent
keeps the fds: the programs stay attached as long as it holds them, and bcc's
LLVM (about 100 MB) never lives in the long-running process.

Invariants:
- Exactly one reply is sent: ``{"ok": true, "maps": {...}, "fds": [...]}`` or
  ``{"ok": false, "error": "..."}``.
- Fds are sent in the order listed in ``fds``, in chunks of at most 250.
- Queue maps named in ``fill_queues`` hold 0..max_entries-1 before any raw
  tracepoint is attached (the free cgroup slots, see ``rezolus_cgroup.h``).
- bcc asks one question of ``/proc/kallsyms`` while it compiles: does the
  symbol ``bpf_probe_read_kernel`` exist (else it maps the ``_kernel``/``_user``
  helpers to ``bpf_probe_read``).  To answer it bcc loads every one of the
  kernel's symbols (about 0.17 s of CPU, a third of the compile, here).  The child answers it
  beforehand, while the agent reads BTF: when the first line naming the
  symbol is a function, the child enters a mount namespace of its own
  (mounts private, nothing propagates back) and binds a file holding just
  that line over ``/proc/kallsyms``, so bcc reaches the same answer and
  builds the same program.  Otherwise, or when the file cannot be read or
  written or the namespace or mount is refused, bcc reads the real file, as
  before (never a compile failure).  Nothing else this process
  does reads kernel symbols (tracepoints and raw tracepoints, no kprobes).
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import sys
import tempfile
from typing import Any

_CHUNK = 250
_KALLSYMS = "/proc/kallsyms"
_PROBE_READ_KERNEL = "bpf_probe_read_kernel"
_CLONE_NEWNS = 0x00020000
_MS_BIND, _MS_REC, _MS_PRIVATE = 0x1000, 0x4000, 0x40000


def _function_line(path: str, name: str) -> bytes | None:
    """The first line of a kallsyms-format file that names ``name``, if that line is a function (t/T), else None."""
    wanted = name.encode()
    with open(path, "rb") as symbols:  # noqa: PTH123 - a plain line reader, as bcc's
        for line in symbols:
            fields = line.split()
            if len(fields) >= 3 and fields[2] == wanted:
                return line if fields[1] in {b"t", b"T"} else None
    return None


def narrow_kallsyms() -> bool:
    """Show bcc a one-line ``/proc/kallsyms`` in a private mount namespace; False when it is left as it was."""
    try:
        line = _function_line(_KALLSYMS, _PROBE_READ_KERNEL)
        if line is None:
            return False
        with tempfile.NamedTemporaryFile(prefix="rezolus-kallsyms-") as narrow:
            narrow.write(line)
            narrow.flush()
            return _bind_privately(narrow.name, _KALLSYMS)
    except OSError:
        return False


def _bind_privately(source: str, target: str) -> bool:
    """Bind ``source`` over ``target`` in a new mount namespace of this process only."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWNS) != 0:
        return False
    # Private first: a bind made while "/" is shared would propagate to the host's namespace.
    if libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        return False
    failed: int = libc.mount(source.encode(), target.encode(), None, _MS_BIND, None)
    return failed == 0


def _send(sock: socket.socket, reply: dict[str, Any], fds: list[int]) -> None:
    payload = json.dumps(reply).encode()
    sock.sendall(len(payload).to_bytes(4, "little") + payload)
    for start in range(0, len(fds), _CHUNK):
        socket.send_fds(sock, [b"F"], fds[start : start + _CHUNK])


def _attached(table: dict[Any, int], target: str) -> int:
    """Bcc keys attachment tables by bytes or str depending on the version."""
    fd = table.get(target.encode(), table.get(target))
    if fd is None:
        raise KeyError(f"{target} was not attached")
    return fd


def _compile(bpf_class: Any, request: dict[str, Any]) -> tuple[dict[str, Any], list[int]]:
    bpf = bpf_class(text=request["source"], cflags=request["cflags"])
    fds: list[int] = []
    names: list[str] = []
    maps: dict[str, Any] = {}
    for name in request["maps"]:
        table = bpf[name]
        maps[name] = {
            "fd_index": len(fds),
            "key_size": ctypes.sizeof(table.Key) if hasattr(table, "Key") else 0,  # queues have no key
            "value_size": ctypes.sizeof(table.Leaf),
            "max_entries": int(table.max_entries),
            "type": int(table.ttype),
        }
        fds.append(table.map_fd)
        names.append(f"map:{name}")
    for name in request.get("fill_queues", ()):
        # Free slot numbers must be there before the first event can claim one.
        queue = bpf[name]
        for slot in range(int(queue.max_entries)):
            queue.push(ctypes.c_uint32(slot))
    for target, fn in request["raw_tracepoints"].items():
        bpf.attach_raw_tracepoint(tp=target, fn_name=fn)
        fds.append(_attached(bpf.raw_tracepoint_fds, target))
        names.append(f"raw_tracepoint:{target}")
    for target, fn in request["tracepoints"].items():
        if target.encode() not in bpf.tracepoint_fds and target not in bpf.tracepoint_fds:
            bpf.attach_tracepoint(tp=target, fn_name=fn)
        fds.append(_attached(bpf.tracepoint_fds, target))
        names.append(f"tracepoint:{target}")
    for target, fn in [*request["raw_tracepoints"].items(), *request["tracepoints"].items()]:
        fds.append(bpf.funcs[fn.encode()].fd)
        names.append(f"prog:{target}")
    return {"ok": True, "maps": maps, "fds": names}, fds


def main() -> int:
    """Entry point of the compiler process."""
    sock = socket.socket(fileno=int(sys.argv[1]))
    try:
        from bcc import BPF  # noqa: PLC0415 - only this short-lived process may load LLVM

        # bcc is loaded and kallsyms narrowed before the request arrives: the agent computes the flags meanwhile.
        narrow_kallsyms()
        request = json.loads(sys.stdin.read())
        reply, fds = _compile(BPF, request)
    except Exception as exc:  # noqa: BLE001 - every failure must reach the agent as a reply
        _send(sock, {"ok": False, "error": f"{type(exc).__name__}: {exc}"}, [])
        return 1
    _send(sock, reply, fds)
    sys.stdout.flush()
    # bcc's atexit cleanup would disable the perf events the agent now holds.
    os._exit(0)


if __name__ == "__main__":
    raise SystemExit(main())
