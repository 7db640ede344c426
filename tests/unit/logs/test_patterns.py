"""Filter patterns, one table per kind: (pattern, message, matches)."""

from __future__ import annotations

import pytest

from lamina.errors import LogsInvalidParameter
from lamina.logs.patterns import compile_pattern

ORDER = '{"level": "ERROR", "latency": 250, "user": {"id": 7, "name": "ana"}, "tags": ["a", "b"], "ok": true, "gone": null, "event": "UpdateTrail"}'


def check(cases):
    for pattern, message, expected in cases:
        assert compile_pattern(pattern)(message) is expected, (pattern, message)


def test_empty_pattern_matches_everything():
    check([("", "anything", True), ("   ", "", True), (None, "x", True)])


def test_plain_terms_all_must_appear_case_sensitively():
    check(
        [
            ("ERROR", "[ERROR] boom", True),
            ("ERROR", "error: boom", False),  # case-sensitive
            ("ERROR Exception", "ERROR: NullPointerException", True),  # substrings, any order
            ("ERROR Exception", "ERROR: fine", False),
            ("Exception ERROR", "ERROR: NullPointerException", True),
            ("a/b:c", "path a/b:c here", True),  # bare terms with punctuation
        ]
    )


def test_quoted_phrases_keep_their_spaces():
    check(
        [
            ('"Internal Server Error"', "500 Internal Server Error", True),
            ('"Internal Server Error"', "Internal error on Server", False),
            ('"say \\"hi\\"" ok', 'ok: say "hi"', True),
            ('"two words" other', "two words and other", True),
            ('"two words" other', "two words only", False),
        ]
    )


def test_question_mark_terms_are_alternatives():
    check(
        [
            ("?ERROR ?WARN", "WARN disk", True),
            ("?ERROR ?WARN", "ERROR disk", True),
            ("?ERROR ?WARN", "INFO disk", False),
            ('?"bad thing" ?WARN', "a bad thing", True),
            ("disk ?ERROR ?WARN", "WARN disk", True),  # plain terms still required
            ("disk ?ERROR ?WARN", "WARN cpu", False),
        ]
    )


def test_minus_terms_exclude():
    check(
        [
            ("ERROR -Exception", "ERROR plain", True),
            ("ERROR -Exception", "ERROR Exception", False),
            ('-"health check"', "GET /health check", False),
            ('-"health check"', "GET /orders", True),
        ]
    )


def test_regex_terms():
    check(
        [
            ("%ERR[0-9]+%", "code ERR42", True),
            ("%ERR[0-9]+%", "code ERR", False),
            ("%^START%", "START RequestId", True),
            ("%^START%", "x START", False),
        ]
    )


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ('{ $.level = "ERROR" }', True),
        ('{$.level="ERROR"}', True),  # blanks are optional
        ('{ $.level = "WARN" }', False),
        ("{ $.level = ERROR }", True),  # bare strings
        ('{ $.level != "WARN" }', True),
        ('{ $.level != "ERROR" }', False),
        ('{ $.event = "Update*" }', True),  # wildcard
        ('{ $.event = "*Trail" }', True),
        ('{ $.event = "Update" }', False),  # otherwise exact
        ("{ $.event = %^Upd% }", True),
        ("{ $.latency > 100 }", True),
        ("{ $.latency > 250 }", False),
        ("{ $.latency >= 250 }", True),
        ("{ $.latency < 1e3 }", True),
        ("{ $.latency <= -1 }", False),
        ("{ $.latency = 250 }", True),
        ("{ $.latency != 250 }", False),
        ("{ $.level > 1 }", False),  # numbers compare with number fields only
        ("{ $.user.id = 7 }", True),
        ('{ $.user.name = "ana" }', True),
        ('{ $.tags[1] = "b" }', True),
        ('{ $.tags[2] = "b" }', False),
        ("{ $.gone IS NULL }", True),
        ("{ $.level IS NULL }", False),
        ("{ $.missing IS NULL }", False),  # absent is not null
        ("{ $.missing NOT EXISTS }", True),
        ("{ $.gone NOT EXISTS }", False),
        ("{ $.ok IS TRUE }", True),
        ("{ $.ok is false }", False),
        ('{ $.missing != "x" }', False),  # a selector naming nothing matches no comparison
        ('{ $.level = "ERROR" && $.latency > 100 }', True),
        ('{ $.level = "ERROR" && $.latency > 300 }', False),
        ('{ $.level = "WARN" || $.latency > 100 }', True),
        ('{ ($.level = "WARN" && $.latency > 1) || $.user.id = 7 }', True),
        ('{ $.level = "WARN" && ($.latency > 1 || $.user.id = 7) }', False),
        ('{ $.level = "WARN" && $.latency > 1 || $.user.id = 7 }', True),  # && binds tighter
    ],
)
def test_json_patterns(pattern, expected):
    assert compile_pattern(pattern)(ORDER) is expected


APACHE = '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 404 2326'


def test_space_delimited_patterns():
    check(
        [
            ("[ip, id, user, timestamp, request, status_code, bytes]", APACHE, True),
            ("[ip, id, user, timestamp, request, status_code]", APACHE, False),  # counts must agree
            ("[ip, id, user, timestamp, request, status_code = 404, bytes]", APACHE, True),
            ("[ip, id, user, timestamp, request, status_code = 4*, bytes]", APACHE, True),
            ("[ip, id, user, timestamp, request, status_code != 404, bytes]", APACHE, False),
            ("[..., status_code = 404, bytes > 1000]", APACHE, True),
            ("[..., status_code = 404, bytes > 3000]", APACHE, False),
            ("[ip = 127.0.0.*, ...]", APACHE, True),
            ("[ip, ..., bytes <= 2326]", APACHE, True),
            ('[ip, id, user = "frank", ...]', APACHE, True),
            ("[ip, id, user, timestamp = *13:55:36*, ...]", APACHE, True),  # brackets make one field
            ('[..., request = "GET /apache_pb.gif HTTP/1.0", status_code, bytes]', APACHE, True),  # so do quotes
            ("[..., status_code = 200 || status_code = 404, bytes]", APACHE, True),
            ("[..., status_code = 200 || status_code = 500, bytes]", APACHE, False),
            ("[..., status_code >= 400 && status_code < 500, bytes]", APACHE, True),
            ("[...]", APACHE, True),
            ("[a, ..., b, c]", "x y z", True),
            ("[a, ..., b, c]", "w x y z", True),
            ("[a, ..., b, c]", "x y", False),
        ]
    )


def test_json_patterns_skip_events_that_are_not_json():
    match = compile_pattern('{ $.level = "ERROR" }')
    assert match("ERROR level") is False
    assert match('{"level": "ERROR"') is False  # truncated
    assert match('["ERROR"]') is False
    assert match('  {"level": "ERROR"}') is True


@pytest.mark.parametrize(
    "pattern",
    [
        '"unterminated',
        '{ $.level = "ERROR"',
        "{ level = 1 }",
        "{ $.a > abc }",
        "{ $.a = }",
        "{ $.a IS MAYBE }",
        "{ $.a = 1 } trailing",
        "{ $.a = 1 && }",
        "[ip, user, status = ]",
        "[ip, status = 404 || code = 1]",  # conditions are on the field's own name
        "[ip, status > abc]",
        "[]",
        "[ip",
        "%(group)%",
        "? ",
        'a"b',
    ],
)
def test_invalid_patterns_are_invalid_parameters(pattern):
    with pytest.raises(LogsInvalidParameter, match=r"^Invalid filter pattern$"):
        compile_pattern(pattern)
