"""What the benches share: starting the agent and the reference tools, CPU and RSS of a process, the load line.

Importing this module loads no project code (``frame_path_bench --tree``
chooses which tree's code runs). Invariants: CPU time is user + system of the process itself from
``/proc/PID/stat`` (children not included); RSS is ``VmRSS`` from
``/proc/PID/status`` (NaN when the process has none); ``start_agent`` returns
only once the agent has published its first frame, and says how long that took.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
AGENT = BIN / "rezolus-agent"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_endpoint() -> str:
    """A tcp:// endpoint on a loopback port that was free a moment ago."""
    return f"tcp://127.0.0.1:{free_port()}"


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a running process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid: int) -> float:
    """Resident set size of a running process in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load_line() -> str:
    """The 1, 5 and 15 minute load averages and the CPU count, for a bench report."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} {five:.1f} {fifteen:.1f} on {os.cpu_count()} CPUs"


def start_agent(interval: str = "1s", config: str | None = None,
                agent: Path = AGENT) -> tuple[subprocess.Popen[bytes], str, float]:
    """Start this venv's agent (or ``agent``) on a free endpoint; return it, its endpoint, seconds to first frame."""
    from rezolus_core.bus import ZmqSubscriber  # noqa: PLC0415 - benches with --tree choose the code first

    endpoint = free_endpoint()
    args = [str(agent), "--listen", endpoint, "--interval", interval]
    if config:
        args += ["--config", config]
    started = time.monotonic()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sub = ZmqSubscriber(endpoint)
    try:
        deadline = time.monotonic() + 60
        while not sub.poll(0.05):
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("agent produced no frame in 60 s")
    finally:
        sub.close()
    return proc, endpoint, time.monotonic() - started


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM and wait."""
    proc.terminate()
    proc.wait(timeout=30)


def start_tool(argv: list[str]) -> subprocess.Popen[bytes]:
    """Start a bcc tool (name or path) and return once it prints "Tracing"."""
    tool = shutil.which(argv[0]) or f"/usr/sbin/{argv[0]}"
    proc = subprocess.Popen([tool, *argv[1:]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    while b"Tracing" not in proc.stdout.readline():
        if proc.poll() is not None:
            raise RuntimeError(f"{argv[0]} failed to start")
    return proc


def start_syscount() -> subprocess.Popen[bytes]:
    """Bcc's ``syscount -L``, counting until stopped."""
    return start_tool(["syscount-bpfcc", "-L", "-i", "3600"])


def start_empty(samplers: tuple[str, ...] | list[str]) -> subprocess.Popen[bytes]:
    """Empty programs on the hooks of these samplers (all BPF samplers if none): the floor.

    ``["--latency-floor"]`` attaches the least a syscall latency histogram needs instead (empty_programs.py).
    """
    proc = subprocess.Popen([sys.executable, str(BENCH / "empty_programs.py"), *samplers],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    if b"Tracing" not in proc.stdout.readline():
        raise RuntimeError("empty programs failed to attach")
    return proc


def agent_config(samplers: tuple[str, ...] | list[str] | None = None, *, bpf_stats: bool | None = None) -> str:
    """A temporary agent config: only ``samplers`` enabled (all when None), BPF statistics as given."""
    lines = [] if bpf_stats is None else ["[general]", f"bpf_stats = {str(bpf_stats).lower()}"]
    if samplers is not None:
        lines += ["[defaults]", "enabled = false", *(f"[samplers.{name}]\nenabled = true" for name in samplers)]
    path = Path(tempfile.mkdtemp()) / "agent.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)
