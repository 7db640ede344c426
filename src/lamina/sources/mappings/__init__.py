"""Event source mappings: streams → functions, as AWS Lambda's ESMs (docs/mappings.md).

- `source`: the small interface a source implements (shards, positions, record JSON);
  `kinesis`: Lamina's streams behind it;
- `poller`: one shard's read → filter → batch → invoke → checkpoint loop; `parallel`: its N lanes
  (ParallelizationFactor); `windows`: tumbling windows; `outcome`: what an invoke decided;
  `filters`: EventBridge patterns (FilterCriteria);
- `engine`: runners per mapping, pollers per shard (parents first), state transitions;
- `service`: the control plane (validation, Create/Get/Update/Delete/List);
- `platform`: the wiring server.py uses.
"""

from __future__ import annotations

from collections.abc import Callable

from lamina.sources.mappings.engine import MappingEngine
from lamina.sources.mappings.kinesis import KinesisSource, stream_name_of
from lamina.sources.mappings.service import MappingChange, MappingService
from lamina.sources.mappings.source import Source
from lamina.sources.streams import StreamService


def stream_sources(streams: StreamService) -> Callable[[str], Source]:
    """The source factory for Lamina's streams: ValueError for an ARN that is not a stream's."""

    def source(arn: str) -> Source:
        if stream_name_of(arn) is None:
            raise ValueError(f"not a stream ARN: {arn}")
        return KinesisSource(streams, arn)

    return source


__all__ = ["KinesisSource", "MappingChange", "MappingEngine", "MappingService", "stream_sources"]
