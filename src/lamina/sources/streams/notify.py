"""Waking consumers when records arrive, so a poller need not sleep between empty reads.

Each shard has a version that `notify` bumps (from any thread: the store's commit callback runs
on the writer thread). A consumer takes the version *before* it reads, and if the read came back
empty awaits `wait(shard, since=version)`: that returns at once if records were committed since
the version was taken, so no arrival between the read and the wait is ever missed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable


class RecordSignal:
    """Per-shard versions and asyncio waiters. Thread-safe; waiters may live on any event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions: dict[int, int] = {}
        self._waiters: dict[int, list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]] = {}

    def version(self, shard_id: int) -> int:
        return self._versions.get(shard_id, 0)

    def notify(self, shard_ids: Iterable[int]) -> None:
        woken = []
        with self._lock:
            for shard_id in set(shard_ids):
                self._versions[shard_id] = self._versions.get(shard_id, 0) + 1
                woken.extend(self._waiters.pop(shard_id, ()))
        for loop, future in woken:
            try:
                loop.call_soon_threadsafe(_wake, future)
            except RuntimeError:  # that loop is closed: nobody is waiting any more
                pass

    async def wait(self, shard_id: int, since: int, timeout: float | None = None) -> bool:
        """Wait until the shard's version passes `since`; False if `timeout` seconds pass first."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry = (loop, future)
        with self._lock:
            if self._versions.get(shard_id, 0) != since:
                return True
            self._waiters.setdefault(shard_id, []).append(entry)
        try:
            await asyncio.wait_for(future, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            with self._lock:
                waiters = self._waiters.get(shard_id)
                if waiters and entry in waiters:
                    waiters.remove(entry)
                    if not waiters:
                        del self._waiters[shard_id]


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
