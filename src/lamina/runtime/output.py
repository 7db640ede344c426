"""An environment's stdout/stderr: one pipe, read as it fills, split into timestamped lines.

Both fds 1 and 2 of the environment are the same pipe, so the two streams interleave in the
order they were written, as they do in a CloudWatch log stream. The reader never stops reading
(a full pipe would block the handler forever), but it keeps at most `cap` bytes of lines per
invocation: past that it adds one "...output truncated" line and drops the rest until `take()`.

Attribution: the bootstrap flushes its output before sending a result, so when the result
arrives the server calls `drain()`, which reads synchronously until the pipe is empty: every line
the invocation printed is then in the batch `take()` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time

from lamina.runtime.base import LogLine

TRUNCATED = "...output truncated"
READ_SIZE = 1 << 18
PIPE_SIZE = 1 << 20  # fewer wake-ups for chatty handlers; the kernel may give less


def make_pipe() -> tuple[int, int]:
    """(read end, write end); the read end non-blocking, both close-on-exec."""
    read_fd, write_fd = os.pipe()
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(read_fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    os.set_blocking(read_fd, False)
    return read_fd, write_fd


class Output:
    def __init__(self, fd: int, cap: int) -> None:
        self.fd = fd
        self.cap = cap
        self._lines: list[LogLine] = []
        self._partial = b""
        self._kept = 0
        self._truncated = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.fd, self.drain)

    def drain(self) -> None:
        """Read everything the pipe holds now."""
        while not self.closed:
            try:
                chunk = os.read(self.fd, READ_SIZE)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self.close()  # every writer is gone: the environment and its children exited
                return
            self._feed(chunk)

    def _feed(self, chunk: bytes) -> None:
        if self._truncated:
            return  # keep draining, keep nothing
        parts = (self._partial + chunk).split(b"\n") if self._partial else chunk.split(b"\n")
        self._partial = parts.pop()
        now = int(time.time() * 1000)
        for part in parts:
            if not self._keep(now, part):
                return
        if len(self._partial) > self.cap - self._kept:
            self._keep(now, self._partial)  # an endless line: cut it here
            self._partial = b""

    def _keep(self, now: int, raw: bytes) -> bool:
        if self._kept + len(raw) > self.cap:
            room = self.cap - self._kept
            if room > 0:
                self._lines.append(LogLine(now, raw[:room].decode("utf-8", "replace")))
            self._lines.append(LogLine(now, TRUNCATED))
            self._truncated = True
            self._partial = b""
            return False
        self._kept += len(raw) + 1
        self._lines.append(LogLine(now, raw.decode("utf-8", "replace")))
        return True

    def take(self) -> list[LogLine]:
        """The lines since the last take (a trailing partial line included); resets the cap."""
        if self._partial and not self._truncated:
            self._keep(int(time.time() * 1000), self._partial)
        lines = self._lines
        self._lines = []
        self._partial = b""
        self._kept = 0
        self._truncated = False
        return lines

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._loop is not None:
            self._loop.remove_reader(self.fd)
        os.close(self.fd)
