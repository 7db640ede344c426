"""ParallelizationFactor: up to N batches of one shard in flight, order kept per partition key.

A reader takes the shard's records in order and deals each to lane hash(key) mod N; each lane is a
ShardPoller over its own subsequence (batching, window, retries, bisect, partial failures, the
6 MB cut all as for a whole shard). A key always lands in the same lane and a lane sends its
batches one after the other, so records of one key are processed in order; lanes run concurrently.

The shard's checkpoint is the longest prefix of read records that are all decided, whichever lane
decided them. What lies beyond it is saved with it, in the checkpoint row's `window` column, as
JSON (`LaneState`), at every decision and in the same commit as the checkpoint:
- `ahead`: per lane, the last record it decided past the checkpoint. A lane decides its records
  in order, so every record of that lane up to it is decided; after a restart the reader skips
  them (decided already) instead of sending them again. A record is past a mark once its arrival
  time is later (arrival never decreases along a shard), so a mark that aged out of the stream
  skips nothing it should not.
- `windows`: per lane, its open tumbling window and state as of its last decision.
A restart with the same factor therefore resumes every lane exactly where it had decided, window
state included; what repeats is only what was in flight (or decided but not yet saved).
https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html (concurrent batches per shard)
"""

from __future__ import annotations

import asyncio
import json
import zlib
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from lamina.sources.mappings.poller import READ_BYTES, Failure, ShardPoller
from lamina.sources.mappings.source import SourceGone, SourceRecord
from lamina.sources.mappings.windows import Window

if TYPE_CHECKING:
    from lamina.sources.mappings.engine import MappingRunner


def lane_of(key: str, lanes: int) -> int:
    return zlib.crc32(key.encode()) % lanes


class LaneState(NamedTuple):
    """A parallel shard's progress past its checkpoint (the durable form is `to_json`)."""

    factor: int
    # per lane: (position, arrival_ms) of the last record of its decided run from the checkpoint
    ahead: list[tuple[str, int] | None]
    windows: list[list[Any] | None]  # per lane: its open tumbling window [start, end, state]

    def to_json(self) -> str:
        return json.dumps({"factor": self.factor, "ahead": self.ahead, "windows": self.windows})

    @classmethod
    def parse(cls, text: str | None) -> LaneState | None:
        """The state saved by a parallel shard; None for nothing or for a factor-1 window (and for
        one that cannot be read: then records are sent again rather than lost)."""
        if not text:
            return None
        try:
            value = json.loads(text)
            if not isinstance(value, dict):
                return None
            ahead = [(str(a[0]), int(a[1])) if a else None for a in value["ahead"]]
            windows = list(value["windows"])
            factor = int(value["factor"])
        except (ValueError, KeyError, TypeError, IndexError):
            return None
        if len(ahead) != factor or len(windows) != factor:
            return None
        return cls(factor, ahead, windows)


def factor_one_window(text: str | None) -> str | None:
    """The window a factor-1 poller resumes from `text` (a parallel shard's state has none)."""
    return None if text is None or text.lstrip().startswith("{") else text


class _Read(NamedTuple):
    position: str
    lane: int  # under the current factor
    arrival_ms: int


class Lane(ShardPoller):
    """One lane: fed by its ParallelShard instead of reading the source."""

    def __init__(self, parent: ParallelShard, index: int, window: list[Any] | None = None) -> None:
        super().__init__(parent.runner, parent.shard, parent.checkpoint)
        self.parent = parent
        self.index = index
        self.window = Window.from_list(window) if window is not None else None
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
        return 0, self.parent.source_finished  # a closed shard read to its end closes the lane's window

    async def _signal(self, version: int, timeout: float | None) -> bool:
        while self.arrivals == version:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout)
            except TimeoutError:
                return False
        return True

    def _window_list(self) -> list[Any] | None:
        return self.window.to_list() if self.window is not None else None

    async def _decided(self, records: list[SourceRecord], failure: Failure | None) -> None:
        await self.parent.decided(records, failure, self.index, self._window_list())

    async def _save(self, finished: bool = False) -> None:
        """The shard's checkpoint is the parent's to save (a lane's own position may be ahead); a
        lane saves when its window closed (a restart must not close it again)."""
        if not finished:
            await self.parent.decided([], None, self.index, self._window_list())


