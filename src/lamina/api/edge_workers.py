"""The core's side of edge workers (edge_worker.py): their processes, the Unix socket they forward
requests to, and the datagram socket through which they wake the core's stream pollers.

Both sockets live in a private directory of their own (mode 0700) under the temp dir: a Unix
socket path must be short (108 bytes), and forwarded requests still carry their SigV4 signature,
which the core checks as for any request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lamina.config import Settings
from lamina.errors import ServiceError
from lamina.sources.streams.notify import RecordSignal

log = logging.getLogger("lamina.edge")

START_TIMEOUT_S = 30.0


class EdgeWorkers:
    def __init__(self, settings: Settings, signal: RecordSignal) -> None:
        self.settings = settings
        self.signal = signal
        self.dir = Path(tempfile.mkdtemp(prefix="lamina-edge-"))
        self.core_path = str(self.dir / "core.sock")
        self.notify_path = str(self.dir / "notify.sock")
        self._notify: socket.socket | None = None
        self._procs: list[subprocess.Popen[bytes]] = []
        self._alive_w: int | None = None  # held open while the core lives: workers exit at its EOF

    def core_socket(self) -> socket.socket:
        """The Unix socket the core serves its whole API on (workers forward to it)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(self.core_path)
        sock.listen(1024)
        return sock

    async def start(self) -> None:
        """Bind the wake-up socket, start the workers, and wait until the port accepts."""
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._notify.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self._notify.bind(self.notify_path)
        self._notify.setblocking(False)
        asyncio.get_running_loop().add_reader(self._notify.fileno(), self._on_notify)
        alive_r, self._alive_w = os.pipe()
        for _ in range(self.settings.edge_workers):
            self._procs.append(subprocess.Popen(
                [sys.executable, "-m", "lamina.api.edge_worker", "--core-socket", self.core_path,
                 "--notify-socket", self.notify_path, "--parent-fd", str(alive_r),
                 "--data-dir", str(self.settings.data_dir), "--host", self.settings.host,
                 "--port", str(self.settings.port)],
                pass_fds=(alive_r,),
            ))  # fmt: skip
        os.close(alive_r)
        await asyncio.to_thread(self._wait_listening)
        log.info("%d edge worker(s) serve %s", len(self._procs), self.settings.endpoint)

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if any(p.poll() is not None for p in self._procs):
                raise ServiceError("an edge worker exited while starting (see the server log)")
            try:
                socket.create_connection((self.settings.host, self.settings.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise ServiceError("the edge workers did not start listening") from None
                time.sleep(0.02)

    def _on_notify(self) -> None:
        assert self._notify is not None
        while True:
            try:
                data = self._notify.recv(1 << 16)
            except (BlockingIOError, InterruptedError):
                return
            try:
                self.signal.notify(int(i) for i in json.loads(data))
            except (ValueError, TypeError):
                log.warning("ignored a malformed wake-up from an edge worker: %r", data[:100])

    async def stop(self) -> None:
        """Stop the workers first (no new requests), then close the sockets."""
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self._procs:
            try:
                await asyncio.to_thread(proc.wait, 10)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)
        if self._alive_w is not None:
            os.close(self._alive_w)
            self._alive_w = None
        if self._notify is not None:
            asyncio.get_running_loop().remove_reader(self._notify.fileno())
            self._notify.close()
        shutil.rmtree(self.dir, ignore_errors=True)
