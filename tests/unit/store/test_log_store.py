"""The LogStore contract, against SqliteStore and MemoryStore alike."""

from __future__ import annotations

import time

import pytest

from lamina.store.base import LogEvent

GROUP = "/aws/lambda/fn"


def append(store, stream, *events, group=GROUP):
    store.append_logs_nowait(group, stream, [LogEvent(ts, msg) for ts, msg in events]).result(timeout=10)


def messages(rows):
    return [event.message for _, _, event in rows]


def test_append_creates_group_and_stream_and_stamps_ingestion(store):
    before = int(time.time() * 1000)
    append(store, "s1", (1000, "START"), (1001, "hello"))
    store.append_logs_nowait(GROUP, "s1", [LogEvent(1002, "kept", ingestion_ms=7)]).result(timeout=10)
    rows = store.get_log_events(GROUP, "s1")
    assert [(stream, e.timestamp_ms, e.message) for _, stream, e in rows] == [
        ("s1", 1000, "START"),
        ("s1", 1001, "hello"),
        ("s1", 1002, "kept"),
    ]
    assert all(e.ingestion_ms >= before for _, _, e in rows[:2])
    assert rows[2][2].ingestion_ms == 7
    ids = [i for i, _, _ in rows]
    assert ids == sorted(ids) and len(set(ids)) == 3


def test_empty_append_creates_the_stream(store):
    store.append_logs_nowait(GROUP, "empty", []).result(timeout=10)
    (info,) = store.list_log_streams(GROUP)
    assert (info.name, info.first_event_ms, info.last_event_ms, info.stored_bytes) == ("empty", None, None, 0)
    assert store.get_log_events(GROUP) == []


def test_unknown_group_or_stream_is_empty(store):
    append(store, "s1", (1, "x"))
    assert store.get_log_events("/aws/lambda/other") == []
    assert store.get_log_events(GROUP, "nope") == []
    assert store.list_log_streams("/aws/lambda/other") == []
    assert store.tail_log_events("/aws/lambda/other") == []


def test_filters_by_stream_and_time_window(store):
    append(store, "s1", (100, "a"), (200, "b"), (300, "c"))
    append(store, "s2", (150, "x"), (250, "y"))
    append(store, "s1", (10, "a"), group="/other/group")
    assert messages(store.get_log_events(GROUP)) == ["a", "x", "b", "y", "c"]  # (timestamp, id) order
    assert messages(store.get_log_events(GROUP, "s2")) == ["x", "y"]
    assert messages(store.get_log_events(GROUP, start_ms=150, end_ms=250)) == ["x", "b"]  # end exclusive
    assert messages(store.get_log_events(GROUP, "s1", start_ms=200)) == ["b", "c"]


def test_pages_by_id_exactly_once_even_out_of_timestamp_order(store):
    # Two environments commit batches whose timestamps interleave.
    append(store, "env-a", (100, "a1"), (400, "a2"))
    append(store, "env-b", (200, "b1"), (300, "b2"))
    append(store, "env-a", (500, "a3"))
    append(store, "env-b", (50, "late"))  # committed last, stamped first
    seen, after = [], 0
    while page := store.get_log_events(GROUP, limit=2, after_id=after):
        assert [e.timestamp_ms for _, _, e in page] == sorted(e.timestamp_ms for _, _, e in page)
        seen += messages(page)
        after = max(i for i, _, _ in page)  # the highest id is the cursor
    assert sorted(seen) == sorted(["a1", "a2", "b1", "b2", "a3", "late"]) and len(seen) == 6
    assert seen[:2] == ["a1", "a2"]  # the first two committed, in timestamp order


def test_follow_from_the_last_id(store):
    append(store, "s1", (1, "old"))
    cursor = store.last_log_event_id()
    assert cursor > 0
    append(store, "s1", (2, "new"), group="/aws/lambda/other")
    assert store.get_log_events(GROUP, after_id=cursor) == []
    append(store, "s2", (0, "new-but-early"))
    assert messages(store.get_log_events(GROUP, after_id=cursor)) == ["new-but-early"]
    assert store.last_log_event_id() == cursor + 2


def test_tail_returns_the_last_committed_in_time_order(store):
    append(store, "s1", *[(ts, f"m{ts}") for ts in range(10)])
    append(store, "s2", (3, "late"))
    assert messages(store.tail_log_events(GROUP, limit=3)) == ["late", "m8", "m9"]
    assert len(store.tail_log_events(GROUP, limit=100)) == 11
    assert store.tail_log_events(GROUP, limit=0) == []