class ParallelShard:
    """A shard read by one reader and processed by `factor` lanes (same surface as ShardPoller)."""

    def __init__(
        self, runner: MappingRunner, shard: str, checkpoint: str, factor: int, saved: str | None = None
    ) -> None:
        self.runner = runner
        self.shard = shard
        self.checkpoint = checkpoint
        self.read_pos = checkpoint
        self.order: deque[_Read] = deque()  # records read and not yet in the decided prefix
        self.done: set[str] = set()
        self.stopping = False
        self.source_finished = False  # a closed shard read to its end, every record decided
        self._poke = asyncio.Event()
        self._save = asyncio.Lock()
        state = LaneState.parse(saved)
        # Records decided before a restart, still to skip: per lane of the saved factor, up to a mark.
        self.skip_factor = state.factor if state is not None else factor
        self.skip: dict[int, tuple[str, int]] = {}
        windows: list[list[Any] | None] = [None] * factor
        if state is not None:
            self.skip = {i: mark for i, mark in enumerate(state.ahead) if mark is not None}
            if state.factor == factor:  # another factor deals keys to other lanes: windows start over
                windows = list(state.windows)
        self.windows = windows  # each lane's window as of its last decision (what is saved)
        self.lanes = [Lane(self, i, windows[i]) for i in range(factor)]

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
            if finished:  # the lanes close their open windows (final invokes), then end
                self.source_finished = True
                for lane in self.lanes:
                    lane.poke()
                finished = all(await asyncio.gather(*tasks))
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
                    skipped = False
                    for record in result.records:
                        lane = lane_of(record.key, factor)
                        self.order.append(_Read(record.position, lane, record.arrival_ms))
                        if self.skip and self._decided_before(record):
                            self.done.add(record.position)
                            skipped = True
                        else:
                            dealt[lane].append(record)
                    for lane, records in zip(self.lanes, dealt, strict=True):
                        if records:
                            lane.push(records)
                    self.read_pos = result.records[-1].position
                    if skipped:
                        await self.decided([], None)
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

    def _decided_before(self, record: SourceRecord) -> bool:
        """Whether a record read after a restart was decided before it (then it is not sent)."""
        lane = lane_of(record.key, self.skip_factor)
        mark = self.skip.get(lane)
        if mark is None:
            return False
        position, arrival_ms = mark
        if record.arrival_ms > arrival_ms:  # past the mark (which may have aged out)
            del self.skip[lane]
            return False
        if record.position == position:
            del self.skip[lane]
        return True

    async def decided(
        self,
        records: list[SourceRecord],
        failure: Failure | None,
        lane: int | None = None,
        window: list[Any] | None = None,
    ) -> None:
        """`records` are decided (by `lane`, whose window is now `window`): move the checkpoint over
        the decided prefix and save it with what is decided beyond it, in one commit."""
        async with self._save:  # saves happen in the order of the decisions
            self.done.update(r.position for r in records)
            if lane is not None:
                self.windows[lane] = window
            while self.order and self.order[0].position in self.done:
                self.checkpoint = self.order.popleft().position
                self.done.discard(self.checkpoint)
            state = self.state().to_json()
            if failure is not None:
                await self.runner.give_up(self.shard, self.checkpoint, failure, state)
            else:
                await self.runner.save_checkpoint(self.shard, self.checkpoint, window=state)
        self._poke.set()

    def state(self) -> LaneState:
        """What is decided past the checkpoint, per lane: the last record of the lane's decided
        run from the checkpoint on (a lane's later decided records count only after an undecided
        one of its own is decided: never claimed before)."""
        factor = len(self.lanes)
        ahead: list[tuple[str, int] | None] = [None] * factor
        open_lanes = set(range(factor))
        done = self.done
        if done:
            for read in self.order:
                if read.lane not in open_lanes:
                    continue
                if read.position in done:
                    ahead[read.lane] = (read.position, read.arrival_ms)
                else:
                    open_lanes.discard(read.lane)
                    if not open_lanes:
                        break
        if self.skip and self.skip_factor == factor:
            # Marks of the saved state not reached yet: every record of their lane read so far was
            # skipped (decided), so the mark still holds.
            for index, mark in self.skip.items():
                if index in open_lanes:
                    ahead[index] = mark
        return LaneState(factor, ahead, list(self.windows))

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
