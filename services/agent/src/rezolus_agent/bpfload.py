"""Build, compile and map the BPF half of the enabled samplers.

Invariants:
- All enabled BPF samplers compile as ONE source in ONE short-lived child
  process (``rezolus_agent.bpfchild``), so clang runs once and LLVM never stays
  resident in the agent.  The child starts (and loads bcc) while the agent
  reads the kernel's BTF for the samplers' flags.  Each sampler's source is the ``.bpf.c`` in its own
  package folder; ``samplers/rezolus.h`` is the shared header.
- Hooks of several samplers on the same tracepoint are fused into one
  generated program that calls each handler in turn (one dispatch per event);
  a handler several samplers share (``rz_cgroup__mkdir``) is called once, and
  a map several samplers list (``rz_cgroup_names``) is one map.  The source
  defines ``RZ_WITH_<sampler>`` for every sampler compiled with it, so
  handlers on a shared hook can split work (``syscall_counts`` writes the
  entry stamp of ``syscall_latency``: one task-storage get per syscall).
- Maps created with ``BPF_F_MMAPABLE`` are read through mmap as numpy views:
  no syscall per key.  Other maps are reachable by fd (see ``bpfsys``).
- A sampler whose ``cflags`` raises ``SamplerUnavailable`` (e.g. ``BtfError``)
  is not compiled; its reason is returned with the other failures.
- If the combined compile fails, each sampler is compiled alone to find the
  ones at fault; those are reported unavailable with the compiler's message
  and the rest are loaded together.
- The agent holds every attachment fd; closing them (or the agent dying)
  detaches every program.
"""

from __future__ import annotations

import json
import mmap
import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any

import numpy as np

from rezolus_agent import bpfsys, samplers
from rezolus_agent.sampler import SamplerUnavailable

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from rezolus_agent.sampler import BpfSampler

COMPILE_TIMEOUT_S = 60.0
_PAGE = mmap.PAGESIZE
_CGROUP_TABLE = re.compile(r"^RZ_CGROUP_TABLE\((\w+), (\w+)\)$", re.MULTILINE)


def include_dir() -> Path:
    """Directory of ``rezolus.h``, the header every BPF source includes."""
    return Path(samplers.__file__).parent


class BpfError(RuntimeError):
    """Compiling or loading BPF failed; the message carries the reason."""


@dataclass
class BpfMaps:
    """The maps of one sampler: mmapped arrays and raw fds."""

    arrays: dict[str, NDArray[np.uint64]] = field(default_factory=dict)
    fds: dict[str, int] = field(default_factory=dict)
    info: dict[str, dict[str, int]] = field(default_factory=dict)

    def array(self, name: str) -> NDArray[np.uint64]:
        """A live uint64 view of an mmapable array map."""
        try:
            return self.arrays[name]
        except KeyError:
            raise BpfError(f"map {name} is not an mmapable array") from None


def expand_cgroup_tables(text: str, *, first: bool) -> str:
    """Replace each ``RZ_CGROUP_TABLE(prefix, MAX)`` line with the slot table template for that prefix.

    bcc rewrites map calls only in the main source, not in included headers,
    so the shared ``rezolus_cgroup.h`` is pasted in before the first table.
    """
    template = Template((include_dir() / "rezolus_cgroup_table.h").read_text(encoding="utf-8"))
    shared = (include_dir() / "rezolus_cgroup.h").read_text(encoding="utf-8")

    def expand(match: re.Match[str]) -> str:
        nonlocal first
        head = shared if first else ""
        first = False
        return head + template.substitute(P=match.group(1), MAX=match.group(2))

    return _CGROUP_TABLE.sub(expand, text)


