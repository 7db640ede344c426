"""Paging tokens of the Logs API: opaque to callers, a (timestamp, event id) key inside.

GetLogEvents' tokens look like AWS's, `f/` or `b/` and digits: `f/K` reads the events after key
K, `b/K` the events before it, so a token taken from either end of any page works in either
direction. FilterLogEvents' and the Describe operations' `nextToken`s are URL-safe base64 of a
small JSON key. A token that does not parse is InvalidParameterException, as on AWS.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from lamina.errors import LogsInvalidParameter

Key = tuple[int, int]  # (timestamp ms, event id)
_DIGITS = 20


def event_token(direction: str, key: Key) -> str:
    """`f/…` (events after `key`) or `b/…` (events before it)."""
    ts, id_ = key
    return f"{direction}/{max(ts, 0):0{_DIGITS}d}{max(id_, 0):0{_DIGITS}d}"


def parse_event_token(token: str) -> tuple[str, Key]:
    direction, _, digits = token.partition("/")
    if direction not in ("f", "b") or len(digits) != 2 * _DIGITS or not digits.isdigit():
        raise invalid_token()
    return direction, (int(digits[:_DIGITS]), int(digits[_DIGITS:]))


def encode_key(key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def decode_key(token: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error):
        raise invalid_token() from None


def invalid_token() -> LogsInvalidParameter:
    return LogsInvalidParameter("The specified nextToken is invalid.")
