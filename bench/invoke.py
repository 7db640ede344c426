"""Invoke over one keep-alive connection with `http.client`: no SDK in the measured path."""

from __future__ import annotations

import base64
import http.client
import re
import socket
import time
from dataclasses import dataclass

_INIT = re.compile(r"Init Duration: ([0-9.]+) ms")
_DURATION = re.compile(r"\tDuration: ([0-9.]+) ms")


@dataclass(frozen=True)
class Outcome:
    status: int
    function_error: str | None
    body: bytes
    elapsed_ms: float  # request written → response body read, client side
    log: str  # the decoded X-Amz-Log-Result ("" without tail)

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.function_error is None

    @property
    def report(self) -> str:
        return next((line for line in self.log.splitlines() if line.startswith("REPORT ")), "")

    @property
    def init_ms(self) -> float | None:
        """Init Duration from the REPORT line: present only when the invoke cold-started."""
        match = _INIT.search(self.report)
        return float(match.group(1)) if match else None

    @property
    def duration_ms(self) -> float | None:
        match = _DURATION.search(self.report)
        return float(match.group(1)) if match else None


class RawInvoker:
    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.conn = http.client.HTTPConnection(host, port, timeout=120)
        self.conn.connect()
        assert self.conn.sock is not None
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def invoke(self, function: str, payload: bytes = b"{}", tail: bool = False) -> Outcome:
        headers = {"Content-Type": "application/json"}
        if tail:
            headers["X-Amz-Log-Type"] = "Tail"
        path = f"/2015-03-31/functions/{function}/invocations"
        started = time.perf_counter()
        self.conn.request("POST", path, body=payload, headers=headers)  # one send: headers + body
        response = self.conn.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        log = response.getheader("X-Amz-Log-Result")
        return Outcome(
            status=response.status,
            function_error=response.getheader("X-Amz-Function-Error"),
            body=body,
            elapsed_ms=elapsed,
            log=base64.b64decode(log).decode(errors="replace") if log else "",
        )

    def close(self) -> None:
        self.conn.close()
