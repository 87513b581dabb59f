"""CURVE on the bus across two network namespaces (agent in one, subscribers in the other).

The agent side is the real ``ZmqPublisher`` (ZAP handler, refusal log, SIGHUP
reload) driven by a synthetic agent; the subscribers are the real commands
(``rezolus tap``, ``rezolus-recorder``) plus a raw plaintext ZeroMQ socket.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq
import pytest
import zmq.auth
from fleet_netns import AGENT_ADDRESS, CLIENT_ADDRESS, Pair

from support.env import VENV_BIN, wait_for

if TYPE_CHECKING:
    from collections.abc import Iterator

CURVE_AGENT = Path(__file__).with_name("curve_agent.py")
ENDPOINT = f"tcp://{AGENT_ADDRESS}:4241"
PLAINTEXT_PEEK = """
import sys, zmq
s = zmq.Context.instance().socket(zmq.SUB)
s.setsockopt(zmq.SUBSCRIBE, b"")
s.connect(sys.argv[1])
print(sum(1 for _ in range(20) if s.poll(100)))
"""


class Keys:
    """The agent's pair, two subscribers' pairs, and the directory of authorised public keys."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.authorized = root / "authorized"
        self.authorized.mkdir(parents=True)
        for name in ("agent", "good", "stranger"):
            zmq.auth.create_certificates(root, name)
        shutil.copy(root / "good.key", self.authorized / "good.key")

    def public(self, name: str) -> str:
        """The z85 public key of ``name``."""
        return zmq.auth.load_certificate(self.root / f"{name}.key")[0].decode()

    def client_flags(self, name: str) -> list[str]:
        """``--curve-server-key`` and ``--curve-key`` for subscriber ``name``."""
        own = self.root / f"{name}.key_secret"
        return ["--curve-server-key", str(self.root / "agent.key"), "--curve-key", str(own)]


class CurveAgent:
    """The synthetic CURVE agent in the agent namespace, logging to a file."""

    def __init__(self, pair: Pair, keys: Keys, log_path: Path, endpoint: str = ENDPOINT) -> None:
        self.log_path = log_path
        self._log = log_path.open("w")
        args = [sys.executable, str(CURVE_AGENT), endpoint, str(keys.root / "agent.key_secret"), str(keys.authorized)]
        self.proc = subprocess.Popen(pair.inside(pair.agent_ns, *args), stdout=subprocess.PIPE, stderr=self._log,
                                     text=True)
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "bound", log_path.read_text()

    def records(self, event: str) -> list[dict[str, str]]:
        """The agent's log records with this event."""
        lines = [json.loads(line) for line in self.log_path.read_text().splitlines() if line.startswith("{")]
        return [r for r in lines if r.get("event") == event]

    def stop(self) -> None:
        """SIGTERM and wait."""
        self.proc.terminate()
        self.proc.wait(10)
        self._log.close()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    """Fresh key pairs for this test."""
    return Keys(tmp_path / "keys")


@pytest.fixture
def agent(pair: Pair, keys: Keys, tmp_path: Path) -> Iterator[CurveAgent]:
    """The running CURVE agent."""
    running = CurveAgent(pair, keys, tmp_path / "agent.log")
    yield running
    running.stop()


def tap(pair: Pair, *flags: str, source: str = ENDPOINT, ns: str | None = None) -> subprocess.CompletedProcess[str]:
    """``rezolus tap --json --count 2`` in the subscribers' namespace (or ``ns``)."""
    args = [str(VENV_BIN / "rezolus"), "tap", "--source", source, "--json", "--count", "2", "--timeout", "3", *flags]
    return subprocess.run(pair.inside(ns or pair.client_ns, *args), capture_output=True, text=True, timeout=30,
                          check=False)


def refusals(agent: CurveAgent) -> list[tuple[str, str]]:
    """(peer, reason) of every refusal the agent logged."""
    return [(r["peer"], r["reason"]) for r in agent.records("subscriber refused")]


def test_only_an_authorised_key_receives_frames(pair: Pair, keys: Keys, agent: CurveAgent, tmp_path: Path) -> None:
    """An authorised key gets frames (tap and recorder); an unknown key, no key and plaintext get none, logged once."""
    good = tap(pair, *keys.client_flags("good"))
    assert good.returncode == 0, good.stderr
    frames = [json.loads(line) for line in good.stdout.splitlines()]
    assert len(frames) == 2
    assert all(f["instance"] == "curve-agent" for f in frames)

    stranger = tap(pair, *keys.client_flags("stranger"))
    assert (stranger.returncode, stranger.stdout) == (1, ""), stranger.stderr
    assert "no frame" in stranger.stderr
    no_key = tap(pair)
    assert (no_key.returncode, no_key.stdout) == (1, ""), no_key.stderr
    peek = subprocess.run(pair.inside(pair.client_ns, sys.executable, "-c", PLAINTEXT_PEEK, ENDPOINT),
                          capture_output=True, text=True, timeout=30, check=False)
    assert peek.stdout.strip() == "0", peek.stderr

    recorded = tmp_path / "good.parquet"
    recorder = subprocess.run(
        pair.inside(pair.client_ns, str(VENV_BIN / "rezolus-recorder"), "--source", ENDPOINT, "--interval", "100ms",
                    "--duration", "1s", *keys.client_flags("good"), str(recorded)),
        capture_output=True, text=True, timeout=60, check=False)
    assert recorder.returncode == 0, recorder.stderr
    assert pq.read_table(recorded).num_rows >= 5

    stranger_key = f"unknown key {keys.public('stranger')}"
    plaintext = "no CURVE handshake (plaintext or no key)"
    wait_for(lambda: {r for _, r in refusals(agent)} >= {stranger_key, plaintext}, 10, what="both refusals")
    logged = refusals(agent)
    assert len(logged) == len(set(logged)), f"each refusal is logged once per peer: {logged}"
    assert [p for p, r in logged if r == stranger_key] == [CLIENT_ADDRESS]
    # a plaintext peer may close before its address is read; it is then named "unknown" (docs/deployment.md)
    assert {p for p, r in logged if r == plaintext} in ({CLIENT_ADDRESS}, {"unknown"}, {CLIENT_ADDRESS, "unknown"})


