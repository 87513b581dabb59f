"""``rezolus-agent`` (loaded by ``rezolus_agent.main``): run the agent, or ``--check`` which samplers can run here."""

from __future__ import annotations

import signal
import sys
from typing import TYPE_CHECKING

from rezolus_agent import config as agent_config
from rezolus_agent.agent import Agent
from rezolus_agent.registry import available
from rezolus_core import log
from rezolus_core.config import EXIT_CONFIG, ConfigError
from rezolus_core.lifecycle import fail, run_service
from rezolus_core.shell import config_path

if TYPE_CHECKING:
    import argparse

PROG = agent_config.PROG


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = agent_config.SPEC.parser()
    parser.add_argument("config_file", nargs="?", metavar="CONFIG", help="agent TOML file (same as --config)")
    parser.add_argument("--check", action="store_true", help="print each sampler's status and exit")
    return parser.parse_args(agent_config.SPEC.normalize(sys.argv[1:] if argv is None else argv))


def check(agent: Agent) -> int:
    """Start the samplers, print a status table, release everything."""
    agent.start_samplers()
    width = max(len(name) for name in agent.statuses)
    for status in agent.statuses.values():
        state = "running" if status.running else ("disabled" if not status.enabled else "unavailable")
        reason = f"  {status.reason}" if status.reason and status.enabled else ""
        sys.stdout.write(f"{status.name:<{width}}  {state}{reason}\n")
    for sampler in agent.running:
        sampler.close()
    agent._loader.close()  # noqa: SLF001 - the check owns this agent
    return 0


def run(argv: list[str] | None = None) -> int:
    """Parse, load the config, run the service (or the check)."""
    args = parse_args(argv)
    samplers = available()
    try:
        cfg = agent_config.load(config_path(args), samplers, **agent_config.SPEC.flags(args))
    except ConfigError as exc:
        return fail(PROG, str(exc), EXIT_CONFIG)
    log.configure(PROG, cfg.log_level)
    try:
        agent = Agent(cfg, samplers)
    except ConfigError as exc:
        return fail(PROG, str(exc), EXIT_CONFIG)
    if args.check:
        return check(agent)
    return run_service(agent, extra_signals={signal.SIGHUP: agent.reload_keys})

