"""A parallel shard's progress past its checkpoint (LaneState): what it claims decided, and what a
restarted shard skips. (End to end over SQLite: the `over_sqlite` tests in test_engine.py.)"""

from __future__ import annotations

from collections import deque

from lamina.sources.mappings.parallel import LaneState, ParallelShard, _Read, factor_one_window, lane_of
from lamina.sources.mappings.source import SourceRecord


def keys_in_lanes(factor: int) -> list[str]:
    keys: dict[int, str] = {}
    for n in range(1000):
        keys.setdefault(lane_of(f"key-{n}", factor), f"key-{n}")
    return [keys[i] for i in range(factor)]


def shard(factor: int, saved: str | None = None) -> ParallelShard:
    return ParallelShard(None, "shard-0", "0", factor, saved)  # type: ignore[arg-type]  # no runner needed


def test_the_state_claims_only_each_lane_s_decided_run_from_the_checkpoint():
    s = shard(2)
    s.order = deque([_Read("1", 0, 10), _Read("2", 1, 10), _Read("3", 0, 11), _Read("4", 1, 12), _Read("5", 0, 13)])
    s.done = {"2", "4", "5"}  # lane 0: "1" undecided, so its decided "5" is not claimed
    assert s.state().ahead == [None, ("4", 12)]
    s.done |= {"1"}
    assert s.state().ahead == [("1", 10), ("4", 12)]
    s.windows[1] = [0, 900_000, {"sum": 3}]
    text = s.state().to_json()
    assert LaneState.parse(text) == LaneState(2, [("1", 10), ("4", 12)], [None, [0, 900_000, {"sum": 3}]])


def test_a_restarted_shard_skips_each_lane_up_to_its_mark_and_resumes_the_lane_windows():
    one, two = keys_in_lanes(2)
    saved = LaneState(2, [("5", 100), None], [[0, 900_000, {"sum": 7}], None]).to_json()
    s = shard(2, saved)
    assert s.lanes[0].window is not None and s.lanes[0].window.state == {"sum": 7} and s.lanes[1].window is None
    assert s._decided_before(SourceRecord("3", 90, one, None))
    assert not s._decided_before(SourceRecord("4", 95, two, None))  # another lane: not decided
    assert s._decided_before(SourceRecord("5", 100, one, None))  # the mark itself, then no more
    assert not s._decided_before(SourceRecord("6", 100, one, None)) and s.skip == {}


def test_a_mark_that_aged_out_of_the_stream_skips_nothing_after_it():
    (one,) = keys_in_lanes(1)
    s = shard(1, LaneState(1, [("5", 100)], [None]).to_json())
    assert not s._decided_before(SourceRecord("9", 101, one, None))  # arrived after the mark
    assert s.skip == {}


def test_another_factor_keeps_the_marks_but_starts_the_windows_over():
    saved = LaneState(3, [("5", 100), None, ("6", 100)], [[0, 9, {"n": 1}], None, None]).to_json()
    s = shard(2, saved)
    assert s.skip_factor == 3 and s.skip == {0: ("5", 100), 2: ("6", 100)}
    assert [lane.window for lane in s.lanes] == [None, None]
    assert s.state().ahead == [None, None]  # marks of another factor are not carried over (repeats, not losses)


def test_the_two_durable_forms_are_told_apart():
    parallel = LaneState(2, [None, None], [None, None]).to_json()
    assert LaneState.parse('[0, 9, {"n": 1}]') is None and LaneState.parse(None) is None
    assert factor_one_window(parallel) is None and factor_one_window('[0, 9, {"n": 1}]') == '[0, 9, {"n": 1}]'
    assert factor_one_window(None) is None


def test_a_state_that_cannot_be_read_skips_nothing():
    for text in ("{", '{"factor": 2}', '{"factor": 2, "ahead": [null], "windows": [null, null]}'):
        assert LaneState.parse(text) is None
        s = shard(2, text)
        assert s.skip == {} and [lane.window for lane in s.lanes] == [None, None]
