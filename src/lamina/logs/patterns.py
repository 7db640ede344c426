"""CloudWatch Logs filter patterns: compile once, then match each event's message.

What is reproduced, from AWS's "Filter pattern syntax for metric filters, subscription filters,
filter log events, and Live Tail" (CloudWatch Logs User Guide, FilterAndPatternSyntax.html) and the
FilterLogEvents API reference (`filterPattern`: "If not provided, all the events are matched"):

- An empty (or all-blank) pattern matches every event.
- Terms: `ERROR Exception` matches events containing every term. Matching is case-sensitive
  ("Filter patterns are case sensitive") and by substring, so `ERROR` matches `[ERROR] boom`.
- Quoted phrases: `"Internal Server Error"` is one term, spaces included; `\\"` escapes a quote.
  Terms with characters other than letters, digits and `_` should be quoted on AWS; Lamina also
  takes them bare (anything but blanks and quotes).
- `?ERROR ?WARN` matches events containing any of the `?` terms (AWS's OR).
- `-term` excludes events containing the term (`ERROR -Exception`). Lamina's rule when the kinds
  mix: every plain term, at least one `?` term (if any), and no `-` term.
- `%regex%`: AWS's regular-expression subset (no `(` `)` groups), searched anywhere in the event.
- JSON patterns, `{ SELECTOR OP VALUE }`, for events whose whole message is a JSON value:
  selectors `$.a.b`, `$.list[0]`, `$.a[1].b`; `=` / `!=` with a string (quoted, or bare) where
  `*` is a wildcard (`{ $.eventType = "Update*" }`) or a `%regex%`; `=` `!=` `<` `>` `<=` `>=`
  with a number (`{ $.latency > 100 }`, `1e3`, `-1.5`), compared with number fields only;
  `IS NULL` (present and null), `NOT EXISTS` (absent), `IS TRUE` / `IS FALSE`; `&&` and `||`
  (`&&` binds tighter) and parentheses. A selector that names nothing matches no comparison.
  Keywords are taken in any case.

- Space-delimited patterns, `[ip, user, ..., status = 404]`: see `lamina.logs.delimited`.

Anything else that does not parse is InvalidParameterException "Invalid filter pattern".
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from lamina.errors import LogsInvalidParameter
from lamina.logs.delimited import compile_delimited
from lamina.logs.values import NUMBER, NUMERIC_OPS, InvalidPattern, wildcard

Matcher = Callable[[str], bool]
_Node = Callable[[Any], bool]  # evaluates a parsed JSON document
_MISSING = object()


def compile_pattern(text: str | None) -> Matcher:
    """A predicate over messages; raises LogsInvalidParameter("Invalid filter pattern")."""
    source = (text or "").strip()
    if not source:
        return _everything
    try:
        if source.startswith("{"):
            return _json_matcher(_JsonParser(source).parse())
        if source.startswith("["):
            return compile_delimited(source)
        return _terms_matcher(source)
    except InvalidPattern:
        raise LogsInvalidParameter("Invalid filter pattern") from None


def _everything(message: str) -> bool:
    return True


# --- terms -----------------------------------------------------------------------------------------

_TERM = re.compile(r'\s*([?-]?)(?:"((?:[^"\\]|\\.)*)"|%([^%]+)%|([^\s"?-][^\s"]*))(?=\s|$)')


def _terms_matcher(source: str) -> Matcher:
    required: list[Matcher] = []
    optional: list[Matcher] = []
    excluded: list[Matcher] = []
    position = 0
    while position < len(source):
        found = _TERM.match(source, position)
        if found is None:
            raise InvalidPattern(f"cannot read a term at {position}")
        prefix, quoted, regex, bare = found.groups()
        if regex is not None:
            test = _regex(regex).search
            term: Matcher = lambda message, test=test: test(message) is not None  # noqa: E731
        else:
            text = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
            if not text:
                raise InvalidPattern("an empty term")
            term = lambda message, text=text: text in message  # noqa: E731
        {"": required, "?": optional, "-": excluded}[prefix].append(term)
        position = found.end()
        while position < len(source) and source[position].isspace():
            position += 1

    def match(message: str) -> bool:
        return (
            all(term(message) for term in required)
            and (not optional or any(term(message) for term in optional))
            and not any(term(message) for term in excluded)
        )

    return match


def _regex(body: str) -> re.Pattern[str]:
    if "(" in body or ")" in body:  # AWS: "The () operator is not supported"
        raise InvalidPattern("regex groups are not supported")
    try:
        return re.compile(body)
    except re.error as exc:
        raise InvalidPattern(str(exc)) from None


# --- JSON patterns ----------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<op>&&|\|\||!=|>=|<=|=|>|<|\(|\)|\{|\})
    | (?P<selector>\$(?:\.[^\s.\[\]()=!<>&|{}"]+|\[\d+\])*)
    | (?P<word>[^\s()"{}=!<>&|]+)
    )""",
    re.VERBOSE,
)
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


