"""Scalar values on the wire: timestamps in their three formats, and the text form that URI labels,
query strings and headers carry.

The defaults follow botocore's serializers (`botocore/serialize.py`): JSON bodies carry epoch
seconds, query strings and URI labels ISO 8601, headers RFC 822; a member's `timestampFormat`
overrides the default. Header lists are comma-separated with RFC 7230 quoting, and `jsonvalue`
headers carry base64 JSON.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import json
import math
from datetime import UTC, datetime
from email.utils import formatdate, parsedate_to_datetime
from typing import Any

from botocore.model import Shape
from botocore.utils import parse_timestamp as _botocore_parse_timestamp

UNIX = "unixtimestamp"
ISO8601 = "iso8601"
RFC822 = "rfc822"


class ScalarError(ValueError):
    """Raised when a text or JSON value cannot become the shape's type; codecs turn it into the
    protocol's own error with the member's path."""


def to_datetime(value: Any) -> datetime:
    """A timestamp from anything a handler or a client may give: datetime, epoch number, text."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, bool):
        raise ScalarError(f"{value!r} is not a timestamp")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        text = value.strip()
        try:
            return datetime.fromtimestamp(float(text), UTC)
        except ValueError:
            pass
        try:
            parsed = datetime.fromisoformat(text)
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
        except ValueError:
            pass
        try:
            return parsedate_to_datetime(text)
        except (TypeError, ValueError):
            pass
        try:
            return _botocore_parse_timestamp(text)
        except (TypeError, ValueError) as exc:
            raise ScalarError(f"{value!r} is not a timestamp") from exc
    raise ScalarError(f"{value!r} is not a timestamp")


def format_timestamp(value: Any, fmt: str) -> str | int | float:
    """A timestamp in `fmt`: epoch seconds (int when whole), ISO 8601 with Z, or RFC 822 GMT."""
    dt = to_datetime(value)
    if fmt == UNIX:
        whole = calendar.timegm(dt.utctimetuple())
        return whole if dt.microsecond == 0 else (whole * 10**6 + dt.microsecond) / 10**6
    if fmt == RFC822:
        return formatdate(calendar.timegm(dt.utctimetuple()), usegmt=True)
    dt = dt.astimezone(UTC)
    if dt.microsecond:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def timestamp_format(shape: Shape, default: str) -> str:
    return shape.serialization.get("timestampFormat", default).lower()


def decode_blob(text: str) -> bytes:
    try:
        return base64.b64decode(text)
    except (binascii.Error, ValueError) as exc:
        raise ScalarError("not valid base64") from exc


def encode_blob(value: bytes | bytearray | memoryview | str) -> str:
    if isinstance(value, str):
        value = value.encode()
    return base64.b64encode(value).decode("ascii")


def parse_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ScalarError(f"{value!r} is not a number")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
        return float(value.replace("Infinity", "inf"))
    raise ScalarError(f"{value!r} is not a number")


def format_float(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _split_header_list(text: str) -> list[str]:
    """`a, "b,c", d` → ["a", "b,c", "d"] (botocore quotes items holding commas or quotes)."""
    if '"' not in text:
        return [item.strip() for item in text.split(",")]
    items: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif quoted and ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    items.append("".join(current).strip())
    return items


def from_text(shape: Shape, text: str, default_ts: str) -> Any:
    """A URI label, query value or header value as the member's Python type."""
    kind = shape.type_name
    if kind == "string":
        if shape.serialization.get("jsonvalue"):
            try:
                return json.loads(base64.b64decode(text))
            except (binascii.Error, ValueError, RecursionError) as exc:  # RecursionError: nested too deep
                raise ScalarError("not base64-encoded JSON") from exc
        return text
    if kind in ("integer", "long"):
        try:
            return int(text)
        except ValueError:
            raise ScalarError(f"'{text}' is not an integer") from None
    if kind == "boolean":
        lowered = text.lower()
        if lowered not in ("true", "false"):
            raise ScalarError(f"'{text}' is not a boolean")
        return lowered == "true"
    if kind in ("float", "double"):
        try:
            return float(text)
        except ValueError:
            raise ScalarError(f"'{text}' is not a number") from None
    if kind == "timestamp":
        return to_datetime(text)
    if kind == "blob":
        return decode_blob(text)
    if kind == "list":
        return [from_text(shape.member, item, default_ts) for item in _split_header_list(text)]
    return text


def to_text(shape: Shape, value: Any, default_ts: str) -> str:
    """A member's value as the text of a header (or query value)."""
    kind = shape.type_name
    if kind == "string":
        if shape.serialization.get("jsonvalue"):
            return base64.b64encode(json.dumps(value, separators=(",", ":")).encode()).decode("ascii")
        return value if isinstance(value, str) else str(value)
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "timestamp":
        return str(format_timestamp(value, timestamp_format(shape, default_ts)))
    if kind == "blob":
        return encode_blob(value)
    if kind == "list":
        items = []
        for item in value:
            text = to_text(shape.member, item, default_ts)
            items.append('"' + text.replace('"', '\\"') + '"' if ("," in text or '"' in text) else text)
        return ",".join(items)
    if kind in ("float", "double"):
        return str(format_float(float(value)))
    return str(value)
