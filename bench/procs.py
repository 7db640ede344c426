"""Reading /proc: process trees (to clean up and to attribute CPU) and machine-wide CPU time.

Linux only, like Lamina's runtime. CPU is counted in seconds of one core.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    start_ticks: int  # identifies the process across pid reuse
    cpu_s: float  # own user + system time
    children_cpu_s: float  # user + system time of its waited-for children

    @property
    def total_cpu_s(self) -> float:
        return self.cpu_s + self.children_cpu_s


def read_proc(pid: int, thread: int | None = None) -> ProcInfo | None:
    """A process's /proc stat, or one of its threads' (`thread` = a tid; the main thread's is the pid)."""
    path = f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat"
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # comm may contain spaces and parentheses
    return ProcInfo(
        pid=pid,
        ppid=int(fields[1]),
        start_ticks=int(fields[19]),
        cpu_s=(int(fields[11]) + int(fields[12])) / CLK_TCK,
        children_cpu_s=(int(fields[13]) + int(fields[14])) / CLK_TCK,
    )


def process_table() -> dict[int, ProcInfo]:
    table: dict[int, ProcInfo] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = read_proc(int(entry))
            if info is not None:
                table[info.pid] = info
    return table


def descendants(root: int, table: dict[int, ProcInfo] | None = None) -> dict[int, ProcInfo]:
    """`root` and every process below it (environments live in their own sessions, not its group)."""
    table = process_table() if table is None else table
    children: dict[int, list[int]] = {}
    for info in table.values():
        children.setdefault(info.ppid, []).append(info.pid)
    found: dict[int, ProcInfo] = {}
    stack = [root]
    while stack:
        pid = stack.pop()
        if pid in table and pid not in found:
            found[pid] = table[pid]
            stack.extend(children.get(pid, ()))
    return found


def pids_with_cmdline(fragment: str) -> list[int]:
    """Processes whose command line mentions `fragment` (a unique temp path identifies ours)."""
    needle = fragment.encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            if needle in Path(f"/proc/{entry}/cmdline").read_bytes():
                found.append(int(entry))
        except OSError:
            continue
    return found


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def machine_busy_s() -> float:
    """CPU seconds (all cores) spent not idle since boot."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def steal_s() -> float:
    """CPU seconds (all cores) the hypervisor gave to someone else since boot, if it says."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return values[7] / CLK_TCK if len(values) > 7 else 0.0


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass(frozen=True)
class CpuUsage:
    """CPU spent during a section, in % of one core (the machine's ceiling is cores * 100)."""

    wall_s: float
    machine: float
    server: float  # the `lamina up` process itself (HTTP edge, invoke path, store writer)
    server_loop: float  # of which its main thread: the event loop
    environments: float  # zygotes and environments
    bench: float  # this driver plus the load generators and peers it waited for
    loadavg_before: str

    @property
    def other(self) -> float:
        """CPU used by processes that are not part of this benchmark: the noise."""
        return max(0.0, self.machine - self.server - self.environments - self.bench)


class CpuMeter:
    """Attribute the machine's CPU time during a section to the server, its environments, us and others."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self._start: tuple[float, float, float, float, float, float] | None = None
        self._loadavg = ""

    def _sample(self) -> tuple[float, float, float, float, float, float]:
        tree = descendants(self.server_pid)
        main_thread = read_proc(self.server_pid, thread=self.server_pid)
        server = tree.get(self.server_pid)
        server_own = server.cpu_s if server else 0.0
        # Everything below the server, counting reaped children through their parents' totals,
        # so environments that exit during the section are still counted.
        envs = sum(p.total_cpu_s for p in tree.values()) - server_own
        me = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        bench = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
        loop = main_thread.cpu_s if main_thread else 0.0
        return time.perf_counter(), machine_busy_s(), server_own, envs, bench, loop

    def __enter__(self) -> CpuMeter:
        self._loadavg = loadavg()
        self._start = self._sample()
        return self

    def __exit__(self, *exc: object) -> None:
        self.usage = self.stop()

    def stop(self) -> CpuUsage:
        assert self._start is not None
        end = self._sample()
        wall = end[0] - self._start[0]

        def pct(i: int) -> float:
            return max(0.0, (end[i] - self._start[i]) / wall * 100) if wall > 0 else 0.0  # type: ignore[index]

        return CpuUsage(wall, machine=pct(1), server=pct(2), server_loop=pct(5), environments=pct(3),
                        bench=pct(4), loadavg_before=self._loadavg)  # fmt: skip
