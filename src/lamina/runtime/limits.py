"""Memory and process-count limits for environments.

Settings.memory_enforcement picks how a function's MemorySize is enforced:

- `cgroup` — a child cgroup per environment: cgroup v2 (`memory.max`, `memory.peak`,
  `memory.events`) where our own cgroup can delegate the memory controller, else cgroup v1
  (`memory.limit_in_bytes`, `memory.max_usage_in_bytes`, `memory.oom_control`) under our own
  memory cgroup. The kernel OOM-kills inside the group; we see SIGKILL plus a raised oom_kill count.
- `watchdog` — no cgroups: poll the RSS of the environment's processes every ~20 ms while it is
  busy and SIGKILL the group over the limit.
- `auto` — cgroup if possible, else watchdog. `off` — report Max Memory Used, enforce nothing.

Independently of memory, when a `pids` controller is writable every environment also gets
`pids.max` (AWS allows 1,024 processes), which contains fork bombs even for environments that
run as root (RLIMIT_NPROC does not bind root).

Charging caveat: with cgroups, pages an environment shares copy-on-write with its zygote stay
charged to the zygote, so the limit counts what the environment allocates after fork. The
watchdog counts RSS, shared pages included. Max Memory Used is the larger of the cgroup peak and
the process's own peak RSS, so the zygote baseline is always in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import errno
import itertools
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

from lamina.errors import ConfigError

log = logging.getLogger("lamina.runtime")

MB = 1024 * 1024
WATCHDOG_INTERVAL_S = 0.02
_pool_numbers = itertools.count(1)


class MemoryMode(enum.StrEnum):
    CGROUP_V2 = "cgroup-v2"
    CGROUP_V1 = "cgroup-v1"
    WATCHDOG = "watchdog"
    OFF = "off"


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _read_key(path: Path, key: str) -> int | None:
    """A `key value` line of memory.events / memory.oom_control."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return None


