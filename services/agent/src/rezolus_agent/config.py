"""The agent's configuration (``config/agent.toml``), validated up front.

Shape, as in the original: ``[general] listen, interval``, ``[log] level``,
``[defaults] enabled``, ``[samplers.<name>] enabled`` plus sampler options.
Unknown keys and unknown sampler names are errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rezolus_core import config
from rezolus_core.bus import DEFAULT_ENDPOINT
from rezolus_core.log import LEVELS

if TYPE_CHECKING:
    from rezolus_agent.sampler import Sampler

MIN_INTERVAL_NS = 10_000_000


@dataclass
class AgentConfig:
    """Everything the agent needs to start."""

    listen: str = DEFAULT_ENDPOINT
    interval_ns: int = 1_000_000_000
    log_level: str = "info"
    proc_root: Path = Path("/proc")
    sys_root: Path = Path("/sys")
    bpf_stats: bool = True
    enabled: dict[str, bool] = field(default_factory=dict)
    options: dict[str, config.Section] = field(default_factory=dict)


def load(
    path: str | Path | None,
    samplers: dict[str, type[Sampler]],
    *,
    listen: str | None = None,
    interval: str | None = None,
) -> AgentConfig:
    """Read and validate; command-line overrides win over the file."""
    root = config.load(path)
    general = root.section("general")
    cfg = AgentConfig()
    cfg.listen = general.string("listen", DEFAULT_ENDPOINT)
    cfg.interval_ns = general.duration("interval", "1s", minimum_ns=MIN_INTERVAL_NS)
    cfg.proc_root = Path(general.string("proc_root", "/proc"))
    cfg.sys_root = Path(general.string("sys_root", "/sys"))
    cfg.bpf_stats = general.boolean("bpf_stats", default=True)
    general.finish()
    log_section = root.section("log")
    cfg.log_level = log_section.string("level", "info")
    if cfg.log_level not in LEVELS:
        raise log_section.error("level", f"{cfg.log_level!r} is not one of {', '.join(LEVELS)}")  # noqa: PLE1205 - Section.error builds a ConfigError, not a log call
    log_section.finish()
    defaults = root.section("defaults")
    default_enabled = defaults.boolean("enabled", default=True)
    defaults.finish()
    sampler_tables = root.section("samplers")
    for name in sampler_tables:
        if name not in samplers:
            raise sampler_tables.error(name, f"unknown sampler; known: {', '.join(samplers)}")
    for name in samplers:
        table = sampler_tables.section(name)
        cfg.enabled[name] = table.boolean("enabled", default_enabled)
        cfg.options[name] = table
    sampler_tables.finish()
    root.finish()
    if listen is not None:
        cfg.listen = listen
    if interval is not None:
        try:
            cfg.interval_ns = config.parse_duration(interval)
        except ValueError as exc:
            raise config.ConfigError("--interval", "", str(exc)) from exc
        if cfg.interval_ns < MIN_INTERVAL_NS:
            raise config.ConfigError("--interval", "", f"{interval} is shorter than the minimum 10ms")
    if not cfg.listen.startswith(("tcp://", "ipc://", "inproc://")):
        raise config.ConfigError(
            str(path or "--listen"), "general.listen", f"{cfg.listen!r} is not a tcp:// or ipc:// endpoint"
        )
    return cfg
