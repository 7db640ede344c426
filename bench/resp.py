"""A minimal Redis (RESP2) client over a socket: pipelined commands, replies parsed as Python values.

Enough for the streams benchmark (XADD, XRANGE, DEL, PING, INFO) without the `redis` package.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any


class RespError(Exception):
    """An error reply (`-ERR ...`)."""


class Resp:
    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 30.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb", buffering=1 << 16)

    @staticmethod
    def encode(*args: bytes | str | int) -> bytes:
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            raw = arg if isinstance(arg, bytes) else str(arg).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
        return b"".join(parts)

    def pipeline(self, commands: Sequence[bytes]) -> list[Any]:
        """Send pre-encoded commands in one write; read one reply each."""
        self.sock.sendall(b"".join(commands))
        return [self.read() for _ in commands]

    def call(self, *args: bytes | str | int) -> Any:
        return self.pipeline([self.encode(*args)])[0]

    def read(self) -> Any:
        line = self.reader.readline()
        if not line:
            raise ConnectionError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest
        if kind == b"-":
            return RespError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            data = self.reader.read(size + 2)
            return data[:-2]
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [self.read() for _ in range(count)]
        raise ConnectionError(f"unexpected RESP reply {line[:40]!r}")

    def close(self) -> None:
        try:
            self.reader.close()
        finally:
            self.sock.close()
