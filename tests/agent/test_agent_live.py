"""The agent process: procfs values against /proc, the wall-clock grid, and degraded modes."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from rezolus_agent.samplers.cpu_usage import STATES, read_stat
from rezolus_core.bus import ZmqSubscriber
from support.env import VENV_BIN, free_port, require
from support.live import attached, next_frame, series_values, wait_for_series


def test_cpu_usage_lies_between_proc_stat_reads(subscribe, agent_factory) -> None:
    """Every cpu_usage value of a frame lies between /proc/stat read just before and just after it."""
    agent = agent_factory(interval="100ms")
    sub = subscribe(agent.endpoint)
    attached(sub)
    tick = 10**9 // os.sysconf("SC_CLK_TCK")
    for _ in range(5):
        started = time.time_ns()
        before = read_stat("/proc/stat")
        delivery = next_frame(sub)
        while delivery.frame.timestamp_ns < started:
            delivery = next_frame(sub)
        after = read_stat("/proc/stat")
        values = series_values(delivery)
        for cpu, ticks in before.items():
            for position, state in enumerate(STATES):
                got = values[("cpu_usage", (("id", str(cpu)), ("state", state)))]
                assert ticks[position] * tick <= got <= after[cpu][position] * tick, (cpu, state)


def schedstat(pid: int) -> tuple[int, int]:
    """The agent's sampling thread: (ns run on a CPU, ns waited runnable on a runqueue), see sched-stats.rst."""
    run, wait, _ = Path(f"/proc/{pid}/schedstat").read_text(encoding="ascii").split()
    return int(run), int(wait)


def test_frames_stay_on_the_wall_clock_grid(subscribe, agent_factory) -> None:
    """At 10 ms the sequence advances one per grid tick, without drift, for 3 seconds.

    Ticks the agent skips must be explained by starvation, not by slowness or
    drift: a tick is skipped only when a frame ends after the next tick, so
    its thread ran (``cpu`` per frame, measured) and waited on a runqueue
    (``/proc/PID/schedstat``) for longer than the interval.  Each skip
    therefore costs at least ``interval - cpu`` of runqueue wait; an agent
    that skips ticks while it was not kept waiting fails, and so does one
    whose frame needs the whole interval.
    """
    interval = 10_000_000
    agent = agent_factory(interval="10ms")
    sub = subscribe(agent.endpoint)
    first = attached(sub).frame
    run0, wait0 = schedstat(agent.proc.pid)
    deadline = time.monotonic() + 3
    frames = []
    while time.monotonic() < deadline:
        frames.extend(d.frame for d in sub.poll(0.1))
    run1, wait1 = schedstat(agent.proc.pid)
    frames = [f for f in frames if f.seq > first.seq]
    last = frames[-1]
    ticks_elapsed = round((last.timestamp_ns - first.timestamp_ns) / interval)
    assert abs((last.seq - first.seq) - ticks_elapsed) <= 1
    offsets = sorted(f.timestamp_ns % interval for f in frames)
    assert offsets[len(offsets) // 2] < interval * 0.4
    cpu_per_frame = (run1 - run0) / len(frames)
    assert cpu_per_frame < interval / 2, f"a frame takes {cpu_per_frame / 1e6:.1f} ms of CPU: no room for the grid"
    skipped = (last.seq - first.seq) - len(frames)
    explained = (wait1 - wait0) // (interval - cpu_per_frame)
    assert skipped <= explained, (
        f"{skipped} of {last.seq - first.seq} ticks skipped, but the agent waited on a runqueue only "
        f"{(wait1 - wait0) / 1e6:.0f} ms (enough for {explained}) and used {cpu_per_frame / 1e6:.2f} ms CPU per frame"
    )


def test_check_lists_every_sampler() -> None:
    """--check prints one status line per sampler and exits 0."""
    out = subprocess.run(
        [VENV_BIN / "rezolus-agent", "--check"], capture_output=True, text=True, check=False, timeout=120
    )
    assert out.returncode == 0
    lines = dict(line.split()[:2] for line in out.stdout.splitlines())
    assert lines["cpu_usage"] == "running"
    assert {"syscall_counts", "syscall_latency", "memory_meminfo"} <= set(lines)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[general]\ninterval = "5ms"\n', "general.interval: 5ms is shorter than the minimum 10ms"),
        ("[general]\ninterval = 1\n", "general.interval: expected a string"),
        ("[samplers.nope]\nenabled = true\n", "samplers.nope: unknown sampler"),
        ("[samplers.cpu_usage]\nenabeld = true\n", "samplers.cpu_usage.enabeld: unknown key"),
        ("[log]\nlevel = 'loud'\n", "log.level"),
        ("[general\n", "not valid TOML"),
        ('[general]\nlisten = "http://x"\n', "not a tcp:// or ipc:// endpoint"),
    ],
)
def test_bad_config_is_one_line_and_exit_2(tmp_path: Path, toml: str, message: str) -> None:
    """A bad config value prints one line naming file and key and exits 2."""
    path = tmp_path / "agent.toml"
    path.write_text(toml)
    out = subprocess.run(
        [VENV_BIN / "rezolus-agent", "--config", str(path)], capture_output=True, text=True, check=False, timeout=60
    )
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1
    assert message in out.stderr
    assert str(path) in out.stderr or "--" in out.stderr


def test_busy_listen_address_is_a_clear_error(subscribe, agent_factory) -> None:
    """A second agent on the same endpoint exits 1 with a one-line message."""
    first = agent_factory(interval="100ms")
    sub = subscribe(first.endpoint)
    attached(sub)
    out = subprocess.run(
        [VENV_BIN / "rezolus-agent", "--listen", first.endpoint],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert out.returncode == 1
    assert f"cannot listen on {first.endpoint}" in out.stderr
    assert "Traceback" not in out.stderr


def test_without_root_procfs_samplers_still_publish(tmp_path: Path) -> None:
    """Run as nobody: procfs series arrive and the BPF samplers report why they are off."""
    require(os.geteuid() == 0 and shutil.which("setpriv") is not None, "needs root and setpriv to drop privileges")
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    proc = subprocess.Popen(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            VENV_BIN / "rezolus-agent",
            "--listen",
            endpoint,
            "--interval",
            "100ms",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    sub = ZmqSubscriber(endpoint)
    try:
        delivery = wait_for_series(
            sub, lambda v: ("rezolus_sampler_up", (("sampler", "syscall_counts"),)) in v, timeout=30
        )
        values = series_values(delivery)
        assert values[("rezolus_sampler_up", (("sampler", "syscall_counts"),))] == 0
        assert values[("rezolus_sampler_up", (("sampler", "cpu_usage"),))] == 1
        assert any(name == "cpu_usage" for name, _ in values)
    finally:
        sub.close()
        proc.terminate()
        _, err = proc.communicate(timeout=15)
    assert b"BPF needs root" in err
    assert proc.returncode == 0
