"""Hash-key ranges and sequence numbers, checked against independently written arithmetic."""

from __future__ import annotations

import hashlib
import itertools

import pytest

from lamina.sources.streams.model import (
    MAX_COUNTER,
    SEQUENCE_BASE,
    PutResult,
    even_ranges,
    hash_key,
    parse_sequence_number,
    put_results,
    sequence_number,
    shard_index,
    shard_name,
)


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7, 10, 500])
def test_even_ranges_cover_the_key_space_without_gaps(count):
    ranges = even_ranges(count)
    assert len(ranges) == count
    assert ranges[0][0] == 0
    assert ranges[-1][1] == 2**128 - 1
    for (_, end), (start, _) in itertools.pairwise(ranges):
        assert start == end + 1
    width = 2**128 // count
    assert all(hi - lo + 1 == width for lo, hi in ranges[:-1])


def test_ranges_match_kinesis_for_two_and_three_shards():
    # What `aws kinesis create-stream --shard-count 2|3` answers on AWS.
    assert even_ranges(2) == [
        (0, 170141183460469231731687303715884105727),
        (170141183460469231731687303715884105728, 340282366920938463463374607431768211455),
    ]
    assert even_ranges(3)[1] == (113427455640312821154458202477256070485, 226854911280625642308916404954512140969)


def test_hash_key_is_md5_as_a_big_endian_128_bit_integer():
    assert hash_key("a") == int(hashlib.md5(b"a").hexdigest(), 16)
    assert hash_key("ü") == int(hashlib.md5("ü".encode()).hexdigest(), 16)


def test_sequence_numbers_are_56_digits_and_compare_as_strings_and_numbers():
    numbers = [sequence_number(c) for c in (1, 9, 10, 123456789, 10**18)]
    assert all(len(n) == 56 and n.isdigit() for n in numbers)
    assert numbers == sorted(numbers) == sorted(numbers, key=int)
    assert [parse_sequence_number(n) for n in numbers] == [1, 9, 10, 123456789, 10**18]
    for counter in (0, 1, 10**18, MAX_COUNTER):  # the text is SEQUENCE_BASE + counter, exactly
        assert sequence_number(counter) == str(SEQUENCE_BASE + counter)
    assert parse_sequence_number("12") is None
    assert parse_sequence_number("abc") is None


def test_put_results_are_the_constructor_built_results():
    shards, counters = ["shardId-000000000000", "shardId-000000000003"] * 3, [1, 2, 9, 10, 10**18, MAX_COUNTER]
    built = put_results(shards, counters)
    expected = [PutResult(s, sequence_number(c)) for s, c in zip(shards, counters, strict=True)]
    assert built == expected
    assert [repr(r) for r in built] == [repr(r) for r in expected]
    assert [hash(r) for r in built] == [hash(r) for r in expected]
    assert all(type(r) is PutResult and r.error_code is None and r.error_message is None for r in built)
    with pytest.raises(AttributeError):  # immutable, as PutResult(...) is
        built[0].sequence_number = "1"  # type: ignore[misc]
    with pytest.raises(ValueError):
        put_results(shards, counters[:-1])
    assert put_results([], []) == []


def test_shard_names():
    assert shard_name(7) == "shardId-000000000007"
    assert shard_index("shardId-000000000007") == 7
    assert shard_index("7") == 7
    assert shard_index("shard-7") is None
