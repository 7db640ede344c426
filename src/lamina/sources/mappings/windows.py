"""Tumbling windows (TumblingWindowInSeconds): which window a record falls in, the fields an invoke
inside a window carries, and the window's durable form (saved with the shard's checkpoint).
https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-windows.html
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MAX_STATE = 1 << 20  # a window's state beyond this ends the window early (isWindowTerminatedEarly)


def bounds_of(arrival_ms: int, seconds: int) -> tuple[int, int]:
    """The window a record falls in, by arrival time: [start, end) in epoch ms."""
    width = seconds * 1000
    start = arrival_ms - arrival_ms % width
    return start, start + width


@dataclass
class Window:
    """An open window of one shard: its bounds and the state the function last returned."""

    start: int
    end: int
    state: Any = None
    terminated_early: bool = False

    @property
    def bounds(self) -> tuple[int, int]:
        return self.start, self.end

    def keep(self, state: Any) -> bool:
        """Take the state a successful invoke returned; True if it ends the window early (> 1 MB)."""
        self.state = state
        if len(json.dumps(state)) > MAX_STATE:
            self.terminated_early = True
        return self.terminated_early

    def fields(self, shard: str, source_arn: str, final: bool) -> bytes:
        """`,"window":…,"state":…,…`: what an invoke inside the window adds after "Records"."""
        fields = {
            "window": {"start": _iso(self.start), "end": _iso(self.end)},
            "state": self.state if self.state is not None else {},
            "shardId": shard,
            "eventSourceARN": source_arn,
            "isFinalInvokeForWindow": final,
            "isWindowTerminatedEarly": self.terminated_early,
        }
        return b"," + json.dumps(fields, separators=(",", ":")).encode()[1:-1]

    def to_json(self) -> str:
        return json.dumps(self.to_list())

    def to_list(self) -> list[Any]:
        """[start, end, state]: the durable form (also a lane's entry in a parallel shard's state)."""
        return [self.start, self.end, self.state]

    @classmethod
    def from_json(cls, text: str) -> Window:
        return cls.from_list(json.loads(text))

    @classmethod
    def from_list(cls, value: list[Any]) -> Window:
        start, end, state = value
        return cls(start, end, state)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