class _JsonParser:
    """Recursive descent over `{ expr }`: expr := and ('||' and)*; and := term ('&&' term)*;
    term := '(' expr ')' | SELECTOR (OP VALUE | IS NULL | IS TRUE | IS FALSE | NOT EXISTS)."""

    def __init__(self, source: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(source):
            if source[position:].strip() == "":
                break
            found = _TOKEN.match(source, position)
            if found is None or found.end() == position:
                raise InvalidPattern(f"unexpected character at {position}")
            kind = found.lastgroup or ""
            self.tokens.append((kind, found.group(kind)))
            position = found.end()
        self.at = 0

    def parse(self) -> _Node:
        self.expect("{")
        node = self.expression()
        self.expect("}")
        if self.at != len(self.tokens):
            raise InvalidPattern("text after the closing brace")
        return node

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.at] if self.at < len(self.tokens) else ("end", "")

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token[0] == "end":
            raise InvalidPattern("the pattern ends too soon")
        self.at += 1
        return token

    def expect(self, op: str) -> None:
        if self.take() != ("op", op):
            raise InvalidPattern(f"expected {op}")

    def keyword(self) -> str:
        kind, text = self.take()
        if kind != "word":
            raise InvalidPattern("expected a keyword")
        return text.upper()

    def expression(self) -> _Node:
        nodes = [self.conjunction()]
        while self.peek() == ("op", "||"):
            self.take()
            nodes.append(self.conjunction())
        return nodes[0] if len(nodes) == 1 else (lambda doc: any(node(doc) for node in nodes))

    def conjunction(self) -> _Node:
        nodes = [self.term()]
        while self.peek() == ("op", "&&"):
            self.take()
            nodes.append(self.term())
        return nodes[0] if len(nodes) == 1 else (lambda doc: all(node(doc) for node in nodes))

    def term(self) -> _Node:
        if self.peek() == ("op", "("):
            self.take()
            node = self.expression()
            self.expect(")")
            return node
        kind, text = self.take()
        if kind != "selector":
            raise InvalidPattern("expected a selector such as $.field")
        path = _path(text)
        kind, text = self.take()
        if kind == "op" and text in NUMERIC_OPS:
            return self.comparison(path, text)
        if kind == "word" and text.upper() == "IS":
            what = self.keyword()
            if what == "NULL":
                return lambda doc: _resolve(doc, path) is None
            if what in ("TRUE", "FALSE"):
                return lambda doc, want=what == "TRUE": _resolve(doc, path) is want
            raise InvalidPattern("IS takes NULL, TRUE or FALSE")
        if kind == "word" and text.upper() == "NOT" and self.keyword() == "EXISTS":
            return lambda doc: _resolve(doc, path) is _MISSING
        raise InvalidPattern("expected a comparison")

    def comparison(self, path: list[str | int], op: str) -> _Node:
        kind, text = self.take()
        if kind == "word" and NUMBER.fullmatch(text):
            number, compare = float(text), NUMERIC_OPS[op]

            def numeric(doc: Any) -> bool:
                value = _resolve(doc, path)
                return isinstance(value, int | float) and not isinstance(value, bool) and compare(value, number)

            return numeric
        if op not in ("=", "!="):
            raise InvalidPattern(f"{op} compares numbers only")
        if kind == "string":
            test = wildcard(json.loads(text))
        elif kind == "word" and len(text) > 2 and text[0] == text[-1] == "%":
            search = _regex(text[1:-1]).search
            test = lambda value: search(value) is not None  # noqa: E731
        elif kind == "word":
            test = wildcard(text)
        else:
            raise InvalidPattern("expected a value")
        want = op == "="

        def textual(doc: Any) -> bool:
            value = _resolve(doc, path)
            return isinstance(value, str) and test(value) == want

        return textual


def _path(selector: str) -> list[str | int]:
    return [int(index) if index else name for name, index in _STEP.findall(selector[1:])]


def _resolve(doc: Any, path: list[str | int]) -> Any:
    for step in path:
        if isinstance(step, int):
            if not isinstance(doc, list) or step >= len(doc):
                return _MISSING
        elif not isinstance(doc, dict) or step not in doc:
            return _MISSING
        doc = doc[step]
    return doc


def _json_matcher(node: _Node) -> Matcher:
    def match(message: str) -> bool:
        stripped = message.lstrip()
        if not stripped.startswith(("{", "[")):
            return False  # not JSON: skip the parser's exception
        try:
            doc = json.loads(stripped, parse_constant=lambda name: math.nan)
        except ValueError:
            return False
        return node(doc)

    return match
