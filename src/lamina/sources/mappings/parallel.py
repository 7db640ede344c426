"""ParallelizationFactor: up to N batches of one shard in flight, order kept per partition key.

A reader takes the shard's records in order and deals each to lane hash(key) mod N; each lane is a
ShardPoller over its own subsequence (batching, window, retries, bisect, partial failures, the
6 MB cut all as for a whole shard). A key always lands in the same lane and a lane sends its
batches one after the other, so records of one key are processed in order; lanes run concurrently.

The shard's checkpoint is the longest prefix of read records that are all decided, whichever lane
decided them: a crash repeats only records after it (some of them may have been decided in
another lane already: duplicates are bounded by what was in flight or read ahead, N batches).
https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html (concurrent batches per shard)
"""

from __future__ import annotations

import asyncio
import zlib
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lamina.sources.mappings.poller import READ_BYTES, Failure, ShardPoller
from lamina.sources.mappings.source import SourceGone, SourceRecord

if TYPE_CHECKING:
    from lamina.sources.mappings.engine import MappingRunner


def lane_of(key: str, lanes: int) -> int:
    return zlib.crc32(key.encode()) % lanes


class Lane(ShardPoller):
    """One lane: fed by its ParallelShard instead of reading the source."""

    def __init__(self, parent: ParallelShard) -> None:
        super().__init__(parent.runner, parent.shard, parent.checkpoint)
        self.parent = parent
        self.arrivals = 0
        self._arrived = asyncio.Event()

    def push(self, records: Sequence[SourceRecord]) -> None:
        self.pending.extend(records)
        self.arrivals += 1
        self._arrived.set()

    def _version(self) -> int:
        return self.arrivals

    async def _fill(self, need: int) -> tuple[int, bool]:
        self.parent.wake_reader()  # room here: the reader may read ahead
        return 0, False

    async def _signal(self, version: int, timeout: float | None) -> bool:
        while self.arrivals == version:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout)
            except TimeoutError:
                return False
        return True

    async def _decided(self, records: list[SourceRecord], failure: Failure | None) -> None:
        await self.parent.decided(records, failure)

    async def _save(self, finished: bool = False) -> None:
        """The shard's checkpoint is the parent's to save (a lane's own position may be ahead)."""


class ParallelShard:
    """A shard read by one reader and processed by `factor` lanes (same surface as ShardPoller)."""

    def __init__(self, runner: MappingRunner, shard: str, checkpoint: str, factor: int) -> None:
        self.runner = runner
        self.shard = shard
        self.checkpoint = checkpoint
        self.read_pos = checkpoint
        self.order: deque[str] = deque()  # positions read and not yet in the decided prefix
        self.done: set[str] = set()
        self.stopping = False
        self._poke = asyncio.Event()
        self._save = asyncio.Lock()
        self.lanes = [Lane(self) for _ in range(factor)]

    @property
    def last_result(self) -> str:
        results = [lane.last_result for lane in self.lanes]
        return next((r for r in results if r.startswith("PROBLEM")), None) or max(results, key=lambda r: r == "OK")

    def wake_reader(self) -> None:
        self._poke.set()

    def poke(self) -> None:
        self._poke.set()
        for lane in self.lanes:
            lane.poke()

    def stop(self) -> None:
        self.stopping = True
        self._poke.set()
        for lane in self.lanes:
            lane.stop()

    async def run(self) -> bool:
        tasks = [asyncio.get_running_loop().create_task(lane.run()) for lane in self.lanes]
        try:
            finished = await self._read()
        finally:
            for lane in self.lanes:
                lane.stop()
            await asyncio.gather(*tasks, return_exceptions=True)
        if finished:
            await self.runner.save_checkpoint(self.shard, self.checkpoint, True)
        return finished

    async def _read(self) -> bool:
        source = self.runner.source
        while not self.stopping:
            self._poke.clear()
            factor = len(self.lanes)
            room = self.runner.config.batch_size * factor - len(self.order)
            version = source.version(self.shard)
            if room > 0:
                try:
                    result = await asyncio.to_thread(source.read, self.shard, self.read_pos, min(room, 10_000),
                                                     READ_BYTES)  # fmt: skip
                except SourceGone:
                    await self._wait(None, 1.0)
                    continue
                if result.records:
                    dealt: list[list[SourceRecord]] = [[] for _ in range(factor)]
                    for record in result.records:
                        self.order.append(record.position)
                        dealt[lane_of(record.key, factor)].append(record)
                    for lane, records in zip(self.lanes, dealt, strict=True):
                        if records:
                            lane.push(records)
                    self.read_pos = result.records[-1].position
                    continue
                if result.finished and not self.order:
                    return True
            await self._wait(version if room > 0 else None, None)
        return False

    async def _wait(self, version: int | None, timeout: float | None) -> None:
        waits = [asyncio.ensure_future(self._poke.wait())]
        if version is not None:
            waits.append(asyncio.ensure_future(self.runner.source.wait(self.shard, version, timeout)))
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    async def decided(self, records: list[SourceRecord], failure: Failure | None) -> None:
        async with self._save:  # checkpoints are saved in the order they advance
            self.done.update(r.position for r in records)
            advanced = False
            while self.order and self.order[0] in self.done:
                self.checkpoint = self.order.popleft()
                self.done.discard(self.checkpoint)
                advanced = True
            if failure is not None:
                await self.runner.give_up(self.shard, self.checkpoint, failure)
            elif advanced:
                await self.runner.save_checkpoint(self.shard, self.checkpoint)
        self._poke.set()

    def status(self) -> dict[str, Any]:
        lanes = [lane.status() for lane in self.lanes]
        return {
            "shard": self.shard,
            "checkpoint": self.checkpoint,
            "lastResult": self.last_result,
            "retries": max(lane["retries"] for lane in lanes),
            "pending": len(self.order),
            "iteratorAgeMs": max(lane["iteratorAgeMs"] for lane in lanes),
            "processed": sum(lane["processed"] for lane in lanes),
            "lanes": len(lanes),
        }
