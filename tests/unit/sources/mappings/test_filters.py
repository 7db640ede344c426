"""FilterCriteria: EventBridge pattern syntax as Lambda applies it to stream records."""

from __future__ import annotations

import json

import pytest

from lamina.errors import InvalidParameterValue
from lamina.sources.mappings.filters import matches, matches_any, parse_filters


def match(pattern: dict, event: dict) -> bool:
    (parsed,) = parse_filters([json.dumps(pattern)])
    return matches(parsed, event)


@pytest.mark.parametrize(
    ("pattern", "event", "expected"),
    [
        ({"data": {"k": ["v"]}}, {"data": {"k": "v"}}, True),
        ({"data": {"k": ["v"]}}, {"data": {"k": "V"}}, False),  # case-sensitive
        ({"data": {"k": ["v", "w"]}}, {"data": {"k": "w"}}, True),  # OR inside a leaf
        ({"data": {"k": ["v"], "n": [1]}}, {"data": {"k": "v", "n": 2}}, False),  # AND across keys
        ({"data": {"n": [300]}}, {"data": {"n": 300}}, True),
        ({"data": {"n": [300]}}, {"data": {"n": 300.0}}, False),  # numbers match as their text
        ({"data": {"n": ["1"]}}, {"data": {"n": 1}}, False),
        ({"data": {"k": [None]}}, {"data": {"k": None}}, True),
        ({"data": {"k": [None]}}, {"data": {}}, False),
        ({"data": {"k": [""]}}, {"data": {"k": ""}}, True),
        ({"data": {"k": [{"prefix": "us-"}]}}, {"data": {"k": "us-east-1"}}, True),
        ({"data": {"k": [{"prefix": "us-"}]}}, {"data": {"k": "eu-west-1"}}, False),
        ({"data": {"k": [{"suffix": ".png"}]}}, {"data": {"k": "a.png"}}, True),
        ({"data": {"k": [{"equals-ignore-case": "ABC"}]}}, {"data": {"k": "abc"}}, True),
        ({"data": {"k": [{"anything-but": ["a", "b"]}]}}, {"data": {"k": "c"}}, True),
        ({"data": {"k": [{"anything-but": ["a", "b"]}]}}, {"data": {"k": "a"}}, False),
        ({"data": {"k": [{"anything-but": "a"}]}}, {"data": {}}, False),
        ({"data": {"k": [{"anything-but": {"prefix": "x"}}]}}, {"data": {"k": "xy"}}, False),
        ({"data": {"n": [{"numeric": [">", 10, "<=", 20]}]}}, {"data": {"n": 20}}, True),
        ({"data": {"n": [{"numeric": [">", 10, "<=", 20]}]}}, {"data": {"n": 10}}, False),
        ({"data": {"n": [{"numeric": ["=", 5]}]}}, {"data": {"n": "5"}}, False),
        ({"data": {"k": [{"exists": True}]}}, {"data": {"k": 0}}, True),
        ({"data": {"k": [{"exists": False}]}}, {"data": {}}, True),
        ({"data": {"k": [{"exists": False}]}}, {"data": {"k": 1}}, False),
        ({"data": {"tags": ["x"]}}, {"data": {"tags": ["w", "x"]}}, True),  # any element of an array
        ({"partitionKey": ["p1"]}, {"partitionKey": "p1", "data": None}, True),
        ({"data": {"k": ["v"]}}, {"data": None}, False),  # data that is not JSON never matches
    ],
)
def test_patterns(pattern, event, expected):
    assert match(pattern, event) is expected


def test_filters_are_ored_and_no_filters_match_everything():
    parsed = parse_filters(['{"data": {"k": ["a"]}}', '{"data": {"k": ["b"]}}'])
    assert matches_any(parsed, {"data": {"k": "b"}}) and not matches_any(parsed, {"data": {"k": "c"}})
    assert matches_any([], {"anything": 1})


@pytest.mark.parametrize(
    "text",
    ["not json", "[]", "{}", '{"data": "v"}', '{"data": {"k": []}}', '{"k": [{"prefix": 1}]}',
     '{"k": [{"numeric": [">", "x"]}]}', '{"k": [{"nope": 1}]}', '{"k": [{"exists": "yes"}]}'],
)  # fmt: skip
def test_invalid_patterns_are_refused(text):
    with pytest.raises(InvalidParameterValue, match="Invalid filter pattern definition"):
        parse_filters([text])


def test_at_most_five_filters():
    with pytest.raises(InvalidParameterValue, match="exceeds the limit of 5"):
        parse_filters(['{"k": ["v"]}'] * 6)
