"""A Lamina server of our own: `lamina up` on a free port with a temp data dir, and a clean stop.

The server's environments run in their own sessions, so killing its process group is not enough:
`stop()` kills every process below the server (by pid and start time) and every process whose
command line names our temp dir, then checks that none is left.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import procs
from lamina.testing import LocalLamina

ROLE = "arn:aws:iam::000000000000:role/bench"
HOST_RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"


class LaminaServer(LocalLamina):
    """`lamina.testing.LocalLamina` in a temp dir of its own, stopped with a check for leftovers."""

    def __init__(self, env: dict[str, str]) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="lamina-bench-"))
        super().__init__(self.tmp / "data", env=env, log_path=self.tmp / "server.log")
        self.left_behind: list[int] = []

    def start(self, timeout: float = 60.0, wait_for_zygote: bool = True) -> LaminaServer:
        # Wait for the zygote too: its boto3 preload must not land in the first sample.
        super().start(timeout, wait_for_zygote=wait_for_zygote)
        return self

    def database_mb(self) -> float:
        """Size of the SQLite database (with its WAL): it grows with every invocation's log and meter rows."""
        return sum(p.stat().st_size for p in self.data_dir.glob("*.db*") if p.is_file()) / 1e6

    def client(self, service: str = "lambda", key: str = "bench", secret: str = "bench", **config: Any) -> Any:
        return super().client(service, key, secret, **{"max_pool_connections": 4, **config})

    def environment_interpreter(self) -> str | None:
        """The interpreter the zygotes run (environments are forked from them)."""
        for pid in procs.descendants(self.pid):
            argv = procs.cmdline(pid)
            if "zygote" in argv:
                return argv[0]
        return None

    def stop(self, timeout: float = 15.0) -> list[int]:  # type: ignore[override]
        """Stop the server and everything it started; return the pids that had to be killed late."""
        if self.proc is None:
            return []
        tree = {p.pid: p.start_ticks for p in procs.descendants(self.proc.pid).values()}
        super().stop(timeout)
        stragglers = _ours_alive(tree, str(self.tmp))
        for pid in stragglers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while stragglers and time.monotonic() < deadline and _ours_alive(tree, str(self.tmp)):
            time.sleep(0.05)
        self.left_behind = _ours_alive(tree, str(self.tmp))  # must be empty
        if not self.left_behind:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return stragglers


def _ours_alive(tree: dict[int, int], marker: str) -> list[int]:
    """Live processes that are ours: same pid and start time as seen in the tree, or our temp dir in argv."""
    alive = []
    for pid in sorted(set(tree) | set(procs.pids_with_cmdline(marker))):
        info = procs.read_proc(pid)
        if info is None or (pid in tree and info.start_ticks != tree[pid]) or _is_zombie(pid):
            continue
        alive.append(pid)
    return alive


def _is_zombie(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return text[text.rindex(")") + 2] in "ZX"
