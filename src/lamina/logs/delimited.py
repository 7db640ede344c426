"""Space-delimited filter patterns: `[ip, user, ..., status = 4*, bytes > 1000]`.

From AWS's filter pattern syntax ("Using filter patterns to match terms in space-delimited log
events"): the event splits into fields at blanks, where text in double quotes or in square
brackets is one field (`[10/Oct/2000:13:55:36 -0700]`, `"GET / HTTP/1.1"`; the delimiters are not
part of the value); the pattern names the fields in order. A bare name matches any field; `...`
matches any number of fields; without `...` the counts must agree. A field may carry conditions
on its own name: `=` / `!=` with a string (`*` is a wildcard) or a number, `<` `>` `<=` `>=`
with a number, joined by `&&` / `||` (`status = 404 || status = 410`; `&&` binds tighter).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from lamina.logs.values import NUMBER, NUMERIC_OPS, InvalidPattern, wildcard

Matcher = Callable[[str], bool]
_FIELD = re.compile(r'"([^"]*)"|\[([^\]]*)\]|(\S+)')
_NAME = re.compile(r"\s*([A-Za-z0-9_][A-Za-z0-9_.-]*)")
_CONDITION = re.compile(r'\s*([A-Za-z0-9_][A-Za-z0-9_.-]*)\s*(!=|>=|<=|=|>|<)\s*("[^"]*"|[^\s&|"]+)\s*')
_ELEMENTS = re.compile(r',(?=(?:[^"]*"[^"]*")*[^"]*$)')  # commas outside quotes


def compile_delimited(source: str) -> Matcher:
    """A predicate for `source`, the whole pattern with its brackets; raises InvalidPattern."""
    if not source.endswith("]") or not source[1:-1].strip():
        raise InvalidPattern("a space-delimited pattern is [field, field, ...]")
    tests = [_element(part) for part in _ELEMENTS.split(source[1:-1])]

    def match(message: str) -> bool:
        fields = [next(g for g in found.groups() if g is not None) for found in _FIELD.finditer(message)]
        return _match(tests, 0, fields, 0)

    return match


def _element(text: str) -> Matcher | None:
    """A field's test, or None for `...`."""
    if text.strip() == "...":
        return None
    name = _NAME.match(text)
    if name is None:
        raise InvalidPattern(f"expected a field name in {text.strip()!r}")
    if not text[name.end() :].strip():
        return lambda value: True
    alternatives = [[_comparison(name[1], part) for part in either.split("&&")] for either in text.split("||")]
    return lambda value: any(all(test(value) for test in tests) for tests in alternatives)


def _comparison(name: str, text: str) -> Matcher:
    found = _CONDITION.fullmatch(text)
    if found is None or found[1] != name:
        raise InvalidPattern(f"expected a condition on {name} in {text.strip()!r}")
    op, raw = found[2], found[3]
    if NUMBER.fullmatch(raw):
        number, compare = float(raw), NUMERIC_OPS[op]
        return lambda value: NUMBER.fullmatch(value) is not None and compare(float(value), number)
    if op not in ("=", "!="):
        raise InvalidPattern(f"{op} compares numbers only")
    test, want = wildcard(raw.strip('"')), op == "="
    return lambda value: test(value) == want


def _match(tests: list[Matcher | None], t: int, fields: list[str], f: int) -> bool:
    while t < len(tests):
        test = tests[t]
        if test is None:  # `...`: as many fields as the rest of the pattern leaves over
            return any(_match(tests, t + 1, fields, start) for start in range(f, len(fields) + 1))
        if f >= len(fields) or not test(fields[f]):
            return False
        t, f = t + 1, f + 1
    return f == len(fields)
