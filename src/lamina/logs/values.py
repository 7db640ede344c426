"""What filter patterns of every kind share: their parse error, numbers, comparisons, wildcards."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable


class InvalidPattern(Exception):
    """A filter pattern does not parse; `compile_pattern` turns it into InvalidParameterException."""


NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
NUMERIC_OPS: dict[str, Callable[[float, float], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
}


def wildcard(value: str) -> Callable[[str], bool]:
    """Equality with `value`, where `*` stands for any text."""
    if "*" not in value:
        return value.__eq__
    regex = re.compile(".*".join(re.escape(part) for part in value.split("*")), re.DOTALL)
    return lambda text: regex.fullmatch(text) is not None
