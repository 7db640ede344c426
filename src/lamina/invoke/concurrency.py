"""Concurrency leases: how many invocations run at once, account-wide.

A lease is a context manager so a slot cannot leak when an invocation fails. Reserved concurrency
per function arrives with the versions/concurrency issue and plugs in here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from lamina.errors import TooManyRequests


class ConcurrencyLimiter:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._in_use = 0
        self._lock = threading.Lock()

    @property
    def in_use(self) -> int:
        return self._in_use

    @contextmanager
    def lease(self, function: str) -> Iterator[None]:
        """Hold one slot for the duration of an invocation; over the limit → 429 (Lambda's throttle)."""
        with self._lock:
            if self._in_use >= self.limit:
                raise TooManyRequests("Rate Exceeded.", reason="ConcurrentInvocationLimitExceeded")
            self._in_use += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_use -= 1