def _own_cgroups() -> dict[str, str]:
    """Controller (or "" for the v2 unified tree) -> our cgroup path, from /proc/self/cgroup."""
    result: dict[str, str] = {}
    try:
        text = Path("/proc/self/cgroup").read_text()
    except OSError:
        return result
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(",") if parts[1] else [""]:
            result[controller] = parts[2]
    return result


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, fs type, options) of cgroup filesystems, from /proc/self/mountinfo."""
    found = []
    try:
        text = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return found
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3 or rfields[0] not in ("cgroup", "cgroup2"):
            continue
        found.append((fields[4], rfields[0], set(rfields[2].split(","))))
    return found


class _Tree:
    """A cgroup directory of ours, under which each environment gets a child group."""

    def __init__(self, root: Path, version: int, controllers: frozenset[str]) -> None:
        self.root = root
        self.version = version
        self.controllers = controllers

    @classmethod
    def make(cls, base: Path, version: int, controllers: frozenset[str]) -> _Tree | None:
        _sweep_stale(base)
        root = base / f"lamina-{os.getpid()}-{next(_pool_numbers)}"
        try:
            root.mkdir()
            if version == 2:
                _write(root / "cgroup.subtree_control", " ".join(f"+{c}" for c in sorted(controllers)))
        except OSError:
            with contextlib.suppress(OSError):
                root.rmdir()
            return None
        return cls(root, version, controllers)

    def remove(self) -> None:
        for child in self.root.iterdir() if self.root.is_dir() else ():
            if child.is_dir():
                with contextlib.suppress(OSError):
                    child.rmdir()
        with contextlib.suppress(OSError):
            self.root.rmdir()


def _sweep_stale(base: Path) -> None:
    """Remove the empty groups of Lamina servers that died without closing their pools."""
    with contextlib.suppress(OSError):
        for entry in base.iterdir():
            parts = entry.name.split("-")
            stale = len(parts) == 3 and parts[0] == "lamina" and parts[1].isdigit()
            if stale and not Path(f"/proc/{parts[1]}").exists():
                _Tree(entry, 0, frozenset()).remove()


def _v2_tree(controllers: frozenset[str]) -> _Tree | None:
    own = _own_cgroups().get("")
    for mount, fstype, _ in _mounts():
        if fstype != "cgroup2" or own is None:
            continue
        base = Path(mount) / own.lstrip("/")
        try:
            available = set((base / "cgroup.controllers").read_text().split())
            enabled = set((base / "cgroup.subtree_control").read_text().split())
        except OSError:
            continue
        wanted = controllers & available
        if not wanted:
            continue
        if not wanted <= enabled:
            try:  # fails (EBUSY) when our group has processes of its own: the "no internal
                # processes" rule; then v2 is not ours to use.
                _write(base / "cgroup.subtree_control", " ".join(f"+{c}" for c in sorted(wanted)))
            except OSError:
                continue
        tree = _Tree.make(base, 2, frozenset(wanted))
        if tree:
            return tree
    return None


def _v1_tree(controller: str) -> _Tree | None:
    own = _own_cgroups().get(controller)
    if own is None:
        return None
    for mount, fstype, options in _mounts():
        if fstype == "cgroup" and controller in options:
            tree = _Tree.make(Path(mount) / own.lstrip("/"), 1, frozenset({controller}))
            if tree:
                return tree
    return None


class EnvironmentLimits:
    """The limits of one environment: the cgroup.procs files its process joins, its peak memory,
    whether the OOM killer (or the watchdog) fired, every process it has, and a watchdog."""

    def __init__(self, groups: dict[str, Path], version: int, memory_bytes: int, watchdog: bool) -> None:
        self.groups = groups  # controller -> cgroup dir ("memory", "pids")
        self.version = version
        self.memory_bytes = memory_bytes
        self._watchdog = watchdog
        self._watch_task: asyncio.Task[None] | None = None
        self._watchdog_killed = False
        self._watchdog_peak = 0
        self._oom_base = self._oom_count()
        self._peak_fd = -1  # kept open: read once per invocation, pread is ~1 us, open+read ~15
        memory = groups.get("memory")
        if memory is not None:
            name = "memory.peak" if version == 2 else "memory.max_usage_in_bytes"
            with contextlib.suppress(OSError):
                self._peak_fd = os.open(memory / name, os.O_RDONLY | os.O_CLOEXEC)

    @property
    def join(self) -> list[str]:
        return sorted({str(d / "cgroup.procs") for d in self.groups.values()})

    @property
    def enforced(self) -> bool:
        return "memory" in self.groups or self._watchdog

    def set_memory(self, memory_mb: int) -> None:
        """Set the memory limit (once, on groups made without one). A write to a group that
        has a process in it is as cheap as to an empty one (~0.1 ms): the cost of a cold start
        is in joining a group, not in limiting it."""
        self.memory_bytes = memory_mb * MB
        memory = self.groups.get("memory")
        if memory is None:
            return
        if self.version == 2:
            _write(memory / "memory.max", str(self.memory_bytes))
        else:
            _write(memory / "memory.limit_in_bytes", str(self.memory_bytes))
            with contextlib.suppress(OSError):  # no swap accounting: nothing to cap
                _write(memory / "memory.memsw.limit_in_bytes", str(self.memory_bytes))

    def peak_bytes(self) -> int:
        peak = 0
        if self._peak_fd >= 0:
            with contextlib.suppress(OSError, ValueError):
                peak = int(os.pread(self._peak_fd, 64, 0))
        return max(peak, self._watchdog_peak)

    def _oom_count(self) -> int:
        memory = self.groups.get("memory")
        if memory is None:
            return 0
        if self.version == 2:
            return _read_key(memory / "memory.events", "oom_kill") or 0
        count = _read_key(memory / "memory.oom_control", "oom_kill")
        if count is None:  # kernels before 4.13 have no counter: a hit limit is the best sign
            count = _read_int(memory / "memory.failcnt") or 0
        return count

    def oom_killed(self) -> bool:
        return self._watchdog_killed or self._oom_count() > self._oom_base

    def pids(self) -> set[int]:
        found: set[int] = set()
        for group in self.groups.values():
            with contextlib.suppress(OSError, ValueError):
                found.update(int(p) for p in (group / "cgroup.procs").read_text().split())
        return found

    # The RSS watchdog ------------------------------------------------------------------

    def watch(self, pid: int, kill: Callable[[], None]) -> None:
        """While busy: poll RSS, call `kill` over the limit (watchdog mode only)."""
        if self._watchdog and self._watch_task is None:
            self._watch_task = asyncio.get_running_loop().create_task(self._watch(pid, kill))

    def unwatch(self) -> None:
        if self._watch_task is not None:
            self._watch_task.cancel()
            self._watch_task = None

    async def _watch(self, pid: int, kill: Callable[[], None]) -> None:
        while True:
            rss = _tree_rss(pid)
            self._watchdog_peak = max(self._watchdog_peak, rss)
            if rss > self.memory_bytes:
                self._watchdog_killed = True
                kill()
                return
            await asyncio.sleep(WATCHDOG_INTERVAL_S)

    def destroy(self) -> bool:
        """Remove the cgroups; False while processes remain in them (try again later)."""
        self.unwatch()
        done = self.remove_groups()
        if done:
            self.close_files()
        return done

    def remove_groups(self) -> bool:
        """The rmdir part of destroy(): touches no event-loop state, so it may run in a thread
        (an rmdir waits for the cgroup mutex, which a concurrent join holds for up to ~30 ms)."""
        done = True
        for group in self.groups.values():
            try:
                group.rmdir()
            except FileNotFoundError:
                pass
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    log.warning("cannot remove cgroup %s: %s", group, exc)
                done = False
        if done:
            self.groups = {}
        return done

    def close_files(self) -> None:
        if self._peak_fd >= 0:
            os.close(self._peak_fd)
            self._peak_fd = -1


def _tree_rss(pid: int) -> int:
    """RSS in bytes of `pid` and its descendants (through /proc/<pid>/task/*/children)."""
    total, todo, seen = 0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            with open(f"/proc/{p}/statm", "rb") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children", "rb") as f:
                    todo.extend(int(c) for c in f.read().split())
        except (OSError, ValueError, IndexError):
            continue
    return total


class Limits:
    """The pool-wide limits backend: detects what the machine allows, makes per-environment
    limits, and removes its cgroup directories on close."""

    def __init__(self, enforcement: str = "auto", max_processes: int = 1024) -> None:
        if enforcement not in ("auto", "cgroup", "watchdog", "off"):
            raise ConfigError("memory enforcement must be auto, cgroup, watchdog or off")
        self.max_processes = max_processes
        self._memory: _Tree | None = None
        self._pids: _Tree | None = None
        want_cgroup = enforcement in ("auto", "cgroup")
        v2 = _v2_tree(frozenset({"memory", "pids"} if want_cgroup else {"pids"}))
        if v2 is not None:
            if "memory" in v2.controllers:
                self._memory = v2
            if "pids" in v2.controllers:
                self._pids = v2
        if want_cgroup and self._memory is None:
            self._memory = _v1_tree("memory")
        if self._pids is None:
            self._pids = _v1_tree("pids")
        if self._memory is not None:
            self.mode = MemoryMode.CGROUP_V2 if self._memory.version == 2 else MemoryMode.CGROUP_V1
        elif enforcement == "cgroup":
            self.close()
            raise ConfigError("memory enforcement 'cgroup': no writable memory cgroup (v2 or v1) here")
        elif enforcement == "off":
            self.mode = MemoryMode.OFF
        else:
            self.mode = MemoryMode.WATCHDOG
        log.debug("memory enforcement: %s; pids limit: %s", self.mode, bool(self._pids))

    @property
    def limits_processes(self) -> bool:
        return self._pids is not None

    def create(self, env_id: str, memory_mb: int | None = None) -> EnvironmentLimits:
        """Make the groups of one environment. Without `memory_mb` the memory limit is left
        unset (the pool's own group bounds it) until `EnvironmentLimits.set_memory`: a spare
        process joins its groups before anyone knows which function it will run."""
        groups: dict[str, Path] = {}
        version = 1
        try:
            if self._memory is not None:
                group = self._memory.root / env_id
                group.mkdir()
                groups["memory"] = group
                version = self._memory.version
                if version == 2:
                    with contextlib.suppress(OSError):
                        _write(group / "memory.swap.max", "0")
            if self._pids is not None:
                if self._pids is self._memory:
                    groups["pids"] = groups["memory"]
                else:
                    group = self._pids.root / env_id
                    group.mkdir()
                    groups["pids"] = group
                    version = version if "memory" in groups else self._pids.version
                _write(groups["pids"] / "pids.max", str(self.max_processes))
        except OSError:
            EnvironmentLimits(groups, version, 0, False).destroy()
            raise
        limits = EnvironmentLimits(groups, version, 0, self.mode == MemoryMode.WATCHDOG)
        if memory_mb is not None:
            try:
                limits.set_memory(memory_mb)
            except OSError:
                limits.destroy()
                raise
        return limits

    def close(self) -> None:
        for tree in {id(t): t for t in (self._memory, self._pids) if t is not None}.values():
            tree.remove()


def kill_all(pgid: int | None, pids: set[int], uid: int | None) -> None:
    """SIGKILL a process group, the given pids, and (for a per-environment uid) every process
    of that uid: together these cover children that left the group with setsid()."""
    if pgid:
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    if uid is not None:
        for pid in _pids_of_uid(uid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def _pids_of_uid(uid: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    found.append(int(name))
            except OSError:
                continue
    return found
