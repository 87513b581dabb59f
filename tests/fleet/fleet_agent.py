"""A synthetic agent for the fleet tests: ``python fleet_agent.py ENDPOINT HOSTNAME``.

Publishes ``support.synth`` frames on the 100 ms wall-clock grid through the
real ``ZmqPublisher`` under a fresh random instance id and the given
hostname; prints ``bound`` once bound and, after SIGTERM, one JSON line:
``{"instance": ..., "timestamps": [...]}`` (every frame it published).
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support import synth


def main() -> None:
    """Publish until SIGTERM, then report what was published."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    instance = uuid.uuid4().hex
    agent = synth.SyntheticAgent(sys.argv[1], instance=instance, host={**synth.HOST, "hostname": sys.argv[2]})
    agent.start()
    print("bound", flush=True)
    stop.wait()
    agent.stop()
    print(json.dumps({"instance": instance, "timestamps": [f.timestamp_ns for f in agent.published]}), flush=True)


if __name__ == "__main__":
    main()
