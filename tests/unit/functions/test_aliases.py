"""Alias rules: names, routing validation, and the weighted choice."""

from __future__ import annotations

import random
from types import MappingProxyType

import pytest

from lamina.errors import InvalidParameterValue
from lamina.functions.aliases import check_alias_name, check_routing, is_alias, pick_version
from lamina.model.function import AliasRecord


def test_qualifier_kinds():
    assert is_alias("live") and is_alias("v1") and is_alias("1a")
    assert not is_alias("12") and not is_alias("$LATEST") and not is_alias(None)


@pytest.mark.parametrize("name", ["", "123", "a b", "x" * 129, "$LATEST"])
def test_bad_alias_names(name):
    with pytest.raises(InvalidParameterValue):
        check_alias_name(name)


def test_good_alias_names():
    assert check_alias_name("live-2_b") == "live-2_b" and check_alias_name("1a") == "1a"


@pytest.mark.parametrize(
    ("primary", "weights"),
    [("$LATEST", {"1": 0.5}), ("1", {"1": 0.5}), ("1", {"2": 0.1, "3": 0.1}), ("1", {"x": 0.5}), ("1", {"2": 1.01})],
)
def test_bad_routing(primary, weights):
    with pytest.raises(InvalidParameterValue):
        check_routing(primary, weights)


def test_routing_normalises_and_allows_empty():
    assert check_routing("1", {}) == {}
    assert check_routing("$LATEST", {}) == {}
    assert check_routing("1", {"2": 1}) == {"2": 1.0}


def test_weighted_choice_follows_the_weight():
    rng = random.Random(7)
    alias = AliasRecord("f", "canary", "1", routing=MappingProxyType({"2": 0.1}))
    picks = [pick_version(alias, rng) for _ in range(20_000)]
    share = picks.count("2") / len(picks)
    assert 0.09 < share < 0.11  # sd 0.002: a 5-sd band
    assert set(picks) == {"1", "2"}
    assert {pick_version(AliasRecord("f", "a", "3"), rng) for _ in range(100)} == {"3"}
    assert {
        pick_version(AliasRecord("f", "a", "1", routing=MappingProxyType({"2": 1.0})), rng) for _ in range(100)
    } == {"2"}
