"""The umbrella ``rezolus`` command: ``rezolus <command> [args]``.

Each installed service registers its entry point in the ``rezolus.commands``
entry-point group, so ``rezolus agent`` runs exactly what ``rezolus-agent``
runs, and the core does not depend on any service.

As in the original, ``rezolus FILE.toml [ARGS...]`` (a first argument that
is a ``.toml`` path, not a command) runs the agent with that configuration.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points


def _commands() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group="rezolus.commands")}


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a registered subcommand."""
    args = sys.argv[1:] if argv is None else argv
    commands = _commands()
    if not args or args[0] in {"-h", "--help"}:
        names = ", ".join(sorted(commands)) or "(none installed)"
        print(f"usage: rezolus COMMAND [ARGS...]\ncommands: {names}")  # noqa: T201 - CLI help
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name.endswith(".toml") and name not in commands:
        name, rest = "agent", args
    matches = entry_points(group="rezolus.commands", name=name)
    if not matches:
        print(f"rezolus: error: unknown command {name!r}; try one of: {', '.join(sorted(commands))}", file=sys.stderr)  # noqa: T201 - CLI error
        return 2
    target = next(iter(matches)).load()
    sys.argv = [f"rezolus {name}", *rest]
    result = target(rest)
    return int(result or 0)


if __name__ == "__main__":
    raise SystemExit(main())