def test_list_streams_most_recent_event_first(store):
    append(store, "old", (100, "x"))
    append(store, "new", (300, "y"))
    store.append_logs_nowait(GROUP, "quiet", []).result(timeout=10)
    append(store, "mid", (200, "z"), (150, "zz"))
    append(store, "also-old", (100, "ü"))  # ties by name
    infos = store.list_log_streams(GROUP)
    assert [i.name for i in infos] == ["new", "mid", "also-old", "old", "quiet"]
    mid = infos[1]
    assert (mid.group, mid.first_event_ms, mid.last_event_ms, mid.stored_bytes) == (GROUP, 150, 200, 3)
    assert infos[2].stored_bytes == 2  # bytes of UTF-8, not characters
    assert all(i.created_ms > 0 for i in infos)


def test_delete_log_group_keeps_ids_unique(store):
    append(store, "s1", (1, "a"), (2, "b"))
    last = store.last_log_event_id()
    assert store.delete_log_group(GROUP) is True
    assert store.delete_log_group(GROUP) is False
    assert store.get_log_events(GROUP) == [] and store.list_log_streams(GROUP) == []
    append(store, "s1", (3, "c"))
    ((new_id, _, _),) = store.get_log_events(GROUP)
    assert new_id > last  # a cursor from before the delete never matches a new event


def test_stream_stats_after_many_appends_in_flight(store):
    futures = [
        store.append_logs_nowait(GROUP, f"s{i % 3}", [LogEvent(1000 + i, "é" * (i % 4)), LogEvent(999 - i, "x")])
        for i in range(90)
    ]
    futures.append(store.append_logs_nowait(GROUP, "quiet", []))
    for f in futures:
        f.result(timeout=10)
    stats = {i.name: (i.first_event_ms, i.last_event_ms, i.stored_bytes) for i in store.list_log_streams(GROUP)}
    sizes = [sum(2 * (i % 4) + 1 for i in range(k, 90, 3)) for k in range(3)]
    assert stats == {
        "s0": (999 - 87, 1000 + 87, sizes[0]),
        "s1": (999 - 88, 1000 + 88, sizes[1]),
        "s2": (999 - 89, 1000 + 89, sizes[2]),
        "quiet": (None, None, 0),
    }
    assert len(store.get_log_events(GROUP)) == 180
    ids = [i for i, _, _ in store.get_log_events(GROUP, "s1", limit=1000)]
    assert len(set(ids)) == 60


# --- the Logs API's explicit operations ----------------------------------------------------------


def test_create_group_and_stream_explicitly(store):
    from lamina.errors import LogResourceExists, LogResourceNotFound

    store.create_log_group("/app/one")
    with pytest.raises(LogResourceExists):
        store.create_log_group("/app/one")
    with pytest.raises(LogResourceNotFound, match=r"^The specified log group does not exist\.$"):
        store.create_log_stream("/app/none", "s")
    store.create_log_stream("/app/one", "s")
    with pytest.raises(LogResourceExists):
        store.create_log_stream("/app/one", "s")
    info = store.get_log_group("/app/one")
    assert (info.name, info.retention_days, info.stored_bytes) == ("/app/one", None, 0) and info.created_ms > 0
    assert store.get_log_group("/app/none") is None
    (stream,) = store.list_log_streams("/app/one")
    assert (stream.name, stream.first_event_ms, stream.last_ingestion_ms) == ("s", None, None)
    append(store, "s", (5, "hello"), group="/app/one")  # appends reuse what was created
    (stream,) = store.list_log_streams("/app/one")
    assert stream.stored_bytes == 5 and stream.last_ingestion_ms > 0
    assert store.get_log_stream("/app/one", "s") == stream
    assert store.get_log_stream("/app/one", "t") is None and store.get_log_stream("/app/none", "s") is None


def test_delete_stream_takes_its_events_and_bytes(store):
    from lamina.errors import LogResourceNotFound

    append(store, "a", (1, "aaaa"))
    append(store, "b", (2, "bb"))
    store.delete_log_stream(GROUP, "a")
    assert messages(store.get_log_events(GROUP)) == ["bb"]
    assert [s.name for s in store.list_log_streams(GROUP)] == ["b"]
    assert store.get_log_group(GROUP).stored_bytes == 2
    with pytest.raises(LogResourceNotFound, match=r"^The specified log stream does not exist\.$"):
        store.delete_log_stream(GROUP, "a")
    with pytest.raises(LogResourceNotFound, match=r"^The specified log group does not exist\.$"):
        store.delete_log_stream("/nope", "a")


