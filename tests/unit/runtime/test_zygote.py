"""The zygote protocol: hello, spawn with passed fds, exit reports, stop, a bad interpreter."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import sys

import pytest

from lamina.runtime.zygote import Zygote, ZygoteDied

from .conftest import gone, write_code


def test_hello_and_exit_reports():
    async def scenario():
        zygote = Zygote(sys.executable)
        info = await zygote.start()
        assert info.version == tuple(sys.version_info[:3])
        assert info.modules == frozenset()  # no preload: nothing from outside the stdlib
        assert all("site-packages" not in p for p in info.stdlib)
        code = write_code("import sys\ndef handler(e, c): return 1\n")
        ours, theirs = socket.socketpair()
        read_fd, write_fd = os.pipe()
        prep = {"cgroups": [], "nproc": 1024, "nofile": 1024}  # what does not depend on the function
        spec = {
            "env": {"A": "1"}, "cwd": str(code), "path": [str(code), *info.stdlib], "handler": "app.nope",
            "uid": None, "gid": None, "fsize": None, "response_limit": 100,
        }  # fmt: skip
        pid = await zygote.spawn(prep, [theirs.fileno(), write_fd])
        theirs.close()
        os.close(write_fd)
        # The child waits for its function's spec on the channel (a frame like any other).
        head = json.dumps({"t": "spec", "spec": spec}).encode()
        ours.sendall(struct.pack("!II", len(head), 0) + head)
        status = await asyncio.wait_for(zygote.exit_status(pid), 10)
        assert os.waitstatus_to_exitcode(status) == 1  # init failed: awslambdaric exits 1
        assert os.read(read_fd, 65536).startswith(b"[WARNING]\t")
        assert ours.recv(65536)[8:].startswith(b'{"t":"init","ok":false}')
        zygote_pid = info.pid
        await zygote.stop()
        assert not zygote.alive
        return zygote_pid

    pid = asyncio.run(scenario())
    assert gone(pid)


def test_missing_interpreter():
    async def scenario():
        with pytest.raises(ZygoteDied):
            await Zygote("/nonexistent/python3").start()

    asyncio.run(scenario())
