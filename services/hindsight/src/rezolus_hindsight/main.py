"""``rezolus-hindsight`` (also ``rezolus hindsight``): the service, or its snapshot client.

``rezolus-hindsight [--config FILE] [--source ...] ...`` runs the service;
``rezolus-hindsight snapshot ...`` asks a running one for a snapshot.
"""

from __future__ import annotations

import signal
import sys

from rezolus_core import log
from rezolus_core.lifecycle import guard_config, run_service
from rezolus_core.shell import config_path
from rezolus_hindsight import client
from rezolus_hindsight import config as hindsight_config

PROG = hindsight_config.PROG


def main(argv: list[str] | None = None) -> int:
    """Run the service, or the snapshot client when the first argument is ``snapshot``."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args and args[0] == "snapshot":
        return client.main(args[1:])
    spec = hindsight_config.SPEC
    parser = spec.parser()
    parser.add_argument("config_file", nargs="?", metavar="CONFIG", help="TOML configuration (same as --config)")
    options = parser.parse_args(spec.normalize(args))

    def build() -> int:
        config = hindsight_config.load(config_path(options), spec.flags(options))
        log.configure(PROG, config.log_level)
        from rezolus_hindsight.service import HindsightService  # noqa: PLC0415 - keeps --help fast
        from rezolus_recording.arrow import one_heap, without_pandas  # noqa: PLC0415 - keeps --help fast

        one_heap()
        without_pandas()
        service = HindsightService(config)
        return run_service(service, extra_signals={signal.SIGHUP: service.on_sighup})

    return guard_config(PROG, build)


if __name__ == "__main__":
    sys.exit(main())
