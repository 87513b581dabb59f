"""The agent's configuration (``config/agent.toml``), validated up front.

Shape, as in the original: ``[general] listen, interval``, ``[log] level``,
``[defaults] enabled``, ``[samplers.<name>] enabled`` plus sampler options.
Unknown keys and unknown sampler names are errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rezolus_core.bus import DEFAULT_ENDPOINT, SERVER_OPTIONS, server_keys
from rezolus_core.shell import Option, Spec

if TYPE_CHECKING:
    from rezolus_agent.sampler import Sampler
    from rezolus_core import config
    from rezolus_core.curve import ServerKeys

PROG = "rezolus-agent"
MIN_INTERVAL_NS = 10_000_000

SPEC = Spec(
    prog=PROG,
    description="Rezolus agent: publishes sample frames.",
    config_help="agent TOML file (also accepted as the first argument, as in the original)",
    options=(
        Option("listen", "bind", DEFAULT_ENDPOINT, "bus endpoint to bind, e.g. tcp://127.0.0.1:4241",
               key="general.listen", flag="--listen", metavar="ENDPOINT"),
        Option("interval_ns", "duration", 1_000_000_000, "sampling interval, e.g. 1s, 100ms (minimum 10ms)",
               key="general.interval", flag="--interval", minimum=MIN_INTERVAL_NS, metavar="INTERVAL"),
        Option("proc_root", "string", "/proc", "where procfs is mounted", key="general.proc_root"),
        Option("sys_root", "string", "/sys", "where sysfs is mounted", key="general.sys_root"),
        Option("bpf_stats", "boolean", default=False, key="general.bpf_stats",
               help="publish the kernel's run statistics of the agent's BPF programs"),
        Option("log_level", "level", "info", "debug, info, warning or error", key="log.level",
               flag="--log-level", metavar="LEVEL"),
        *SERVER_OPTIONS,
    ),
)


@dataclass
class AgentConfig:
    """Everything the agent needs to start."""

    listen: str = DEFAULT_ENDPOINT
    interval_ns: int = 1_000_000_000
    log_level: str = "info"
    proc_root: Path = Path("/proc")
    sys_root: Path = Path("/sys")
    bpf_stats: bool = False
    enabled: dict[str, bool] = field(default_factory=dict)
    options: dict[str, config.Section] = field(default_factory=dict)
    curve: ServerKeys | None = None


def load(path: str | Path | None, samplers: dict[str, type[Sampler]], **flags: Any) -> AgentConfig:
    """Read and validate; command-line flags win over the file."""
    loaded = SPEC.load(path, flags)
    cfg = AgentConfig(
        listen=loaded["listen"],
        interval_ns=loaded["interval_ns"],
        log_level=loaded["log_level"],
        proc_root=Path(loaded["proc_root"]),
        sys_root=Path(loaded["sys_root"]),
        bpf_stats=loaded["bpf_stats"],
        curve=server_keys(loaded, loaded["listen"]),
    )
    defaults = loaded.section("defaults")
    default_enabled = defaults.boolean("enabled", default=True)
    sampler_tables = loaded.section("samplers")
    for name in sampler_tables:
        if name not in samplers:
            raise sampler_tables.error(name, f"unknown sampler; known: {', '.join(samplers)}")
    for name in samplers:
        table = sampler_tables.section(name)
        cfg.enabled[name] = table.boolean("enabled", default_enabled)
        cfg.options[name] = table
    loaded.finish()
    return cfg
