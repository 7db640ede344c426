"""Reading events the way GetLogEvents and FilterLogEvents do, over a `LogStore`.

Both read in (timestamp, event id) order and page by that key (`LogStore.log_events_by_time`),
so pages are in time order across streams and every event stored when a listing starts comes
exactly once. The id-paged order the `lamina logs --follow` route uses is commit order instead:
a follower there never misses a late-stamped event, at the price of pages that are only sorted
within themselves (see `LogStore.get_log_events`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lamina.logs.patterns import compile_pattern
from lamina.logs.tokens import Key, decode_key, encode_key, event_token, invalid_token, parse_event_token
from lamina.store.base import LogEvent, LogStore

Row = tuple[int, str, LogEvent]  # (event id, stream name, event)

MAX_RESPONSE_BYTES = 1_048_576  # GetLogEvents / FilterLogEvents: "up to 1 MB (up to 10,000 log events)"
SCAN_BATCH = 2_000
SCAN_BUDGET = 100_000  # events one FilterLogEvents call examines before answering with a nextToken
MAX_QUERY_STREAMS = 200  # more selected streams than this are filtered by name as rows are read


@dataclass(frozen=True)
class EventPage:
    """A GetLogEvents answer: events oldest first, and tokens to read on either way."""

    events: list[Row]
    forward_token: str
    backward_token: str


@dataclass(frozen=True)
class FilteredPage:
    """A FilterLogEvents answer: matching events in time order; `next_token` None at the end."""

    events: list[Row]
    next_token: str | None


def get_log_events(
    store: LogStore,
    group: str,
    stream: str,
    start_ms: int | None,
    end_ms: int | None,
    token: str | None,
    limit: int,
    start_from_head: bool,
) -> EventPage:
    """AWS's GetLogEvents: without a token, the newest `limit` events (or the oldest, from the
    head); `f/` tokens read forward, `b/` backward; past either end the token passed in comes
    back unchanged, so a poller that keeps calling with it sees new events as they arrive."""
    direction, key = parse_event_token(token) if token else ("f" if start_from_head else "b", None)
    forward = direction == "f"
    query = {"streams": [stream], "start_ms": start_ms, "end_ms": end_ms, "limit": limit}
    if forward:
        rows = store.log_events_by_time(group, after=key, **query)  # type: ignore[arg-type]
        rows = _within_bytes(rows)
    else:
        rows = store.log_events_by_time(group, before=key, descending=True, **query)  # type: ignore[arg-type]
        rows = _within_bytes(rows)[::-1]
    if rows:
        first, last = rows[0], rows[-1]
        return EventPage(
            rows, event_token("f", (last[2].timestamp_ms, last[0])), event_token("b", (first[2].timestamp_ms, first[0]))
        )
    if token:  # the end, either way: the same token again; the other way re-reads the edge event
        ts, id_ = key  # type: ignore[misc]
        other = event_token("b", (ts, id_ + 1)) if forward else event_token("f", (ts, max(id_ - 1, 0)))
        return EventPage([], token, other) if forward else EventPage([], other, token)
    # Nothing there at all: tokens from the very beginning and the very end.
    return EventPage([], event_token("f", (0, 0)), event_token("b", (10**19, 10**19)))


def filter_log_events(
    store: LogStore,
    group: str,
    streams: Sequence[str] | None,
    start_ms: int | None,
    end_ms: int | None,
    pattern: str | None,
    token: str | None,
    limit: int,
    scan_budget: int = SCAN_BUDGET,
    descending: bool = False,
) -> FilteredPage:
    """AWS's FilterLogEvents: events of the selected streams (all when `streams` is None) in
    [start_ms, end_ms] (both inclusive, as its reference says), matching `pattern`, oldest first
    (newest first when `descending`: the API's `startFromHead: false`).

    A call examines at most `scan_budget` events, so a rare pattern over a large group answers
    in bounded time, possibly with no events and a nextToken, which AWS does too."""
    match = compile_pattern(pattern)
    wanted: set[str] | None = None
    if streams is not None and len(streams) > MAX_QUERY_STREAMS:  # a wide prefix: filter here instead
        wanted, streams = set(streams), None
    key = _filter_key(token) if token else None
    end = None if end_ms is None else end_ms + 1
    found: list[Row] = []
    size = scanned = 0
    while True:
        bound = {"before": key} if descending else {"after": key}
        rows = store.log_events_by_time(group, streams, start_ms, end, limit=SCAN_BATCH, descending=descending, **bound)
        for row in rows:
            key = (row[2].timestamp_ms, row[0])
            scanned += 1
            if (wanted is not None and row[1] not in wanted) or not match(row[2].message):
                continue
            found.append(row)
            size += len(row[2].message.encode()) + 26
            if len(found) >= limit or size >= MAX_RESPONSE_BYTES:
                return FilteredPage(found, encode_key(list(key)))
        if len(rows) < SCAN_BATCH:
            return FilteredPage(found, None)
        if scanned >= scan_budget:
            return FilteredPage(found, encode_key(list(key)))  # type: ignore[arg-type]


def _filter_key(token: str) -> Key:
    key = decode_key(token)
    if not (isinstance(key, list) and len(key) == 2 and all(isinstance(k, int) for k in key)):
        raise invalid_token()
    return key[0], key[1]


def _within_bytes(rows: list[Row]) -> list[Row]:
    """The leading rows whose messages (plus AWS's 26 bytes each) fit in a 1 MB response."""
    size = 0
    for i, row in enumerate(rows):
        size += len(row[2].message.encode()) + 26
        if size > MAX_RESPONSE_BYTES:
            return rows[: max(i, 1)]
    return rows