def generate_source(group: list[BpfSampler]) -> tuple[str, dict[str, str], dict[str, str]]:
    """One C source for all samplers, and the raw-tracepoint and tracepoint program names."""
    raw: dict[str, list[str]] = {}
    tracepoints: dict[str, list[str]] = {}
    for sampler in group:
        for hook in sampler.bpf.hooks:
            table = raw if hook.kind == "raw_tracepoint" else tracepoints
            if hook.kind not in {"raw_tracepoint", "tracepoint"}:
                raise BpfError(f"{sampler.name}: unknown hook kind {hook.kind}")
            handlers = table.setdefault(hook.target, [])
            if hook.handler not in handlers:
                handlers.append(hook.handler)
    # RZ_WITH_<sampler> tells a source which other samplers share its hooks (e.g. one task-storage get per syscall).
    parts = ['#include "rezolus.h"', *(f"#define RZ_WITH_{s.name} 1" for s in group)]
    tp_names: dict[str, str] = {}
    for target, handlers in tracepoints.items():
        category, event = target.split(":", 1)
        fn = f"tracepoint__{category}__{event}"
        tp_names[target] = fn
        # Handlers come later (they may use struct <fn>, which bcc defines here); they must inline.
        parts.extend(f"static __always_inline int {h}(void *args);" for h in handlers)
        calls = "".join(f"    {h}(args);\n" for h in handlers)
        parts.append(f"int {fn}(struct {fn} *args) {{\n{calls}    return 0;\n}}")
    first = True
    for sampler in group:
        parts.append(f"/* --- {sampler.name} --- */")
        text = sampler.source().read_text(encoding="utf-8")
        parts.append(expand_cgroup_tables(text, first=first))
        first = first and _CGROUP_TABLE.search(text) is None
    raw_names: dict[str, str] = {}
    for target, handlers in raw.items():
        fn = f"rz_raw__{target}"
        raw_names[target] = fn
        calls = "".join(f"    {h}(ctx);\n" for h in handlers)
        parts.append(f"int {fn}(struct bpf_raw_tracepoint_args *ctx) {{\n{calls}    return 0;\n}}")
    return "\n\n".join(parts) + "\n", raw_names, tp_names


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise BpfError("the BPF compiler process ended without a reply")
        data += chunk
    return data


@dataclass
class Child:
    """A compiler process started ahead of its request, so its start-up (Python, bcc, LLVM) overlaps ours."""

    proc: subprocess.Popen[bytes]
    sock: socket.socket

    @classmethod
    def spawn(cls) -> Child:
        """Start ``rezolus_agent.bpfchild``; it loads bcc, then waits for the request on stdin."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with theirs:
            proc = subprocess.Popen(
                [sys.executable, "-m", "rezolus_agent.bpfchild", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        return cls(proc, ours)

    def cancel(self) -> None:
        """Stop the process without a request (nothing was attached)."""
        with self.sock:
            self.proc.kill()
            self.proc.communicate()

    def run(self, request: dict[str, Any]) -> tuple[dict[str, Any], list[int]]:
        """Send the request; the reply and the fds it hands back."""
        with self.sock as ours:
            proc = self.proc
            try:
                _, stderr = proc.communicate(json.dumps(request).encode(), timeout=COMPILE_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise BpfError(f"BPF compile took longer than {COMPILE_TIMEOUT_S:g}s") from None
            ours.settimeout(5.0)
            try:
                size = int.from_bytes(_recv_exact(ours, 4), "little")
                reply = json.loads(_recv_exact(ours, size))
            except (OSError, BpfError) as exc:
                tail = stderr.decode(errors="replace").strip().splitlines()[-5:]
                raise BpfError(f"BPF compiler failed (exit {proc.returncode}): {' | '.join(tail)}") from exc
            if not reply.get("ok"):
                tail = [line for line in stderr.decode(errors="replace").splitlines() if "error" in line.lower()][:3]
                raise BpfError("; ".join([reply.get("error", "unknown error"), *tail]))
            fds: list[int] = []
            while len(fds) < len(reply["fds"]):
                _, got, _, _ = socket.recv_fds(ours, 1, len(reply["fds"]) - len(fds))
                if not got:
                    raise BpfError("the BPF compiler process sent fewer fds than it announced")
                fds.extend(got)
        return reply, fds


def _map_array(fd: int, info: dict[str, int]) -> NDArray[np.uint64] | None:
    if info["type"] != bpfsys.BPF_MAP_TYPE_ARRAY or info["value_size"] % 8:
        return None
    length = info["value_size"] * info["max_entries"]
    size = -(-length // _PAGE) * _PAGE
    try:
        region = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    except OSError:
        return None
    return np.frombuffer(region, dtype=np.uint64, count=length // 8)


@dataclass(frozen=True)
class Program:
    """One loaded program: its hook, the samplers whose handlers it runs, and its fd (for run statistics)."""

    hook: str
    samplers: tuple[str, ...]
    fd: int


def _flags(group: list[BpfSampler]) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    """Each sampler's compiler flags, or why it cannot run."""
    failures: dict[str, str] = {}
    flags: dict[str, tuple[str, ...]] = {}
    for sampler in group:
        try:
            flags[sampler.name] = sampler.cflags()
        except SamplerUnavailable as exc:
            failures[sampler.name] = str(exc)
    return flags, failures


