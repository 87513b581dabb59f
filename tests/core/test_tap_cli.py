"""``rezolus tap`` and the umbrella ``rezolus`` command, against a synthetic publisher."""

from __future__ import annotations

import json
import subprocess
import threading

from rezolus_core.bus import ZmqPublisher
from support.env import VENV_BIN
from support.frames import catalog, endpoint, frame


def publish_until(stop: threading.Event, where: str) -> None:
    """Publish a catalog and frames every 20 ms until told to stop."""
    pub = ZmqPublisher(where)
    try:
        pub.publish_catalog(catalog())
        seq = 0
        while not stop.wait(0.02):
            seq += 1
            pub.publish_frame(frame(seq))
    finally:
        pub.close()


def run_with_publisher(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a command while a synthetic agent publishes on the endpoint it is given."""
    where = endpoint()
    stop = threading.Event()
    thread = threading.Thread(target=publish_until, args=(stop, where))
    thread.start()
    try:
        return subprocess.run([*args, "--source", where], capture_output=True, text=True, timeout=60, check=False)
    finally:
        stop.set()
        thread.join()


def test_tap_json_follows_the_contract() -> None:
    """--json prints one object per frame with the documented fields."""
    out = run_with_publisher([str(VENV_BIN / "rezolus"), "tap", "--json", "--count", "3"])
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 3
    obj = json.loads(lines[0])
    assert set(obj) == {"instance", "seq", "timestamp", "interval", "series"}
    kinds = {s["name"]: s for s in obj["series"]}
    assert kinds["cpu_usage"]["type"] == "counter"
    assert isinstance(kinds["cpu_usage"]["value"], int)
    assert kinds["memory_free"]["value"] < 0
    buckets = kinds["syscall_latency"]["buckets"]
    assert all(count > 0 for count in buckets.values())
    assert "63" in buckets
    seqs = [json.loads(line)["seq"] for line in lines]
    assert seqs == sorted(seqs)


def test_tap_table_shows_rates_and_percentiles() -> None:
    """The table view shows a counter rate and histogram percentiles after two frames."""
    out = run_with_publisher([str(VENV_BIN / "rezolus-tap"), "--count", "3"])
    assert out.returncode == 0, out.stderr
    assert "nanoseconds/s" in out.stdout
    assert "p50=" in out.stdout


def test_tap_without_agent_is_a_clear_error() -> None:
    """With nothing publishing, tap exits 1 with one line after its timeout."""
    out = subprocess.run(
        [str(VENV_BIN / "rezolus"), "tap", "--source", endpoint(), "--timeout", "0.5"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 1
    assert "no frame from" in out.stderr
    assert "Traceback" not in out.stderr


def test_umbrella_lists_commands_and_rejects_unknown() -> None:
    """``rezolus --help`` lists subcommands; an unknown one exits 2 with a message."""
    listing = subprocess.run([str(VENV_BIN / "rezolus"), "--help"], capture_output=True, text=True, check=False)
    assert listing.returncode == 0
    assert "agent" in listing.stdout
    assert "tap" in listing.stdout
    unknown = subprocess.run([str(VENV_BIN / "rezolus"), "frobnicate"], capture_output=True, text=True, check=False)
    assert unknown.returncode == 2
    assert "unknown command 'frobnicate'" in unknown.stderr
