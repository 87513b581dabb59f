"""Wait until every CPU has left whatever kernel section it was in.

Invariant: when ``pass_through_every_cpu()`` returns, the calling thread has
run in process context on each CPU it may use, after the call began. A
softirq, hard interrupt or other non-preemptible stretch that had started on
a CPU before the call has therefore ended, so a counter the kernel bumps in
such a stretch and a tracepoint a few instructions later in the same stretch
are both visible to reads made after the return.
"""

from __future__ import annotations

import os


def pass_through_every_cpu() -> None:
    """Run the calling thread on each allowed CPU in turn, then restore its affinity."""
    allowed = os.sched_getaffinity(0)
    try:
        for cpu in sorted(allowed):
            os.sched_setaffinity(0, {cpu})
            os.sched_yield()
    finally:
        os.sched_setaffinity(0, allowed)
