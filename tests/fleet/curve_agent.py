"""A synthetic agent with a CURVE bus: ``python curve_agent.py ENDPOINT SECRET_KEY AUTHORIZED_DIR``.

Publishes ``support.synth`` frames every 100 ms through the real ``ZmqPublisher``
(so the ZAP handler, the refusal log and SIGHUP reloading are the agent's own);
logs JSON lines to stderr like the agent; prints ``bound`` once bound.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rezolus_core import log
from rezolus_core.bus import ZmqPublisher
from rezolus_core.curve import ServerKeys
from support import synth


def main() -> None:
    """Publish until SIGTERM; reload keys on SIGHUP."""
    stop, hup = threading.Event(), threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: hup.set())
    log.configure("curve-agent", "info", json=True)
    keys = ServerKeys(Path(sys.argv[2]), Path(sys.argv[3])) if len(sys.argv) > 3 else None
    publisher = ZmqPublisher(sys.argv[1], catalog_every_s=1.0, keys=keys)
    agent = synth.Agent(synth.catalog("curve-agent", cpus=2), 100 * synth.MS)
    publisher.publish_catalog(agent.cat)
    print("bound", flush=True)
    while not stop.wait(0.1):
        if hup.is_set():
            hup.clear()
            publisher.reload_keys()
        publisher.publish_frame(agent.next_frame(time.time_ns()))
    publisher.close()


if __name__ == "__main__":
    main()