class BpfLoader:
    """Owns every fd of the loaded programs; ``close`` detaches them all."""

    def __init__(self, cpus: int) -> None:
        self.cpus = cpus
        self.fds: list[int] = []
        self.source = ""
        self.programs: list[Program] = []

    def _load(
        self, group: list[BpfSampler], flags: dict[str, tuple[str, ...]], child: Child | None = None
    ) -> dict[str, BpfMaps]:
        source, raw_names, tp_names = generate_source(group)
        cflags = [f"-I{include_dir()}", f"-DRZ_NR_CPUS={self.cpus}", "-Wno-unused-function"]
        for sampler in group:
            cflags.extend(flags[sampler.name])
        maps_wanted = list(dict.fromkeys(m for s in group for m in s.bpf.maps))
        request = {
            "source": source,
            "cflags": cflags,
            "maps": maps_wanted,
            "fill_queues": [m for m in maps_wanted if m.endswith("_cgroup_free")],
            "raw_tracepoints": raw_names,
            "tracepoints": tp_names,
        }
        reply, fds = (child or Child.spawn()).run(request)
        self.fds.extend(fds)
        self.source = source
        users: dict[str, list[str]] = {}
        for sampler in group:
            for hook in sampler.bpf.hooks:
                names = users.setdefault(hook.target, [])
                if sampler.name not in names:
                    names.append(sampler.name)
        self.programs = [
            Program(label.removeprefix("prog:"), tuple(users[label.removeprefix("prog:")]), fd)
            for label, fd in zip(reply["fds"], fds, strict=True)
            if label.startswith("prog:")
        ]
        result: dict[str, BpfMaps] = {}
        for sampler in group:
            maps = BpfMaps()
            for name in sampler.bpf.maps:
                info = reply["maps"][name]
                fd = fds[info["fd_index"]]
                maps.fds[name] = fd
                maps.info[name] = info
                view = _map_array(fd, info)
                if view is not None:
                    maps.arrays[name] = view
            result[sampler.name] = maps
        return result

    def load(self, group: list[BpfSampler]) -> tuple[dict[str, BpfMaps], dict[str, str]]:
        """Compile and attach; return maps per sampler and failure reasons per sampler."""
        child = Child.spawn() if group else None
        flags, failures = _flags(group)
        ready = [s for s in group if s.name in flags]
        if not ready:
            if child is not None:
                child.cancel()
            return {}, failures
        try:
            return self._load(ready, flags, child), failures
        except BpfError as exc:
            if len(ready) == 1:
                return {}, {**failures, ready[0].name: str(exc)}
        good: list[BpfSampler] = []
        for sampler in ready:
            probe = BpfLoader(self.cpus)
            try:
                probe._load([sampler], flags)
                good.append(sampler)
            except BpfError as exc:
                failures[sampler.name] = str(exc)
            finally:
                probe.close()
        if not good:
            return {}, failures
        try:
            return self._load(good, flags), failures
        except BpfError as exc:
            failures.update({s.name: str(exc) for s in good})
            return {}, failures

    def close(self) -> None:
        """Close every fd: programs detach, maps are freed."""
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                continue
        self.fds.clear()
        self.programs.clear()
