"""Lambda's list paging: opaque `Marker`s (base64 of the last key seen) and `MaxItems` (≤ 50 a page)."""

from __future__ import annotations

import base64

from lamina.errors import InvalidParameterValue

MAX_PAGE = 50


def encode_marker(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def decode_marker(marker: str | None) -> str | None:
    if not marker:
        return None
    try:
        return base64.b64decode(marker.encode(), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        raise InvalidParameterValue(f"Invalid marker: {marker}") from None


def page_size(max_items: int | None) -> int:
    limit = MAX_PAGE if max_items is None else max_items
    if not 1 <= limit <= 10000:
        raise InvalidParameterValue("MaxItems must be between 1 and 10000")
    return min(limit, MAX_PAGE)  # Lambda pages at most 50
