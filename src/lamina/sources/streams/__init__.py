"""Streams: durable, sharded, ordered per shard; the Kinesis Data Streams semantics without HTTP.

- `model`: typed records, hash-key ranges and sequence numbers;
- `base`: the `StreamStore` contract; `sqlite`: the embedded store; `memory`: its in-memory twin;
- `service`: `StreamService`, what the Kinesis API and the mapping engine call;
- `resharding`: UpdateShardCount's plan of closed parents and open children;
- `iterators`: opaque expiring shard iterators; `notify`: waking consumers when records arrive.
"""

from lamina.sources.streams.base import Appended, NewStream, ShardClosed, StreamStore
from lamina.sources.streams.memory import MemoryStreamStore
from lamina.sources.streams.model import Entry, IteratorType, PutResult, Shard, Stream, StreamMode, StreamRecord
from lamina.sources.streams.notify import RecordSignal
from lamina.sources.streams.service import RecordsPage, StreamService
from lamina.sources.streams.sqlite import SqliteStreamStore

__all__ = [
    "Appended",
    "Entry",
    "IteratorType",
    "MemoryStreamStore",
    "NewStream",
    "PutResult",
    "RecordSignal",
    "RecordsPage",
    "Shard",
    "ShardClosed",
    "SqliteStreamStore",
    "Stream",
    "StreamMode",
    "StreamRecord",
    "StreamService",
    "StreamStore",
]
