"""FilterCriteria: EventBridge event patterns, as Lambda applies them to stream records.

A pattern is a JSON object whose leaves are arrays of matchers; an object must match on every key
it names (AND), a leaf array matches when any of its matchers does (OR), and a record passes a
mapping's FilterCriteria when any of its filters matches (OR, up to 5 filters). Matchers: a literal
(string, number, true/false, null; exact and case-sensitive, numbers compared by their JSON text
so 300 ≠ 300.0), `{"prefix": s}`, `{"suffix": s}`, `{"equals-ignore-case": s}`,
`{"anything-but": literal | [literals] | {"prefix": s}}`, `{"numeric": [op, n (, op, n)]}` and
`{"exists": bool}`. Against an array value, a leaf matches if any element does.
https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-content-based-filtering.html
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Sequence
from typing import Any

from lamina.errors import InvalidParameterValue

_MISSING = object()
_OPS: dict[str, Callable[[float, float], bool]] = {
    "=": operator.eq, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}  # fmt: skip


class FilterError(ValueError):
    """A pattern that is not valid EventBridge syntax."""


def parse_filters(patterns: Sequence[str], limit: int = 5) -> list[dict[str, Any]]:
    """Parse and check FilterCriteria patterns; InvalidParameterValue as Lambda answers."""
    if len(patterns) > limit:
        raise InvalidParameterValue(f"The number of filters exceeds the limit of {limit}.")
    parsed = []
    for text in patterns:
        try:
            pattern = json.loads(text)
            _check(pattern)
        except (ValueError, FilterError) as exc:
            raise InvalidParameterValue(f"Invalid filter pattern definition. {exc}".strip()) from None
        parsed.append(pattern)
    return parsed


def _check(pattern: Any) -> None:
    if not isinstance(pattern, dict) or not pattern:
        raise FilterError("A pattern must be a non-empty JSON object.")
    for key, value in pattern.items():
        if isinstance(value, dict):
            _check(value)
        elif isinstance(value, list):
            if not value:
                raise FilterError(f"Empty arrays are not allowed (at {key!r}).")
            for matcher in value:
                _check_matcher(matcher)
        else:
            raise FilterError(f"Match value must be a JSON array or object (at {key!r}).")


def _check_matcher(m: Any) -> None:
    if m is None or isinstance(m, str | int | float | bool):
        return
    if not isinstance(m, dict) or len(m) != 1:
        raise FilterError(f"Unrecognized match: {json.dumps(m)}")
    ((kind, arg),) = m.items()
    if kind in ("prefix", "suffix", "equals-ignore-case"):
        if not isinstance(arg, str):
            raise FilterError(f"{kind} match pattern must be a string.")
    elif kind == "exists":
        if not isinstance(arg, bool):
            raise FilterError("exists match pattern must be either true or false.")
    elif kind == "anything-but":
        if isinstance(arg, dict):
            if set(arg) != {"prefix"} or not isinstance(arg["prefix"], str):
                raise FilterError("Unsupported anything-but pattern.")
        elif isinstance(arg, list):
            if not arg or not all(isinstance(a, str | int | float) and not isinstance(a, bool) for a in arg):
                raise FilterError("Inside anything-but list, only strings and numbers are allowed.")
        elif not isinstance(arg, str | int | float) or isinstance(arg, bool):
            raise FilterError("Unsupported anything-but pattern.")
    elif kind == "numeric":
        if not isinstance(arg, list) or len(arg) not in (2, 4):
            raise FilterError("Value of numeric must be an array of 2 or 4 elements.")
        for op, n in zip(arg[::2], arg[1::2], strict=True):
            if op not in _OPS or isinstance(n, bool) or not isinstance(n, int | float):
                raise FilterError(f"Unrecognized numeric range operator or value: {op!r} {n!r}")
        if len(arg) == 4 and (arg[0] not in (">", ">=") or arg[2] not in ("<", "<=")):
            raise FilterError("Bad numeric range: use a lower bound then an upper bound.")
    else:
        raise FilterError(f"Unrecognized match type {kind}")


def matches_any(patterns: Sequence[dict[str, Any]], event: dict[str, Any]) -> bool:
    """True when there are no patterns or any matches."""
    return not patterns or any(matches(p, event) for p in patterns)


def matches(pattern: dict[str, Any], event: Any) -> bool:
    for key, expected in pattern.items():
        value = event.get(key, _MISSING) if isinstance(event, dict) else _MISSING
        if isinstance(expected, dict):
            if not matches(expected, value if isinstance(value, dict) else {}):
                return False
        elif not _leaf(expected, value):
            return False
    return True


def _leaf(matchers: list[Any], value: Any) -> bool:
    if value is _MISSING:
        return any(isinstance(m, dict) and m.get("exists") is False for m in matchers)
    values = value if isinstance(value, list) else [value]
    return any(_one(m, v) for m in matchers for v in values) if values else False


def _one(m: Any, v: Any) -> bool:
    if not isinstance(m, dict):
        return _same(m, v)
    ((kind, arg),) = m.items()
    if kind == "exists":
        return arg is True
    if kind == "prefix":
        return isinstance(v, str) and v.startswith(arg)
    if kind == "suffix":
        return isinstance(v, str) and v.endswith(arg)
    if kind == "equals-ignore-case":
        return isinstance(v, str) and v.lower() == arg.lower()
    if kind == "anything-but":
        if isinstance(arg, dict):
            return isinstance(v, str) and not v.startswith(arg["prefix"])
        excluded = arg if isinstance(arg, list) else [arg]
        return v is not None and not any(_same(x, v) for x in excluded)
    if kind == "numeric":
        if isinstance(v, bool) or not isinstance(v, int | float):
            return False
        return all(_OPS[op](v, n) for op, n in zip(arg[::2], arg[1::2], strict=True))
    return False


def _same(expected: Any, v: Any) -> bool:
    """Exact match, by JSON text (so 300 ≠ 300.0, "1" ≠ 1, true ≠ 1)."""
    if isinstance(v, dict | list):
        return False
    return json.dumps(expected) == json.dumps(v)
