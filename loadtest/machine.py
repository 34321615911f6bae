"""The machine the benchmark runs on: CPU pinning, processes' CPU time and memory, versions."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata

CLOCK_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
MEMORY_FIELDS = ("RssAnon", "RssFile", "RssShmem")


@dataclass(frozen=True)
class Pinning:
    """Which CPUs the servers and the load generators get (both empty: nothing pinned)."""

    server: tuple[int, ...] = ()
    client: tuple[int, ...] = ()

    @property
    def pinned(self) -> bool:
        return bool(self.server)

    def server_command(self, command: Sequence[str]) -> list[str]:
        """`command` run under `taskset` on the server CPUs (unchanged when not pinned)."""
        if not self.pinned:
            return list(command)
        return ["taskset", "-c", _cpu_list(self.server), *command]

    def pin_clients(self) -> None:
        """Pin this process to the client CPUs; load generators it starts inherit them."""
        if self.pinned:
            os.sched_setaffinity(0, self.client)

    def server_workers(self) -> int:
        """Node worker processes: one per server CPU."""
        return len(self.server) or 1

    def describe(self) -> str:
        if not self.pinned:
            return "not pinned (fewer than 2 CPUs, or no taskset): servers and clients share"
        return (
            f"servers (node master and workers, NSD, top-level node) on CPU "
            f"{_cpu_list(self.server)} with taskset; load generators (dnsperf, Python clients) "
            f"on CPU {_cpu_list(self.client)}"
        )


UNPINNED = Pinning()


def plan(cpus: Sequence[int] | None = None, taskset: str | None = "") -> Pinning:
    """Split the CPUs this process may use: the first half (rounded up) for servers."""
    available = sorted(os.sched_getaffinity(0) if cpus is None else cpus)
    tool = shutil.which("taskset") if taskset == "" else taskset
    if len(available) < 2 or tool is None:
        return Pinning()
    half = (len(available) + 1) // 2
    return Pinning(tuple(available[:half]), tuple(available[half:]))


def _cpu_list(cpus: Sequence[int]) -> str:
    return ",".join(str(cpu) for cpu in cpus)


def family(pid: int) -> list[int]:
    """`pid` and its descendants (a node's master and its workers), alive now."""
    found = [pid]
    for parent in found:
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{parent}/task"):
                with open(f"/proc/{parent}/task/{task}/children") as handle:
                    found.extend(int(child) for child in handle.read().split())
    return found


def cpu_seconds(pids: Sequence[int]) -> float:
    """User plus system CPU time the processes have used so far (gone ones count 0)."""
    return sum(sum(cpu_times(pid)) for pid in pids)


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU seconds one process has used so far ((0, 0) once it is gone)."""
    with contextlib.suppress(OSError):
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rpartition(")")[2].split()
        return int(fields[11]) / CLOCK_TICKS_PER_SECOND, int(fields[12]) / CLOCK_TICKS_PER_SECOND
    return 0.0, 0.0


def memory_kib(pid: int) -> dict[str, int]:
    """Resident memory of one process by kind: anonymous, file-backed (LMDB's map), shared."""
    found: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            name, _, rest = line.partition(":")
            if name in MEMORY_FIELDS:
                found[name] = int(rest.split()[0])
    return found


def role(pid: int) -> str:
    """What a node's process is, from its command line: master, worker or helper."""
    with open(f"/proc/{pid}/cmdline", "rb") as handle:
        command = handle.read().replace(b"\0", b" ")
    if b"multiprocessing.spawn" in command:
        return "worker"
    if b"multiprocessing" in command:
        return "helper"  # e.g. the resource tracker multiprocessing starts beside the workers
    return "master"


def description() -> dict[str, str]:
    """Machine and versions for the table's header."""
    return {
        "machine": f"{_cpu_model()}, {os.cpu_count()} CPUs, {_memory_gib():.0f} GiB RAM, "
        f"Linux {platform.release()}",
        "versions": ", ".join(
            [f"Python {platform.python_version()}"]
            + [f"{name} {_version(name)}" for name in ("idnode", "grpcio", "lmdb", "dnspython")]
            + [f"{tool} {tool_version(tool)}" for tool in ("nsd", "dnsperf")]
        ),
    }


def _cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.machine()


def _memory_gib() -> float:
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / (1 << 20)
    return 0.0


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"


def tool_version(tool: str) -> str:
    """The version a Debian tool prints, or "absent"."""
    path = shutil.which(tool) or (
        f"/usr/sbin/{tool}" if os.path.exists(f"/usr/sbin/{tool}") else ""
    )
    if not path:
        return "absent"
    flag = "-v" if tool == "nsd" else "-h"
    done = subprocess.run([path, flag], capture_output=True, text=True, timeout=10, check=False)
    found = re.search(r"version\s+(\d[\w.]*)", done.stdout + done.stderr, re.IGNORECASE)
    return found.group(1) if found else "present"
