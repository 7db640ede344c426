"""LogsService over both stores: token paging both ways, FilterLogEvents paging, PutLogEvents'
rules, DescribeLogStreams' orders, retention on a fake clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lamina.errors import LogResourceExists, LogResourceNotFound, LogsInvalidParameter
from lamina.logs.service import DAY_MS, LogsService
from lamina.store.memory import MemoryStore
from lamina.store.sqlite import SqliteStore

NOW_MS = 1_800_000_000_000
G = "/app/orders"


class Clock:
    def __init__(self) -> None:
        self.ms = NOW_MS

    def __call__(self) -> float:
        return self.ms / 1000


@pytest.fixture(params=["sqlite", "memory"])
def store(request, tmp_path) -> Iterator:
    s = SqliteStore.open(tmp_path / "lamina.db") if request.param == "sqlite" else MemoryStore()
    yield s
    s.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def logs(store, clock) -> LogsService:
    return LogsService(store, "us-east-1", "123456789012", clock=clock)


def put(logs: LogsService, stream: str, *events: tuple[int, str], group: str = G):
    return logs.put_log_events(group, stream, list(events))


def msgs(page) -> list[str]:
    return [e.message for _, _, e in page.events]


def setup_stream(logs: LogsService, stream: str = "s", group: str = G) -> None:
    if logs.store.get_log_group(group) is None:
        logs.create_log_group(group)
    logs.create_log_stream(group, stream)


def test_get_log_events_pages_forward_and_backward_and_repeats_the_end_token(logs):
    setup_stream(logs)
    put(logs, "s", *[(NOW_MS + i, f"m{i}") for i in range(7)])
    newest = logs.get_log_events(G, "s", limit=3)  # no token, not from the head: the newest
    assert msgs(newest) == ["m4", "m5", "m6"]
    older = logs.get_log_events(G, "s", token=newest.backward_token, limit=3)
    assert msgs(older) == ["m1", "m2", "m3"]
    oldest = logs.get_log_events(G, "s", token=older.backward_token, limit=3)
    assert msgs(oldest) == ["m0"]
    start = logs.get_log_events(G, "s", token=oldest.backward_token, limit=3)
    assert msgs(start) == [] and start.backward_token == oldest.backward_token  # the same token at the end
    again = logs.get_log_events(G, "s", token=start.forward_token, limit=3)
    assert msgs(again) == ["m0", "m1", "m2"]  # the other way from the end
    forward = logs.get_log_events(G, "s", token=older.forward_token, limit=10)
    assert msgs(forward) == ["m4", "m5", "m6"]
    end = logs.get_log_events(G, "s", token=forward.forward_token)
    assert msgs(end) == [] and end.forward_token == forward.forward_token
    put(logs, "s", (NOW_MS + 100, "new"))  # a poller holding the end token sees what comes next
    assert msgs(logs.get_log_events(G, "s", token=end.forward_token)) == ["new"]
    head = logs.get_log_events(G, "s", start_from_head=True, limit=2, start_ms=NOW_MS + 2, end_ms=NOW_MS + 5)
    assert msgs(head) == ["m2", "m3"]
    assert head.forward_token.startswith("f/") and head.backward_token.startswith("b/")


def test_get_log_events_errors(logs):
    setup_stream(logs)
    with pytest.raises(LogResourceNotFound, match=r"^The specified log stream does not exist\.$"):
        logs.get_log_events(G, "nope")
    with pytest.raises(LogResourceNotFound, match=r"^The specified log group does not exist\.$"):
        logs.get_log_events("/nope", "s")
    with pytest.raises(LogsInvalidParameter, match="nextToken"):
        logs.get_log_events(G, "s", token="x/123")


def test_filter_interleaves_streams_in_time_order_and_pages_each_event_once(logs):
    logs.create_log_group(G)
    for n in range(5):
        logs.create_log_stream(G, f"s{n}")
        put(logs, f"s{n}", *[(NOW_MS + t * 5 + n, f"s{n}-{t}") for t in range(6)])
    everything = logs.filter_log_events(G)
    stamps = [e.timestamp_ms for _, _, e in everything.events]
    assert len(stamps) == 30 and stamps == sorted(stamps) and everything.next_token is None
    seen, token = [], None
    while True:
        page = logs.filter_log_events(G, token=token, limit=4)
        seen += msgs(page)
        if (token := page.next_token) is None:
            break
    assert seen == msgs(everything)
    only = logs.filter_log_events(G, stream_names=["s1", "s3"], pattern='?"-2" ?"-4"')
    assert msgs(only) == ["s1-2", "s3-2", "s1-4", "s3-4"]
    assert msgs(logs.filter_log_events(G, stream_prefix="s4", start_ms=NOW_MS + 9, end_ms=NOW_MS + 14)) == [
        "s4-1",
        "s4-2",  # endTime is inclusive for FilterLogEvents
    ]
    assert logs.filter_log_events(G, stream_prefix="zzz").events == []
    with pytest.raises(LogsInvalidParameter):
        logs.filter_log_events(G, stream_names=["s1"], stream_prefix="s")


def test_filter_answers_a_rare_pattern_within_its_scan_budget(logs, monkeypatch):
    from lamina.logs import reader

    setup_stream(logs)
    put(logs, "s", *[(NOW_MS + i, "needle" if i == 4500 else "hay") for i in range(5000)])
    monkeypatch.setattr(reader, "SCAN_BATCH", 1000)
    page = reader.filter_log_events(logs.store, G, None, None, None, "needle", None, 100, scan_budget=2000)
    assert page.events == [] and page.next_token is not None  # nothing yet, and where to go on
    found = []
    while page.next_token:
        page = reader.filter_log_events(logs.store, G, None, None, None, "needle", page.next_token, 100, 2000)
        found += msgs(page)
    assert found == ["needle"]


def test_put_log_events_rules(logs, clock):
    setup_stream(logs)
    with pytest.raises(LogsInvalidParameter, match="chronological order"):
        put(logs, "s", (NOW_MS, "b"), (NOW_MS - 1, "a"))
    with pytest.raises(LogsInvalidParameter, match="span more than 24 hours"):
        put(logs, "s", (NOW_MS - DAY_MS - 1, "a"), (NOW_MS, "b"))
    with pytest.raises(LogsInvalidParameter, match="Upload too large"):
        put(logs, "s", *[(NOW_MS, "x" * (131_072 - 26))] * 8, (NOW_MS, "y"))
    result = put(logs, "s", *[(NOW_MS, "x" * (131_072 - 26))] * 8)  # 1,048,576 bytes with the overhead
    assert result.too_old_end is None and result.too_new_start is None and result.next_sequence_token
    with pytest.raises(LogResourceNotFound, match="log stream does not exist"):
        put(logs, "nope", (NOW_MS, "x"))
    result = put(
        logs,
        "s",
        (NOW_MS - 15 * DAY_MS, "too old"),
        (NOW_MS - 15 * DAY_MS + 1, "too old too"),
    )
    assert result.too_old_end == 1
    result = put(logs, "s", (NOW_MS, "fine"), (NOW_MS + 3 * 3600 * 1000, "too new"))
    assert (result.too_new_start, result.too_old_end) == (1, None)
    logs.put_retention_policy(G, 1)
    result = put(logs, "s", (NOW_MS - 2 * DAY_MS, "expired"), (NOW_MS - DAY_MS - 1, "expired too"))
    assert (result.expired_end, result.too_old_end) == (1, None)
    put(logs, "s", (NOW_MS - 1, "kept"))
    kept = [e.message for _, _, e in logs.store.get_log_events(G, "s") if not e.message.startswith("x")]
    assert kept == ["kept", "fine"]  # time order


def test_describe_log_streams_orders_and_pages(logs):
    logs.create_log_group(G)
    for name, ts in [("b", 300), ("a", 100), ("c", 200), ("d", None)]:
        logs.create_log_stream(G, name)
        if ts is not None:
            put(logs, name, (NOW_MS + ts, name))
    names = lambda page: [s.name for s in page[0]]  # noqa: E731
    assert names(logs.describe_log_streams(G)) == ["a", "b", "c", "d"]
    assert names(logs.describe_log_streams(G, descending=True)) == ["d", "c", "b", "a"]
    assert names(logs.describe_log_streams(G, order_by="LastEventTime", descending=True)) == ["b", "c", "a", "d"]
    assert names(logs.describe_log_streams(G, order_by="LastEventTime")) == ["d", "a", "c", "b"]
    for order_by in ("LogStreamName", "LastEventTime"):
        seen, token = [], None
        while True:
            page, token = logs.describe_log_streams(G, order_by=order_by, descending=True, token=token, limit=3)
            seen += [s.name for s in page]
            if token is None:
                break
        assert sorted(seen) == ["a", "b", "c", "d"] and len(seen) == 4
    with pytest.raises(LogsInvalidParameter, match=r"^Cannot order by LastEventTime with a logStreamNamePrefix\.$"):
        logs.describe_log_streams(G, prefix="a", order_by="LastEventTime")
    with pytest.raises(LogResourceNotFound):
        logs.describe_log_streams("/nope")


def test_groups_create_describe_delete(logs):
    logs.create_log_group(G)
    with pytest.raises(LogResourceExists):
        logs.create_log_group(G)
    with pytest.raises(LogsInvalidParameter):
        logs.create_log_group("bad name!")
    for n in range(5):
        logs.create_log_group(f"/p/{n}")
    page, token = logs.describe_log_groups(prefix="/p/", limit=3)
    rest, last = logs.describe_log_groups(prefix="/p/", token=token, limit=3)
    assert [g.name for g in page + rest] == [f"/p/{n}" for n in range(5)] and last is None
    with pytest.raises(LogsInvalidParameter):
        logs.describe_log_groups(prefix="/p", pattern="p")
    assert [g.name for g in logs.describe_log_groups(names=["/p/1", "/nope", G])[0]] == ["/app/orders", "/p/1"]
    logs.delete_log_group("/p/0")
    with pytest.raises(LogResourceNotFound):
        logs.delete_log_group("/p/0")
    with pytest.raises(LogsInvalidParameter, match="Member must satisfy enum value set"):
        logs.put_retention_policy(G, 2)


def test_retention_sweep_deletes_only_expired_events_on_a_fake_clock(logs, clock):
    setup_stream(logs)
    setup_stream(logs, "s", group="/keep")
    put(logs, "s", *[(NOW_MS - DAY_MS + i, f"old{i}") for i in range(3)])
    put(logs, "s", (NOW_MS, "recent"))
    put(logs, "s", (NOW_MS - DAY_MS, "kept forever"), group="/keep")
    assert logs.sweep_expired() == 0  # no policy yet
    logs.put_retention_policy(G, 1)
    assert logs.sweep_expired() == 0  # nothing is older than a day yet
    clock.ms += 2  # now the first two are
    assert logs.sweep_expired(batch=1) == 2
    assert [e.message for _, _, e in logs.store.get_log_events(G)] == ["old2", "recent"]
    assert logs.group(G).stored_bytes == len("old2") + len("recent")
    clock.ms += DAY_MS
    assert logs.sweep_expired() == 2 and logs.store.get_log_events(G) == []
    assert logs.group(G).stored_bytes == 0
    logs.delete_retention_policy(G)
    assert logs.group(G).retention_days is None
    assert [e.message for _, _, e in logs.store.get_log_events("/keep")] == ["kept forever"]


def test_filter_by_a_prefix_selecting_many_streams(logs, monkeypatch):
    from lamina.logs import reader

    monkeypatch.setattr(reader, "MAX_QUERY_STREAMS", 3)
    logs.create_log_group(G)
    for name in ["a1", "a2", "a3", "a4", "b1"]:
        logs.create_log_stream(G, name)
        put(logs, name, (NOW_MS + int(name[1]), name))
    assert msgs(logs.filter_log_events(G, stream_prefix="a")) == ["a1", "a2", "a3", "a4"]
    assert msgs(logs.filter_log_events(G, stream_names=["a1", "b1"])) == ["a1", "b1"]


def test_filter_newest_first_pages_backward(logs):
    setup_stream(logs)
    put(logs, "s", *[(NOW_MS + i, f"m{i}") for i in range(5)])
    seen, token = [], None
    while True:
        page = logs.filter_log_events(G, token=token, limit=2, descending=True)
        seen += msgs(page)
        if (token := page.next_token) is None:
            break
    assert seen == ["m4", "m3", "m2", "m1", "m0"]


def test_bad_tokens_are_invalid_parameters(logs):
    setup_stream(logs)
    for call in (
        lambda: logs.filter_log_events(G, token="bm90IGpzb24"),
        lambda: logs.filter_log_events(G, token="WzEsICJ4Il0="),  # [1, "x"]
        lambda: logs.describe_log_streams(G, token="WyJhIl0=", order_by="LastEventTime"),  # ["a"]
        lambda: logs.describe_log_groups(token="WzFd"),  # [1]
    ):
        with pytest.raises(LogsInvalidParameter, match="nextToken"):
            call()
