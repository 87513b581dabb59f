"""Writers of cgroup fixture trees in the kernel's real file formats (v2 and v1 layouts).

``python -m tests.support.cgroup_trees`` regenerates tests/fixtures/cgroup_v2
and tests/fixtures/cgroup_v1; the bench uses ``v2_cgroup`` to build large trees.
Values are derived from a per-cgroup seed ``n`` so tests can compute them.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
UID_B = "1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901"
UID_E = "2c3d4e5f-6071-8293-a4b5-c6d7e8f90a12"
UID_G = "3d4e5f60-7182-93a4-b5c6-d7e8f90a1b23"
IDS = {k: k * 64 for k in "abcd"}


def _write(directory: Path, files: dict[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="ascii")


def pressure(n: int, full: bool = True) -> str:
    """A PSI file whose totals are n*1000+1 (some) and n*1000+2 (full) µs."""
    text = f"some avg10=0.00 avg60=0.00 avg300=0.00 total={n * 1000 + 1}\n"
    return text + (f"full avg10=0.00 avg60=0.00 avg300=0.00 total={n * 1000 + 2}\n" if full else "")


def v2_cgroup(directory: Path, n: int, *, root: bool = False) -> None:
    """A v2 cgroup with cpu, memory and io enabled: values are n-derived."""
    files = {
        "cpu.stat": (f"usage_usec {n * 300}\nuser_usec {n * 200}\nsystem_usec {n * 100}\n"
                     + ("" if root else f"nr_periods {n * 10}\nnr_throttled {n * 3}\nthrottled_usec {n * 7}\n"
                        "nr_bursts 0\nburst_usec 0\n")),
        "io.stat": f"8:0 rbytes={n * 4096} wbytes={n * 8192} rios={n} wios={n * 2} dbytes=0 dios=0\n"
                   f"259:0 rbytes={n} wbytes={n} rios=1 wios=1 dbytes=0 dios=0\n",
        "cpu.pressure": pressure(n), "memory.pressure": pressure(n + 1), "io.pressure": pressure(n + 2),
        "cgroup.procs": "",
    }
    if root:
        files["cgroup.controllers"] = "cpuset cpu io memory hugetlb pids rdma misc\n"
    else:
        files |= {
            "cpu.max": f"{n * 1000} 100000\n" if n % 2 else "max 100000\n",
            "memory.current": f"{n * 1048576}\n",
            "memory.max": f"{n * 2097152}\n" if n % 2 else "max\n",
            "memory.swap.current": f"{n * 4096}\n",
            "memory.events": f"low {n}\nhigh {n + 1}\nmax {n + 2}\noom {n + 3}\noom_kill {n + 4}\noom_group_kill 0\n",
        }
    _write(directory, files)


def write_v2(root: Path) -> dict[str, int]:
    """A pure v2 host with the systemd driver: Kubernetes pods (containerd, CRI-O) and a docker container."""
    cgroups = {
        "/": 1,
        "/kubepods.slice": 2,
        "/kubepods.slice/kubepods-burstable.slice": 3,
        f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_B.replace('-', '_')}.slice": 4,
        f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_B.replace('-', '_')}.slice"
        f"/cri-containerd-{IDS['a']}.scope": 5,
        f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_E.replace('-', '_')}.slice"
        f"/crio-{IDS['b']}.scope": 6,
        f"/kubepods.slice/kubepods-pod{UID_G.replace('-', '_')}.slice/cri-containerd-{IDS['c']}.scope": 7,
        f"/system.slice/docker-{IDS['d']}.scope": 8,
    }
    for path, n in cgroups.items():
        v2_cgroup(root / "sys/fs/cgroup" / path.lstrip("/"), n, root=path == "/")
    for parent in ("kubepods.slice/kubepods-besteffort.slice", "system.slice",
                   f"kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_E.replace('-', '_')}.slice",
                   f"kubepods.slice/kubepods-pod{UID_G.replace('-', '_')}.slice"):
        if not (root / "sys/fs/cgroup" / parent / "cpu.stat").exists():
            v2_cgroup(root / "sys/fs/cgroup" / parent, 0)
    _write(root / "proc/pressure", {"cpu": pressure(11, full=False), "memory": pressure(12), "io": pressure(13)})
    return cgroups


def v1_cgroup(hierarchies: Path, rel: str, n: int) -> None:
    """One cgroup in the v1 cpu,cpuacct, memory and blkio hierarchies; values are n-derived."""
    rel = rel.lstrip("/")
    _write(hierarchies / "cpu,cpuacct" / rel, {
        "cpu.cfs_quota_us": f"{n * 1000}\n" if n % 2 else "-1\n", "cpu.cfs_period_us": "100000\n",
        "cpu.stat": (f"nr_periods {n * 10}\nnr_throttled {n * 3}\nthrottled_time {n * 7000}\n"
                     "nr_bursts 0\nburst_time 0\n"),
        "cpuacct.usage": f"{n * 300_000}\n", "cpuacct.usage_user": f"{n * 200_000}\n",
        "cpuacct.usage_sys": f"{n * 100_000}\n", "tasks": "",
    })
    _write(hierarchies / "memory" / rel, {
        "memory.usage_in_bytes": f"{n * 1048576}\n",
        "memory.limit_in_bytes": f"{n * 2097152}\n" if n % 2 else "9223372036854771712\n",
        "memory.memsw.usage_in_bytes": f"{n * 1048576 + n * 4096}\n", "memory.failcnt": f"{n + 2}\n",
        "memory.oom_control": f"oom_kill_disable 0\nunder_oom 0\noom_kill {n + 4}\n", "tasks": "",
    })
    _write(hierarchies / "blkio" / rel, {
        "blkio.throttle.io_service_bytes": f"8:0 Read {n * 4096}\n8:0 Write {n * 8192}\n8:0 Sync 0\n8:0 Async 0\n"
                                           f"8:0 Discard 0\n8:0 Total {n * 12288}\n259:0 Read {n}\n259:0 Write {n}\n"
                                           f"Total {n * 12290}\n",
        "blkio.throttle.io_serviced": f"8:0 Read {n}\n8:0 Write {n * 2}\n8:0 Total {n * 3}\n259:0 Read 1\n"
                                      f"259:0 Write 1\nTotal {n * 3 + 2}\n",
        "tasks": "",
    })


def write_v1(root: Path) -> dict[str, int]:
    """A hybrid host (v1 controllers, empty v2 at unified/) with the cgroupfs driver."""
    hierarchies = root / "sys/fs/cgroup"
    cgroups = {
        "/": 1,
        "/kubepods": 2,
        "/kubepods/burstable": 3,
        f"/kubepods/burstable/pod{UID_B}": 4,
        f"/kubepods/burstable/pod{UID_B}/{IDS['a']}": 5,
        f"/kubepods/besteffort/pod{UID_E}/crio-{IDS['b']}": 6,
        f"/kubepods/pod{UID_G}/{IDS['c']}": 7,
        f"/docker/{IDS['d']}": 8,
    }
    for path, n in cgroups.items():
        v1_cgroup(hierarchies, path, n)
    for parent in ("kubepods/besteffort", f"kubepods/besteffort/pod{UID_E}", f"kubepods/pod{UID_G}", "docker"):
        v1_cgroup(hierarchies, parent, 0)
    for link in ("cpu", "cpuacct"):
        (hierarchies / link).symlink_to("cpu,cpuacct")
    unified = hierarchies / "unified"
    _write(unified, {"cgroup.controllers": "", "cpu.stat": "usage_usec 1\nuser_usec 1\nsystem_usec 0\n",
                     "cpu.pressure": pressure(1), "memory.pressure": pressure(2), "io.pressure": pressure(3)})
    _write(unified / "docker" / IDS["d"], {"cpu.stat": "usage_usec 1\nuser_usec 1\nsystem_usec 0\n",
                                           "cpu.pressure": pressure(8), "memory.pressure": pressure(9),
                                           "io.pressure": pressure(10)})
    _write(root / "proc/pressure", {"cpu": pressure(11, full=False), "memory": pressure(12), "io": pressure(13)})
    return cgroups


def main() -> None:
    """Regenerate the checked-in fixture trees."""
    for name, writer in (("cgroup_v2", write_v2), ("cgroup_v1", write_v1)):
        target = FIXTURES / name
        shutil.rmtree(target, ignore_errors=True)
        writer(target)
        sys.stdout.write(f"wrote {target} ({sum(len(f) for _, _, f in os.walk(target))} files)\n")


if __name__ == "__main__":
    main()
