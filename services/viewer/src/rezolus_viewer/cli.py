"""One-line errors and exit codes for the viewer's one-shot commands (``compare``, ``query``).

Same contract as ``rezolus_core.lifecycle`` (bad input: one line, exit 2;
a failure: one line, exit 1), without importing the service lifecycle and
its logging and bus stacks, which would double a command's start-up time.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from rezolus_core.config import EXIT_CONFIG, ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

EXIT_FAILURE = 1


def fail(prog: str, message: str, code: int) -> int:
    """Print a one-line error for the operator and return the exit code."""
    print(f"{prog}: error: {message}", file=sys.stderr)  # noqa: T201 - operator-facing CLI error
    return code


def guard_config(prog: str, build: Callable[[], int]) -> int:
    """Run ``build`` and turn configuration errors into one line and exit 2."""
    try:
        return build()
    except ConfigError as exc:
        return fail(prog, str(exc), EXIT_CONFIG)