def test_curve_is_required_on_loopback_too(pair: Pair, keys: Keys, tmp_path: Path) -> None:
    """With keys configured, a plaintext subscriber on loopback gets nothing either."""
    local = "tcp://127.0.0.1:4241"
    running = CurveAgent(pair, keys, tmp_path / "agent.log", endpoint=local)
    try:
        good = tap(pair, *keys.client_flags("good"), source=local, ns=pair.agent_ns)
        assert good.returncode == 0, good.stderr
        plain = tap(pair, source=local, ns=pair.agent_ns)
        assert (plain.returncode, plain.stdout) == (1, ""), plain.stderr
    finally:
        running.stop()


def test_a_removed_key_is_refused_after_sighup(pair: Pair, keys: Keys, agent: CurveAgent) -> None:
    """SIGHUP rereads the authorised keys: a key removed from the directory is refused from then on."""
    before = tap(pair, *keys.client_flags("good"))
    assert before.returncode == 0, before.stderr
    (keys.authorized / "good.key").unlink()
    agent.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: agent.records("keys reloaded"), 10, what="keys reloaded")
    assert agent.records("keys reloaded")[0]["removed"] == 1
    after = tap(pair, *keys.client_flags("good"))
    assert (after.returncode, after.stdout) == (1, ""), after.stderr
    wait_for(lambda: refusals(agent), 10, what="a refusal")
    assert refusals(agent) == [(CLIENT_ADDRESS, f"unknown key {keys.public('good')}")]
    assert [r["service"] for r in agent.records("subscriber refused")] == ["curve-agent"]


def test_real_agent_refuses_a_plaintext_non_loopback_bind(pair: Pair, keys: Keys) -> None:
    """The real agent will not bind a non-loopback address without CURVE or --insecure, nor with half a pair."""
    plain = subprocess.run(pair.inside(pair.agent_ns, str(VENV_BIN / "rezolus-agent"), "--listen", ENDPOINT),
                           capture_output=True, text=True, timeout=60, check=False)
    assert plain.returncode == 2, plain.stderr
    assert plain.stderr.count("\n") == 1
    assert "is not a loopback address" in plain.stderr
    half = subprocess.run(
        pair.inside(pair.agent_ns, str(VENV_BIN / "rezolus-agent"), "--listen", ENDPOINT,
                    "--curve-secret-key", str(keys.root / "agent.key_secret")),
        capture_output=True, text=True, timeout=60, check=False)
    assert half.returncode == 2, half.stderr
    assert "--curve-authorized-keys" in half.stderr


def test_real_agent_serves_curve_and_reloads_on_sighup(pair: Pair, keys: Keys, tmp_path: Path) -> None:
    """The real agent binary (samplers off: the bus is the point) with CURVE across namespaces, then SIGHUP."""
    config = tmp_path / "agent.toml"
    config.write_text("[defaults]\nenabled = false\n")
    log_path = tmp_path / "real-agent.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            pair.inside(pair.agent_ns, str(VENV_BIN / "rezolus-agent"), "--config", str(config), "--listen", ENDPOINT,
                        "--interval", "100ms", "--curve-secret-key", str(keys.root / "agent.key_secret"),
                        "--curve-authorized-keys", str(keys.authorized)),
            stderr=log_file)
        try:
            wait_for(lambda: "agent ready" in log_path.read_text(), 30, what="agent ready")
            good = tap(pair, *keys.client_flags("good"))
            assert good.returncode == 0, good.stderr
            assert tap(pair).returncode == 1
            (keys.authorized / "good.key").unlink()
            proc.send_signal(signal.SIGHUP)
            wait_for(lambda: "keys reloaded" in log_path.read_text(), 10, what="keys reloaded")
            assert tap(pair, *keys.client_flags("good")).returncode == 1
        finally:
            proc.terminate()
            assert proc.wait(20) == 0
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    refused = [(r["peer"], r["reason"], r["service"]) for r in records if r["event"] == "subscriber refused"]
    assert (CLIENT_ADDRESS, f"unknown key {keys.public('good')}", "rezolus-agent") in refused
    assert len(refused) == len(set(refused))
