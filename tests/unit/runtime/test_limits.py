"""Limit backends: detection, per-environment cgroups, cleanup, the RSS walk."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from lamina.errors import ConfigError
from lamina.runtime.limits import Limits, MemoryMode, _tree_rss, kill_all


def test_off_and_watchdog_modes_make_no_memory_cgroup():
    for enforcement, mode in (("off", MemoryMode.OFF), ("watchdog", MemoryMode.WATCHDOG)):
        limits = Limits(enforcement)
        try:
            assert limits.mode is mode
            env = limits.create("env1", 128)
            assert "memory" not in env.groups
            assert env.enforced is (mode is MemoryMode.WATCHDOG)
            assert env.destroy()
        finally:
            limits.close()


def test_unknown_enforcement_is_a_config_error():
    with pytest.raises(ConfigError):
        Limits("sometimes")


def test_cgroup_groups_are_made_and_removed():
    limits = Limits("auto", max_processes=50)
    try:
        if limits.mode not in (MemoryMode.CGROUP_V1, MemoryMode.CGROUP_V2):
            pytest.skip("no writable memory cgroup here")
        env = limits.create("env2", 64)
        memory = env.groups["memory"]
        limit_file = "memory.max" if env.version == 2 else "memory.limit_in_bytes"
        assert int((memory / limit_file).read_text()) == 64 << 20
        if "pids" in env.groups:
            assert (env.groups["pids"] / "pids.max").read_text().strip() == "50"
        proc = subprocess.Popen(["sh", "-c", 'for f in "$@"; do echo $$ > $f; done; exec sleep 30', "sh", *env.join])
        try:
            deadline = time.monotonic() + 5
            while proc.pid not in env.pids() and time.monotonic() < deadline:
                time.sleep(0.01)
            assert proc.pid in env.pids()
            assert not env.destroy()  # busy: a process is inside
            kill_all(None, env.pids(), None)
            proc.wait()
            assert env.peak_bytes() > 0
            assert not env.oom_killed()
            assert env.destroy()
            assert not memory.exists()
        finally:
            proc.kill()
            proc.wait()
    finally:
        limits.close()


def test_tree_rss_counts_descendants():
    proc = subprocess.Popen(["sh", "-c", "sleep 30 & sleep 30 & wait"], start_new_session=True)
    try:
        own = _tree_rss(os.getpid())
        assert own > 10 << 20  # this test process alone is tens of MB
        assert _tree_rss(proc.pid) > 0
        assert _tree_rss(999_999_999) == 0
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_groups_made_without_a_memory_limit_get_one_later():
    """A spare's groups: made (and joined) before the function, hence its MemorySize, is known."""
    limits = Limits("auto")
    try:
        env = limits.create("env3")
        assert env.memory_bytes == 0
        memory = env.groups.get("memory")
        name = "memory.max" if env.version == 2 else "memory.limit_in_bytes"
        if memory is not None:
            unset = (memory / name).read_text().strip()
            assert unset == "max" or int(unset) > 1 << 40
        env.set_memory(96)
        assert env.memory_bytes == 96 << 20  # what the watchdog enforces, without cgroups
        if memory is not None:
            assert int((memory / name).read_text()) == 96 << 20
        assert env.destroy()
    finally:
        limits.close()
