"""A synthetic agent for the seed-command tests: ``python seed_agent.py ENDPOINT INTERVAL_MS``.

Publishes the shared synthetic agent's frames (``support.synth``) on the wall-clock grid until
SIGTERM/SIGINT; prints ``bound`` once the socket is bound.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support import synth


def main() -> None:
    """Publish until asked to stop."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    agent = synth.SyntheticAgent(sys.argv[1], interval_ns=int(sys.argv[2]) * synth.MS).start()
    print("bound", flush=True)
    stop.wait()
    agent.stop()


if __name__ == "__main__":
    main()
