"""A Lamina server of our own: `lamina up` on a free port with a temp data dir, and a clean stop.

The server's environments run in their own sessions, so killing its process group is not enough:
`stop()` kills every process below the server (by pid and start time) and every process whose
command line names our temp dir, then checks that none is left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from bench import procs

LAMINA = str(Path(sys.executable).with_name("lamina"))
ROLE = "arn:aws:iam::000000000000:role/bench"
HOST_RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LaminaServer:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.port = free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix="lamina-bench-"))
        self.data_dir = self.tmp / "data"
        self.log_path = self.tmp / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.left_behind: list[int] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 60.0) -> LaminaServer:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [LAMINA, "up", "--port", str(self.port), "--data-dir", str(self.data_dir)],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"lamina up exited with {self.proc.returncode}:\n{self.output()}")
            try:
                # Wait for the zygote too: its boto3 preload must not land in the first sample.
                if self.health().get("zygotes", 1) >= 1:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"lamina up did not become healthy in {timeout} s:\n{self.output()}")

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.endpoint}/_lamina/health", timeout=5) as response:
            return dict(json.loads(response.read()))

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def database_mb(self) -> float:
        """Size of the SQLite database (with its WAL): it grows with every invocation's log and meter rows."""
        return sum(p.stat().st_size for p in self.data_dir.glob("*.db*") if p.is_file()) / 1e6

    def client(self) -> Any:
        return boto3.client(
            "lambda",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
            config=Config(retries={"max_attempts": 1}, read_timeout=120, max_pool_connections=4),
        )

    def environment_interpreter(self) -> str | None:
        """The interpreter the zygotes run (environments are forked from them)."""
        for pid in procs.descendants(self.pid):
            argv = procs.cmdline(pid)
            if "zygote" in argv:
                return argv[0]
        return None

    def stop(self) -> list[int]:
        """Stop the server and everything it started; return the pids that had to be killed late."""
        if self.proc is None:
            return []
        tree = {p.pid: p.start_ticks for p in procs.descendants(self.proc.pid).values()}
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
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
