"""Minimal bpf(2) map calls for the agent process, which never imports bcc.

Used for the few maps that are not mmapable (the cgroup-id → slot hash, the
queue of free cgroup slots, the cgroup names the kernel recorded).  Keys and values are raw bytes of the sizes the
map was created with.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import os
import platform

BPF_MAP_TYPE_HASH = 1
BPF_MAP_TYPE_ARRAY = 2

_BPF_MAP_LOOKUP_ELEM = 1
_BPF_MAP_UPDATE_ELEM = 2
_BPF_MAP_DELETE_ELEM = 3
_BPF_MAP_GET_NEXT_KEY = 4
_SYSCALL_BPF = {"x86_64": 321, "aarch64": 280}


class _MapElemAttr(ctypes.Structure):
    _fields_ = (
        ("map_fd", ctypes.c_uint32),
        ("pad", ctypes.c_uint32),
        ("key", ctypes.c_uint64),
        ("value", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
    )


@functools.cache
def _libc() -> ctypes.CDLL:
    # find_library runs ldconfig in a subprocess: look it up once per process.
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _call(cmd: int, fd: int, key: bytes | None, value: ctypes.Array[ctypes.c_char] | None, flags: int = 0) -> int:
    nr = _SYSCALL_BPF.get(platform.machine())
    if nr is None:
        raise OSError(errno.ENOSYS, f"bpf(2) number unknown for {platform.machine()}")
    key_buf = None if key is None else ctypes.create_string_buffer(key, len(key))
    attr = _MapElemAttr(
        map_fd=fd,
        key=0 if key_buf is None else ctypes.addressof(key_buf),
        value=0 if value is None else ctypes.addressof(value),
        flags=flags,
    )
    libc = _libc()
    result: int = libc.syscall(
        ctypes.c_long(nr), ctypes.c_int(cmd), ctypes.byref(attr), ctypes.c_uint(ctypes.sizeof(attr))
    )
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


def update(fd: int, key: bytes, value: bytes) -> None:
    """Insert or replace one element."""
    buf = ctypes.create_string_buffer(value, len(value))
    _call(_BPF_MAP_UPDATE_ELEM, fd, key, buf)


def push(fd: int, value: bytes) -> None:
    """Push one element onto a queue map."""
    buf = ctypes.create_string_buffer(value, len(value))
    _call(_BPF_MAP_UPDATE_ELEM, fd, None, buf)


def delete(fd: int, key: bytes) -> bool:
    """Remove one element; False when it was not there."""
    try:
        _call(_BPF_MAP_DELETE_ELEM, fd, key, None)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return False
        raise
    return True


def lookup(fd: int, key: bytes, value_size: int) -> bytes | None:
    """The value stored under a key, or None."""
    buf = ctypes.create_string_buffer(value_size)
    try:
        _call(_BPF_MAP_LOOKUP_ELEM, fd, key, buf)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    return buf.raw


_BPF_ENABLE_STATS = 32
BPF_STATS_RUN_TIME = 0


def enable_stats() -> int:
    """Turn on the kernel's BPF run-time statistics while the returned fd stays open (BPF_ENABLE_STATS).

    The kernel keeps a count of holders: closing the fd, or the process dying
    by any signal, restores ``kernel.bpf_stats_enabled`` to what it was.
    """
    nr = _SYSCALL_BPF.get(platform.machine())
    if nr is None:
        raise OSError(errno.ENOSYS, f"bpf(2) number unknown for {platform.machine()}")
    attr = (ctypes.c_uint32 * 4)(BPF_STATS_RUN_TIME, 0, 0, 0)
    libc = _libc()
    fd: int = libc.syscall(ctypes.c_long(nr), ctypes.c_int(_BPF_ENABLE_STATS), ctypes.byref(attr),
                           ctypes.c_uint(ctypes.sizeof(attr)))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return fd


def open_prog_info(fd: int, proc: str = "/proc") -> int:
    """An fd of this process's ``fdinfo`` file of a BPF program fd, to be re-read with ``prog_stats``."""
    return os.open(f"{proc}/self/fdinfo/{fd}", os.O_RDONLY | os.O_CLOEXEC)


def prog_stats(info_fd: int) -> tuple[int, int]:
    """``(run_cnt, run_time_ns)`` from an fd of ``open_prog_info``: one ``pread`` from offset 0, fresh each time."""
    found = {"run_cnt": 0, "run_time_ns": 0}
    for line in os.pread(info_fd, 4096, 0).decode("ascii", errors="replace").splitlines():
        key, _, value = line.partition(":")
        if key in found:
            found[key] = int(value)
    return found["run_cnt"], found["run_time_ns"]
