"""cgroup v2 discovery and naming for per-cgroup series.

Invariants:
- ``bpf_get_current_cgroup_id()`` is the inode number of the task's cgroup v2
  directory, so walking the cgroup2 mount with ``stat`` maps ids to paths.
- A cgroup is labelled ``name`` = its path, shortened to the last three
  components (``.../b/c/d``) when deeper, as the original does.
- Cgroups of containers and their sub-cgroups also carry ``container`` = the
  12-character short id (docker, and Kubernetes pods under containerd or
  CRI-O with either cgroup driver: ``pod_uid`` and ``qos`` too, see
  ``cgnames``), and docker's ``container_name`` when the docker socket
  answers (looked up once per container, with a short timeout).
- All samplers share one ``CgroupIndex`` and ``CgroupLabeler`` (``shared``);
  the BPF samplers' slot tables are filled by the kernel (``cgroup_table``).
- A cgroup leaves the index only when its directory is really gone: a walk
  that races with the removal of a sibling must not drop (and so reset) it.
"""

from __future__ import annotations

import http
import http.client
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rezolus_agent import cgnames

if TYPE_CHECKING:


    from rezolus_agent.sampler import Sampler

DOCKER_SOCKET = Path("/var/run/docker.sock")
_LEAF_LINKS = 2  # link count of a directory without subdirectories: its entry and its own "."


def cgroup2_mount(proc: Path = Path("/proc")) -> Path | None:
    """Where the cgroup v2 hierarchy is mounted, from /proc/self/mountinfo."""
    try:
        lines = (proc / "self" / "mountinfo").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in lines:
        left, _, right = line.partition(" - ")
        if right.split(" ", 1)[0] == "cgroup2":
            return Path(left.split(" ")[4])
    return None


def display_name(path: str) -> str:
    """The original's ``name`` label: the path, or ``.../`` + its last three components."""
    parts = [p for p in path.split("/") if p]
    if len(parts) <= 3:
        return "/" + "/".join(parts)
    return ".../" + "/".join(parts[-3:])


def scan(mount: Path) -> dict[int, str]:
    """Every cgroup under the mount: inode id → path relative to the mount (``/`` is the root).

    Ids below the root come from the directory entries (``d_ino`` is the
    inode number).  A directory's link count is 2 + its subdirectories on
    kernfs (and tmpfs), so a cgroup whose count is 2 has no children and is
    not listed: a walk costs a ``stat`` per cgroup and a ``getdents`` per
    cgroup with children (most cgroups are leaves; listing one reads its
    ~30 interface files' entries).  A count of 1 (filesystems that do not
    count) is listed.
    """
    try:
        found = {mount.stat().st_ino: "/"}
    except OSError:
        return {}
    stack = [(os.fspath(mount), "")]
    while stack:
        directory, rel = stack.pop()
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        try:
                            links = entry.stat(follow_symlinks=False).st_nlink
                        except OSError:  # removed since it was listed
                            continue
                        child = f"{rel}/{entry.name}"
                        found[entry.inode()] = child
                        if links != _LEAF_LINKS:
                            stack.append((entry.path, child))
        except OSError:
            continue
    return found


@dataclass
class CgroupIndex:
    """A periodically refreshed id → path map shared by the cgroup samplers."""

    mount: Path
    min_refresh_s: float = 1.0
    paths: dict[int, str] = field(default_factory=dict)
    _refreshed_at: float = -1.0e9

    def refresh(self) -> dict[int, str]:
        """Rescan if the last scan is older than ``min_refresh_s``."""
        now = time.monotonic()
        if now - self._refreshed_at >= self.min_refresh_s:
            found = scan(self.mount)
            for cgid, path in self.paths.items():
                if cgid not in found and self._still_there(cgid, path):
                    found[cgid] = path
            self.paths = found
            self._refreshed_at = now
        return self.paths

    def _still_there(self, cgid: int, path: str) -> bool:
        """Whether a cgroup a walk missed still exists (a walk races with siblings being removed)."""
        try:
            return (self.mount / path.lstrip("/")).stat().st_ino == cgid
        except OSError:
            return False


def container_id(path: str) -> str | None:
    """The full docker container id a cgroup path belongs to, if any."""
    return cgnames.identify(path).docker_id or None


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(str(self._path))
        except OSError:
            sock.close()
            raise
        self.sock = sock


def docker_name(cid: str, sock: Path = DOCKER_SOCKET, timeout: float = 0.5) -> str | None:
    """The container's name from the docker engine API, or None if it cannot be asked."""
    conn = _UnixHTTPConnection(sock, timeout)
    try:
        conn.request("GET", f"/containers/{cid}/json")
        response = conn.getresponse()
        if response.status != http.HTTPStatus.OK:
            return None
        name = json.loads(response.read()).get("Name")
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        conn.close()
    return name.lstrip("/") if isinstance(name, str) and name else None


@dataclass
class CgroupLabeler:
    """``name`` (and ``container``/``container_name``/``pod_uid``/``qos``) labels for a cgroup path."""

    docker_socket: Path = DOCKER_SOCKET
    names: dict[str, str | None] = field(default_factory=dict)

    def labels(self, path: str) -> dict[str, str]:
        """Labels of one cgroup."""
        identity = cgnames.identify(path)
        labels = {"name": display_name(path), **identity.labels()}
        cid = identity.docker_id
        if cid:
            if cid not in self.names:
                self.names[cid] = docker_name(cid, self.docker_socket)
            cname = self.names[cid]
            if cname:
                labels["container_name"] = cname
        return labels


def shared(sampler: Sampler) -> tuple[CgroupIndex, CgroupLabeler] | None:
    """The agent-wide cgroup index and labeler (created on first use), or None without cgroup v2."""
    extra = sampler.ctx.extra
    index = extra.get("cgroup_index")
    if index is None:
        mount = cgroup2_mount(sampler.ctx.proc)
        if mount is None:
            return None
        index = extra["cgroup_index"] = CgroupIndex(mount)
    labeler = extra.setdefault("cgroup_labeler", CgroupLabeler())
    assert isinstance(index, CgroupIndex)  # noqa: S101 - only this module stores them
    assert isinstance(labeler, CgroupLabeler)  # noqa: S101
    return index, labeler