def test_describe_groups_by_prefix_pattern_and_pages(store):
    for name in ["/aws/lambda/b", "/aws/lambda/a", "/app/Orders", "/app/users", "/aws/lambda/c"]:
        store.create_log_group(name)
    assert [g.name for g in store.describe_log_groups()] == sorted(
        ["/aws/lambda/b", "/aws/lambda/a", "/app/Orders", "/app/users", "/aws/lambda/c"]
    )
    assert [g.name for g in store.describe_log_groups(prefix="/aws/lambda/")] == [
        "/aws/lambda/a",
        "/aws/lambda/b",
        "/aws/lambda/c",
    ]
    assert [g.name for g in store.describe_log_groups(contains="Order")] == ["/app/Orders"]
    assert store.describe_log_groups(contains="order") == []  # case-sensitive
    first = store.describe_log_groups(prefix="/aws/", limit=2)
    rest = store.describe_log_groups(prefix="/aws/", after=first[-1].name, limit=2)
    assert [g.name for g in first + rest] == ["/aws/lambda/a", "/aws/lambda/b", "/aws/lambda/c"]
    assert store.describe_log_groups(prefix="/aws/", after="/aws/lambda/c") == []


def test_retention_set_listed_and_removed(store):
    from lamina.errors import LogResourceNotFound

    store.create_log_group("/keep")
    store.create_log_group("/expire")
    store.set_log_retention("/expire", 7)
    assert [(g.name, g.retention_days) for g in store.groups_with_retention()] == [("/expire", 7)]
    store.set_log_retention("/expire", None)
    assert store.groups_with_retention() == []
    with pytest.raises(LogResourceNotFound):
        store.set_log_retention("/nope", 1)


def test_events_by_time_across_selected_streams_with_key_paging(store):
    append(store, "a", (100, "a1"), (300, "a2"), (300, "a3"))
    append(store, "b", (200, "b1"), (300, "b2"))
    append(store, "c", (150, "c1"))
    append(store, "a", (50, "late"))  # committed last, stamped first: time order puts it first
    rows = store.log_events_by_time(GROUP)
    assert messages(rows) == ["late", "a1", "c1", "b1", "a2", "a3", "b2"]
    assert messages(store.log_events_by_time(GROUP, streams=["a", "b"], start_ms=100, end_ms=300)) == ["a1", "b1"]
    assert messages(store.log_events_by_time(GROUP, streams=["b", "nope"])) == ["b1", "b2"]
    assert store.log_events_by_time(GROUP, streams=[]) == [] and store.log_events_by_time("/none") == []
    # Forward pages of 2 by the (timestamp, id) key: every event once, even within one timestamp.
    seen, key = [], None
    while page := store.log_events_by_time(GROUP, after=key, limit=2):
        seen += messages(page)
        key = (page[-1][2].timestamp_ms, page[-1][0])
    assert seen == messages(rows)
    # Backward pages, newest first.
    seen, key = [], None
    while page := store.log_events_by_time(GROUP, before=key, limit=2, descending=True):
        seen += messages(page)
        key = (page[-1][2].timestamp_ms, page[-1][0])
    assert seen == messages(rows)[::-1]


def test_delete_events_before_in_batches_keeps_bytes_right(store):
    append(store, "a", *[(ts, "xx") for ts in range(10)])  # 2 bytes each
    append(store, "b", (3, "yyy"), (20, "zzzz"))
    assert store.get_log_group(GROUP).stored_bytes == 27
    assert store.delete_log_events_before(GROUP, 5, batch=4) == 4  # the oldest four
    assert store.delete_log_events_before(GROUP, 5, batch=4) == 2
    assert store.delete_log_events_before(GROUP, 5, batch=4) == 0
    assert messages(store.get_log_events(GROUP)) == ["xx"] * 5 + ["zzzz"]
    sizes = {s.name: s.stored_bytes for s in store.list_log_streams(GROUP)}
    assert sizes == {"a": 10, "b": 4}
    assert store.get_log_group(GROUP).stored_bytes == 14
    assert store.delete_log_events_before("/none", 5) == 0
