"""Structured logging shared by every service.

Invariants:
- Logs go to stderr: JSON lines when stderr is not a TTY, a readable console
  rendering when it is.  Each record carries the service name.
- ``configure`` may be called more than once (tests, subcommands); the last
  call wins.
- Importing this module does not load rich: structlog would load it (about
  9 MB resident) only to draw tracebacks in colour, which services never
  print; console tracebacks are plain.  Code that imports rich itself still can.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from rezolus_core.imports import refusing

with refusing("rich"):
    import structlog

LEVELS = ("debug", "info", "warning", "error")


def configure(service: str, level: str = "info", *, json: bool | None = None) -> None:
    """Set up structlog for a service at the given level."""
    if level not in LEVELS:
        raise ValueError(f"log level {level!r} is not one of {', '.join(LEVELS)}")
    use_json = not sys.stderr.isatty() if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)


def get(name: str | None = None) -> Any:
    """A bound logger (structlog's own type is dynamic)."""
    return structlog.get_logger(name)
