"""A scheduler reference whose clock reads bracket the agent's on every event.

Two observers on one event never read the clock at the same instant: a
reference that runs after the agent reads it later by the agent's program, the
tracepoint's own work and, on a virtual machine, any time the vCPU was stopped
in between (tens of microseconds to milliseconds, seen on single events here).
A wait that starts at a wake-up and ends at a switch therefore differs between
two tools by an amount with no useful bound.

This reference instead attaches two raw-tracepoint programs to each of
``sched_switch``, ``sched_wakeup`` and ``sched_wakeup_new``: an *early* one
before the agent starts (it stores the time in a per-CPU slot) and a *late*
one after the agent is attached.  Probes of one tracepoint run in the order
they were registered, with interrupts off, so on every event
``early <= agent's clock read <= late``.  Each wait and each run is kept as a
pair of bounds, ``[early end - late start, late end - early start]``, so the
agent's sum must lie inside the summed bounds, with no tolerance.

Its bookkeeping is the kernel's: a task switched out while runnable (preempted,
or ``prev_state == 0``) queues at that switch and later wake-ups do not move
that; otherwise its latest wake-up starts the wait.  Tasks are keyed by their
``task_struct`` pointer; the pid of each pointer is learned when the task is
current at a switch-out, so no kernel struct layout is read.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from typing import Any

HOOKS = ("sched_switch", "sched_wakeup", "sched_wakeup_new")
FIELDS = ("wait_lo", "wait_hi", "waits", "on_lo", "on_hi", "runs")

PROGRAM = r"""
struct bounds { u64 lo; u64 hi; };
struct acc { u64 wait_lo; u64 wait_hi; u64 waits; u64 on_lo; u64 on_hi; u64 runs; };

BPF_PERCPU_ARRAY(early, u64, 2);
BPF_HASH(queued, u64, struct bounds, 65536);
BPF_HASH(preempted, u64, u8, 65536);
BPF_HASH(running, u64, struct bounds, 65536);
BPF_HASH(acc, u64, struct acc, 65536);
BPF_HASH(pid_of, u64, u32, 65536);
BPF_ARRAY(disorder, u64, 1);

static __always_inline int stamp(u32 slot)
{
    u64 *e = early.lookup(&slot);
    if (e)
        *e = bpf_ktime_get_ns();
    return 0;
}

int early_switch(struct bpf_raw_tracepoint_args *ctx) { return stamp(0); }
int early_wakeup(struct bpf_raw_tracepoint_args *ctx) { return stamp(1); }

static __always_inline int bracket(u32 slot, struct bounds *out)
{
    u64 late = bpf_ktime_get_ns();
    u64 *e = early.lookup(&slot);
    if (!e || *e == 0 || *e > late) {
        u32 zero = 0;
        u64 *bad = disorder.lookup(&zero);
        if (bad)
            __sync_fetch_and_add(bad, 1);
        return -1;
    }
    out->lo = *e;
    out->hi = late;
    return 0;
}

int late_wakeup(struct bpf_raw_tracepoint_args *ctx)
{
    struct bounds now = {};
    if (bracket(1, &now))
        return 0;
    u64 task = ctx->args[0];
    if (preempted.lookup(&task))
        return 0;
    queued.update(&task, &now);
    return 0;
}

int late_switch(struct bpf_raw_tracepoint_args *ctx)
{
    struct bounds now = {};
    if (bracket(0, &now))
        return 0;
    u64 prev = ctx->args[1], next = ctx->args[2];
    u32 pid = bpf_get_current_pid_tgid();
    struct acc zero = {};
    if (pid != 0) {
        pid_of.update(&prev, &pid);
        struct bounds *ran = running.lookup(&prev);
        if (ran) {
            struct acc *a = acc.lookup_or_try_init(&prev, &zero);
            if (a) {
                a->on_lo += now.lo - ran->hi;
                a->on_hi += now.hi - ran->lo;
                a->runs += 1;
            }
            running.delete(&prev);
        }
        if ((ctx->args[0] & 1) || (u32)ctx->args[3] == 0) {
            u8 one = 1;
            queued.update(&prev, &now);
            preempted.update(&prev, &one);
        } else {
            queued.delete(&prev);
            preempted.delete(&prev);
        }
    }
    running.update(&next, &now);
    struct bounds *q = queued.lookup(&next);
    if (q) {
        struct acc *a = acc.lookup_or_try_init(&next, &zero);
        if (a) {
            a->wait_lo += now.lo - q->hi;
            a->wait_hi += now.hi - q->lo;
            a->waits += 1;
        }
        queued.delete(&next);
    }
    preempted.delete(&next);
    return 0;
}
"""


@dataclass
class Totals:
    """Summed bounds of the waits and runs of a set of pids."""

    wait_lo: int = 0
    wait_hi: int = 0
    waits: int = 0
    on_lo: int = 0
    on_hi: int = 0
    runs: int = 0

    def __sub__(self, other: Totals) -> Totals:
        return Totals(**{name: getattr(self, name) - getattr(other, name) for name in FIELDS})


class Bracket:
    """Early programs on construction, late programs on ``attach_late`` (after the agent)."""

    def __init__(self) -> None:
        from bcc import BPF  # noqa: PLC0415 - bcc is imported only by the tests that need root

        self._bpf: Any = BPF(text=PROGRAM.encode())
        self._fds: list[int] = []
        self._attach("early")
        self._late = False

    def attach_late(self) -> None:
        """Attach the programs that run after every probe registered so far."""
        self._attach("late")
        self._late = True

    def _attach(self, stage: str) -> None:
        # bcc's attach_raw_tracepoint allows one program per tracepoint and object.
        from bcc import BPF, libbcc  # noqa: PLC0415

        for hook in HOOKS:
            kind = "switch" if hook == "sched_switch" else "wakeup"
            fn = self._bpf.load_func(f"{stage}_{kind}".encode(), BPF.RAW_TRACEPOINT)
            fd = libbcc.lib.bpf_attach_raw_tracepoint(fn.fd, hook.encode())
            if fd < 0:
                raise OSError(f"cannot attach {stage}_{kind} to {hook}")
            self._fds.append(fd)

    def totals(self, pids: list[int]) -> Totals:
        """Summed bounds for ``pids`` since ``attach_late``."""
        assert self._late
        wanted = set(pids)
        pid_of = {key.value: value.value for key, value in self._bpf[b"pid_of"].items()}
        found = Totals()
        for key, value in self._bpf[b"acc"].items():
            if pid_of.get(key.value) in wanted:
                for field in FIELDS:
                    setattr(found, field, getattr(found, field) + getattr(value, field))
        return found

    def disorder(self) -> int:
        """Events whose early stamp was missing or later than the late one (0 unless attach order broke)."""
        return int(self._bpf[b"disorder"][ctypes.c_int(0)].value)

    def close(self) -> None:
        """Detach and free the programs."""
        for fd in self._fds:
            os.close(fd)
        self._fds = []
        self._bpf.cleanup()
