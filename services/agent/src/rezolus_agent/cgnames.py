"""Container and pod identity from a cgroup path (pure string parsing, no I/O).

Invariants:
- Recognised container cgroups, with either cgroup driver:
  docker ``/docker/<64 hex>`` and ``/system.slice/docker-<64 hex>.scope``;
  Kubernetes pods ``.../kubepods[-<qos>]-pod<uid with _>.slice/`` (systemd)
  or ``.../kubepods[/<qos>]/pod<uid>/`` (cgroupfs), and inside them
  ``cri-containerd-<id>.scope``, ``crio-<id>.scope``, ``docker-<id>.scope``
  (systemd) or ``<id>``, ``crio-<id>`` (cgroupfs).
- ``container`` is the 12-character short id of the first container
  component; sub-cgroups of a container carry their container's labels.
- ``pod_uid`` is the pod's UID in its canonical dashed form (the systemd
  driver writes ``_`` for ``-``); ``qos`` is ``guaranteed``, ``burstable`` or
  ``besteffort`` for a pod and for its QoS-class parent cgroup.
- ``docker_id`` is set only for docker-managed containers (outside a pod, or
  a pod run by cri-dockerd), the ones whose name the docker socket can tell.
- CRI-O's ``crio-conmon-<id>`` monitor cgroups are not containers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UID = r"[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}"
_QOS_SLICE = re.compile(r"kubepods-(besteffort|burstable)\.slice")
_POD_SLICE = re.compile(rf"kubepods(?:-(besteffort|burstable))?-pod({_UID})\.slice")
_POD_DIR = re.compile(rf"pod({_UID})")
_SCOPE = re.compile(r"(cri-containerd|crio|docker)-([0-9a-f]{64})\.scope")
_CGROUPFS_ID = re.compile(r"(?:(crio)-)?([0-9a-f]{64})")


@dataclass(frozen=True)
class Identity:
    """What a cgroup path says about the container and pod it belongs to."""

    container: str = ""
    docker_id: str = ""
    pod_uid: str = ""
    qos: str = ""

    def labels(self) -> dict[str, str]:
        """The non-empty labels (``container``, ``pod_uid``, ``qos``)."""
        found = {"container": self.container, "pod_uid": self.pod_uid, "qos": self.qos}
        return {k: v for k, v in found.items() if v}


def _pod(parts: list[str], i: int) -> tuple[str, str] | None:
    """(qos, uid) if ``parts[i]`` is a pod cgroup, for either driver."""
    part = parts[i]
    match = _POD_SLICE.fullmatch(part)
    if match:
        return match.group(1) or "guaranteed", match.group(2).replace("_", "-")
    match = _POD_DIR.fullmatch(part)
    if match and i >= 1:
        parent = parts[i - 1]
        if parent == "kubepods":
            return "guaranteed", match.group(1).replace("_", "-")
        if parent in ("besteffort", "burstable") and i >= 2 and parts[i - 2] == "kubepods":
            return parent, match.group(1).replace("_", "-")
    return None


def _qos_class(parts: list[str], i: int) -> str:
    """The QoS class if ``parts[i]`` is a QoS-class parent cgroup, else ''."""
    match = _QOS_SLICE.fullmatch(parts[i])
    if match:
        return match.group(1)
    if parts[i] in ("besteffort", "burstable") and i >= 1 and parts[i - 1] == "kubepods":
        return parts[i]
    return ""


def identify(path: str) -> Identity:
    """The container/pod identity of a cgroup path (empty when it is neither)."""
    parts = [p for p in path.split("/") if p]
    qos = uid = ""
    in_pod = False
    for i, part in enumerate(parts):
        if not in_pod:
            pod = _pod(parts, i)
            if pod is not None:
                (qos, uid), in_pod = pod, True
                continue
            qos = _qos_class(parts, i) or qos
        scope = _SCOPE.fullmatch(part)
        if scope:
            runtime, cid = scope.groups()
            return Identity(cid[:12], cid if runtime == "docker" else "", uid, qos)
        if in_pod:
            match = _CGROUPFS_ID.fullmatch(part)
            if match:
                return Identity(match.group(2)[:12], "", uid, qos)
        elif i >= 1 and parts[i - 1] == "docker" and re.fullmatch(r"[0-9a-f]{64}", part):
            return Identity(part[:12], part, uid, qos)
    return Identity("", "", uid, qos)
