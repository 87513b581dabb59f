"""``rezolus-hindsight`` (also ``rezolus hindsight``): the service, or its snapshot client.

``rezolus-hindsight [--config FILE] [--source ...] ...`` runs the service;
``rezolus-hindsight snapshot ...`` asks a running one for a snapshot.
"""

from __future__ import annotations

import argparse
import signal
import sys

from rezolus_core import log
from rezolus_core.lifecycle import guard_config, run_service
from rezolus_hindsight import client
from rezolus_hindsight import config as hindsight_config

PROG = "rezolus-hindsight"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Keep a rolling high-resolution buffer of the agent's frames on disk; "
        "snapshot it to parquet with POST /snapshot or SIGHUP. "
        "Run `rezolus-hindsight snapshot --help` for the client.",
    )
    parser.add_argument("--config", help="TOML configuration (see config/hindsight.toml)")
    parser.add_argument("--source", help="agent endpoint, like tcp://127.0.0.1:4241")
    parser.add_argument("--interval", help="one frame per interval is kept, like 1s or 100ms")
    parser.add_argument("--duration", help="how far back the buffer reaches, like 15m")
    parser.add_argument("--max-bytes", dest="max_bytes", help="hard cap on disk use, like 1GiB")
    parser.add_argument("--directory", help="where the buffer lives")
    parser.add_argument("--output", help="directory for snapshots")
    parser.add_argument("--listen", help="HTTP address, like 127.0.0.1:4243")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the service, or the snapshot client when the first argument is ``snapshot``."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args and args[0] == "snapshot":
        return client.main(args[1:])
    options = _parser().parse_args(args)
    overrides = {key: getattr(options, key) for key in hindsight_config.FLAG_KEYS}

    def build() -> int:
        config = hindsight_config.load(options.config, overrides)
        log.configure("hindsight", config.log_level)
        from rezolus_hindsight.service import HindsightService  # noqa: PLC0415 - keeps --help fast

        service = HindsightService(config)
        return run_service(service, extra_signals={signal.SIGHUP: service.on_sighup})

    return guard_config(PROG, build)


if __name__ == "__main__":
    sys.exit(main())
