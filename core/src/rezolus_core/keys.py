"""``rezolus keys generate DIR NAME``: write a CURVE key pair for the bus.

Writes ``DIR/NAME.key`` (the public key: give it to the other side) and
``DIR/NAME.key_secret`` (the pair, mode 0600: keep it on this host) in
ZeroMQ's certificate format.  An existing pair is never overwritten (exit 1);
a bad command line exits 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rezolus_core.config import EXIT_CONFIG
from rezolus_core.curve import generate
from rezolus_core.lifecycle import EXIT_FAILURE, EXIT_OK, fail

PROG = "rezolus-keys"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise SystemExit(fail(PROG, message, EXIT_CONFIG))


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rezolus keys``."""
    parser = _Parser(prog=PROG, description="CURVE keys for the bus.")
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("generate", help="write NAME.key and NAME.key_secret into DIR")
    make.add_argument("directory", metavar="DIR")
    make.add_argument("name", metavar="NAME")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    name: str = args.name
    if not name or "/" in name or name.startswith("."):
        return fail(PROG, f"NAME: {name!r} is not a plain file name", EXIT_CONFIG)
    where = Path(args.directory)
    for existing in (where / f"{name}.key", where / f"{name}.key_secret"):
        if existing.exists():
            return fail(PROG, f"{existing} exists; remove it first", EXIT_FAILURE)
    try:
        public, secret = generate(where, name)
    except OSError as exc:
        return fail(PROG, f"cannot write keys into {where}: {exc.strerror}", EXIT_FAILURE)
    sys.stdout.write(f"public key: {public}\nsecret key: {secret}\n")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
