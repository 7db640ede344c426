"""The edge's view of one HTTP exchange, independent of ASGI: what codecs read and write.

Header names in `HttpRequest.headers` are lower-case (HTTP names are case-insensitive); repeated
headers are joined with "," as RFC 9110 allows. `raw_path` and `query` are exactly as the client
sent them (still percent-encoded): routing splits the path before decoding, and SigV4 signs the
encoded form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl


@dataclass(slots=True)
class HttpRequest:
    method: str
    raw_path: str  # percent-encoded, without the query string
    query: str  # raw query string, without "?"
    headers: dict[str, str]  # lower-case names
    body: bytes = b""
    _query_pairs: list[tuple[str, str]] | None = field(default=None, repr=False)

    @property
    def query_pairs(self) -> list[tuple[str, str]]:
        """Decoded (name, value) pairs in order; repeated names stay repeated."""
        if self._query_pairs is None:
            self._query_pairs = parse_qsl(self.query, keep_blank_values=True) if self.query else []
        return self._query_pairs


@dataclass(slots=True)
class HttpResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def json_response(status: int, body: bytes, headers: dict[str, str] | None = None) -> HttpResponse:
    out = {"Content-Type": "application/json"}
    if headers:
        out.update(headers)
    return HttpResponse(status, out, body)
