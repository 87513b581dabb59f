"""Drive one compose project for the end-to-end test: build, up, health, scrape, down.

Invariants:
- Every project is named ``rezolus-e2e-<pid>`` and publishes its ports on
  free loopback ports, so runs never clash with each other or with a stack
  already running on the default ports.
- Waiting is polling with a deadline; a timeout fails with the service's
  recent logs, never a bare "timed out".
- ``docker compose`` (v2) is used when present, else ``docker-compose``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]
SERVICES_IN_TREE = ("agent", "exporter", "recorder", "hindsight", "viewer")
PROFILES = ("record", "prometheus", "view")


def compose_command() -> list[str] | None:
    """The compose CLI to use, or None when neither flavour is installed."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    path = shutil.which("docker-compose")
    return [path] if path else None


def service_in_tree(name: str) -> bool:
    """Whether the service's code is in this tree (its main module exists)."""
    return (REPO / "services" / name / "src" / f"rezolus_{name}" / "main.py").is_file()


def require_service(name: str) -> None:
    """Fail (never skip) when a service the check needs has not been merged yet."""
    if not service_in_tree(name):
        pytest.fail(f"rezolus-{name} is not in this tree yet (services/{name} has no main.py); "
                    "this part of the deployment test passes once it is merged")


def http(url: str, method: str = "GET", timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request: status, headers, body (HTTP errors are returned, not raised)."""
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)  # noqa: S310 - loopback test URLs
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback test URLs
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A Prometheus text exposition as {(sample name, sorted labels): value}."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


class Stack:
    """One compose project of this repository."""

    def __init__(self, workdir: Path, ports: dict[str, int]) -> None:
        cli = compose_command()
        assert cli is not None
        self.cli = cli
        self.project = f"rezolus-e2e-{os.getpid()}"
        self.ports = ports
        self.snapshots = workdir / "snapshots"
        self.recordings = workdir / "recordings"
        for directory in (self.snapshots, self.recordings):
            directory.mkdir(parents=True, exist_ok=True)
        ca = subprocess.run(["bash", str(REPO / "deploy/docker/local-ca.sh")], capture_output=True,
                            text=True, check=True).stdout
        self.env = {
            **os.environ,
            "COMPOSE_PROJECT_NAME": self.project,
            "REZOLUS_EXPORTER_PORT": str(ports["exporter"]),
            "REZOLUS_HINDSIGHT_PORT": str(ports["hindsight"]),
            "REZOLUS_PROMETHEUS_PORT": str(ports["prometheus"]),
            "REZOLUS_VIEWER_PORT": str(ports["viewer"]),
            "REZOLUS_SNAPSHOTS": str(self.snapshots),
            "REZOLUS_RECORDINGS": str(self.recordings),
            "REZOLUS_EXTRA_CA_CERTS": ca,
        }
        self.build_seconds: float | None = None

    def compose(self, *args: str, timeout: float = 300, check: bool = True,
                profiles: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
        """Run a compose subcommand in the repository; fail with its output when check is set."""
        flags = [f"--profile={p}" for p in profiles]
        proc = subprocess.run([*self.cli, "-p", self.project, *flags, *args], cwd=REPO,
                              env=self.env, capture_output=True, text=True, timeout=timeout,
                              check=False)
        if check and proc.returncode != 0:
            pytest.fail(f"compose {' '.join(args)} failed ({proc.returncode}):\n"
                        f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc

    def build(self) -> None:
        """Build every image of the project (all profiles), timing it."""
        start = time.monotonic()
        self.compose("build", timeout=3600, profiles=PROFILES)
        self.build_seconds = time.monotonic() - start

    def container(self, service: str) -> str:
        """The container id of a running service ('' when there is none)."""
        return self.compose("ps", "-q", service, check=False).stdout.strip()

    def state(self, service: str) -> str:
        """The health status of the service's container, or its run state without a healthcheck."""
        cid = self.container(service)
        if not cid:
            return "absent"
        fmt = "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}"
        proc = subprocess.run(["docker", "inspect", "-f", fmt, cid], capture_output=True,
                              text=True, check=False)
        return proc.stdout.strip() or "absent"

    def logs(self, service: str, lines: int = 40) -> str:
        """The service's recent logs, for failure messages."""
        return self.compose("logs", "--no-color", f"--tail={lines}", service, check=False).stdout

    def wait_healthy(self, *services: str, timeout: float = 240) -> None:
        """Poll until every service is healthy; fail with the laggard's logs."""
        deadline = time.monotonic() + timeout
        pending = list(services)
        while pending:
            pending = [s for s in pending if self.state(s) != "healthy"]
            if not pending:
                return
            if time.monotonic() > deadline:
                s = pending[0]
                pytest.fail(f"{s} not healthy after {timeout}s (state {self.state(s)}):\n"
                            f"{self.logs(s)}")
            time.sleep(1)  # poll interval, not synchronisation

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """One scrape of the exporter through its published port."""
        status, _, body = http(f"http://127.0.0.1:{self.ports['exporter']}/metrics")
        assert status == 200, body[:500]
        return samples(body.decode())

    def hindsight(self, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        """A request to hindsight's API on loopback."""
        return http(f"http://127.0.0.1:{self.ports['hindsight']}{path}", method, timeout=60)

    def viewer(self, path: str, port: int | None = None) -> tuple[int, dict[str, str], bytes]:
        """A request to a viewer on loopback (the compose service's port unless given)."""
        return http(f"http://127.0.0.1:{port or self.ports['viewer']}{path}", timeout=30)

    def prometheus_targets(self) -> list[dict[str, Any]]:
        """The active targets Prometheus reports (empty while it is not answering)."""
        try:
            status, _, body = http(
                f"http://127.0.0.1:{self.ports['prometheus']}/api/v1/targets", timeout=5)
        except OSError:
            return []
        if status != 200:
            return []
        targets: list[dict[str, Any]] = json.loads(body)["data"]["activeTargets"]
        return targets

    def leftovers(self) -> dict[str, list[str]]:
        """Containers, volumes and networks of this project that still exist."""
        label = f"label=com.docker.compose.project={self.project}"
        found = {}
        for kind, cmd in (("containers", ["docker", "ps", "-a", "-q", "--filter", label]),
                          ("volumes", ["docker", "volume", "ls", "-q", "--filter", label]),
                          ("networks", ["docker", "network", "ls", "-q", "--filter", label])):
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()
            found[kind] = out
        return found

    def down(self) -> None:
        """Stop and remove everything of the project, volumes included."""
        self.compose("down", "-v", "--remove-orphans", "--timeout=20", check=False, profiles=PROFILES)


def poll(predicate: Any, timeout: float, what: str, interval: float = 1.0) -> Any:
    """Poll ``predicate`` until truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)  # poll interval, not synchronisation
