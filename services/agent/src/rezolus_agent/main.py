"""Entry point of ``rezolus-agent``.

The agent process never loads ``rich``: structlog imports it, when present,
only to draw tracebacks on a terminal, and it would hold about 4 MB of the
agent's steady memory (docs/performance-history.md, "Second pass: frame
path, start and memory").  Without it structlog prints
plain tracebacks; the JSON logs are the same.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run ``rezolus-agent`` (see ``rezolus_agent.cli``)."""
    # A None entry makes ``import rich`` raise ImportError, which structlog handles.
    sys.modules.setdefault("rich", None)  # type: ignore[arg-type]
    from rezolus_agent.cli import run  # noqa: PLC0415 - after rich is ruled out

    return run(argv)


if __name__ == "__main__":
    raise SystemExit(main())
