"""The server's handle on one zygote process (see bootstrap/python.py for the other side).

A zygote is started with subprocess.Popen from the interpreter that runs the functions, with one
end of a SOCK_SEQPACKET socketpair inherited as its control channel. With a `PrivateMount`
(sandbox.py) it starts in a mount namespace of its own, from a bind mount of the interpreter's
prefix, so that unprivileged environments can read its standard library. Messages are single JSON
datagrams; spawn requests carry the environment's channel socket and output pipe as SCM_RIGHTS
fds. The zygote answers `spawned` (the child's pid) and later `exit` (its wait status).

If the zygote dies, its environments die with it (they hold PR_SET_PDEATHSIG): every pending
exit future resolves to None ("exited without providing a reason") and the pool starts a new
zygote on the next spawn.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import json
import logging
import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lamina.errors import ServiceError
from lamina.runtime.sandbox import PrivateMount

log = logging.getLogger("lamina.runtime")

BOOTSTRAP = Path(__file__).parent / "bootstrap" / "python.py"


@dataclass(frozen=True)
class ZygoteInfo:
    """What a zygote reported when it came up."""

    pid: int
    version: tuple[int, int, int]
    executable: str
    stdlib: tuple[str, ...]  # the interpreter's own sys.path (no site-packages)
    modules: frozenset[str]  # top-level names of preloaded modules from outside the stdlib


class ZygoteDied(ServiceError):
    """Raised when a zygote exits or cannot start."""


class Zygote:
    def __init__(
        self,
        interpreter: str,
        preload: tuple[str, ...] = (),
        extra_path: tuple[str, ...] = (),
        bootstrap: Path = BOOTSTRAP,
        services: tuple[str, ...] = (),
        mount: PrivateMount | None = None,
    ) -> None:
        self.interpreter = interpreter
        self.mount = mount
        self.preload = preload
        self.extra_path = extra_path
        self.bootstrap = bootstrap
        self.services = services  # botocore models to warm (only if botocore is preloaded)
        self.info: ZygoteInfo | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._hello: asyncio.Future[ZygoteInfo] | None = None
        self._spawns: dict[int, asyncio.Future[int]] = {}
        self._exits: dict[int, asyncio.Future[int | None]] = {}
        self._next_id = 0
        self._stopping = False
        self.alive = False

    async def start(self, timeout: float = 60.0) -> ZygoteInfo:
        loop = self._loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        config = json.dumps(
            {"preload": list(self.preload), "path": list(self.extra_path), "services": list(self.services)}
        )
        args = ["-I", "-S", "-B", str(self.bootstrap), "zygote", str(theirs.fileno()), config]
        try:
            self._proc = subprocess.Popen(
                self.mount.command(args) if self.mount is not None else [self.interpreter, *args],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                env={"LANG": "C.UTF-8", "PATH": os.defpath},
                start_new_session=True,  # a terminal's ^C is for the server, which then stops us
            )
        except OSError as exc:
            ours.close()
            raise ZygoteDied(f"cannot start a zygote with {self.interpreter}: {exc}") from exc
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock = ours
        self._hello = loop.create_future()
        self.alive = True
        loop.add_reader(ours.fileno(), self._on_readable)
        try:
            self.info = await asyncio.wait_for(asyncio.shield(self._hello), timeout)
        except (TimeoutError, ZygoteDied):
            await self.stop()
            raise ZygoteDied(f"zygote {self.interpreter} (preload {self.preload}) did not start") from None
        return self.info

    async def spawn(self, spec: dict[str, Any], fds: list[int]) -> int:
        """Fork an environment's process; `fds` = [channel socket, output pipe write end]. `spec`
        is what does not depend on the function (cgroups to join, rlimits); the child then waits
        for the function's spec on the channel (see environment.py). Returns its pid."""
        if not self.alive or self._sock is None or self._loop is None:
            raise ZygoteDied("zygote is not running")
        self._next_id += 1
        request_id = self._next_id
        reply = self._spawns[request_id] = self._loop.create_future()
        data = json.dumps({"op": "spawn", "id": request_id, "spec": spec}).encode()
        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
        while True:
            try:
                self._sock.sendmsg([data], ancillary)
                break
            except BlockingIOError:  # the zygote is behind: wait until it reads
                writable = self._loop.create_future()
                self._loop.add_writer(self._sock.fileno(), writable.set_result, None)
                try:
                    await writable
                finally:
                    self._loop.remove_writer(self._sock.fileno())
            except OSError as exc:
                self._spawns.pop(request_id, None)
                raise ZygoteDied(f"zygote control channel failed: {exc}") from exc
        return await reply

    def exit_status(self, pid: int) -> asyncio.Future[int | None]:
        """Resolves with the raw wait status of environment `pid` (None if the zygote died)."""
        future = self._exits.get(pid)
        if future is None:
            assert self._loop is not None
            future = self._exits[pid] = self._loop.create_future()
            if not self.alive:
                future.set_result(None)
        return future

    def _on_readable(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data = self._sock.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._on_death()
                return
            self._dispatch(json.loads(data))

    def _dispatch(self, message: dict[str, Any]) -> None:
        op = message["op"]
        if op == "exit":
            future = self.exit_status(message["pid"])
            if not future.done():
                future.set_result(message["status"])
        elif op == "spawned":
            self.exit_status(message["pid"])  # registered before its exit can arrive
            reply = self._spawns.pop(message["id"], None)
            if reply is not None and not reply.done():
                reply.set_result(message["pid"])
        elif op == "error":
            reply = self._spawns.pop(message["id"], None)
            if reply is not None and not reply.done():
                reply.set_exception(ZygoteDied(f"fork failed: {message['error']}"))
        elif op == "hello" and self._hello is not None and not self._hello.done():
            self._hello.set_result(
                ZygoteInfo(
                    pid=message["pid"],
                    version=tuple(message["version"]),  # type: ignore[arg-type]
                    executable=message["executable"],
                    stdlib=tuple(message["stdlib"]),
                    modules=frozenset(message["modules"]),
                )
            )

    def _on_death(self) -> None:
        if not self.alive:
            return
        self.alive = False
        if self._loop is not None and self._sock is not None:
            self._loop.remove_reader(self._sock.fileno())
        if self._hello is not None and not self._hello.done():
            self._hello.set_exception(ZygoteDied("zygote exited during start-up"))
        for reply in self._spawns.values():
            if not reply.done():
                reply.set_exception(ZygoteDied("zygote exited"))
        self._spawns.clear()
        for future in self._exits.values():
            if not future.done():
                future.set_result(None)
        if not self._stopping and self.info is not None and self._proc is not None:
            log.warning("zygote %s (pid %s) died", self.interpreter, self._proc.pid)

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop the zygote; it SIGKILLs its environments (and their process groups) on the way."""
        sock, proc = self._sock, self._proc
        self._stopping = True
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.send(b'{"op":"stop"}')
            self._on_death()
            sock.close()
            self._sock = None
        if proc is not None:
            try:
                await asyncio.to_thread(proc.wait, timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)
