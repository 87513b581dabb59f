"""``rezolus-agent``: run the agent, or ``--check`` which samplers can run here."""

from __future__ import annotations

import argparse
import sys

from rezolus_agent import config as agent_config
from rezolus_agent.agent import Agent
from rezolus_agent.registry import available
from rezolus_core import log
from rezolus_core.config import EXIT_CONFIG, ConfigError
from rezolus_core.lifecycle import fail, run_service

PROG = "rezolus-agent"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(prog=PROG, description="Rezolus agent: publishes sample frames.")
    parser.add_argument("config", nargs="?", help="agent TOML file (positional, as in the original)")
    parser.add_argument("--config", dest="config_flag", help="agent TOML file")
    parser.add_argument("--listen", help="bus endpoint to bind, e.g. tcp://127.0.0.1:4241")
    parser.add_argument("--interval", help="sampling interval, e.g. 1s, 100ms (minimum 10ms)")
    parser.add_argument("--check", action="store_true", help="print each sampler's status and exit")
    return parser.parse_args(argv)


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


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    samplers = available()
    path = args.config_flag or args.config
    try:
        cfg = agent_config.load(path, samplers, listen=args.listen, interval=args.interval)
    except ConfigError as exc:
        return fail(PROG, str(exc), EXIT_CONFIG)
    log.configure(PROG, cfg.log_level)
    try:
        agent = Agent(cfg, samplers)
    except ConfigError as exc:
        return fail(PROG, str(exc), EXIT_CONFIG)
    if args.check:
        return check(agent)
    return run_service(agent)


if __name__ == "__main__":
    raise SystemExit(main())
