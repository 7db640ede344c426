"""Shard iterators: opaque, tamper-evident, expiring positions in a shard.

An iterator names a stream (by name and store id, so one recreated under the same name does not
accept the old stream's iterators), a shard (store id and index), the counter after which reading
resumes, and when it was issued. It travels as URL-safe base64 of those fields plus a truncated
HMAC, so a client cannot forge a position in another stream or make an iterator younger. AWS
iterators expire 5 minutes after they are issued (ExpiredIteratorException); the TTL is the
service's to set (tests shorten it).
https://docs.aws.amazon.com/kinesis/latest/APIReference/API_GetShardIterator.html
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from dataclasses import dataclass

from lamina.errors import InvalidArgument

_HEAD = struct.Struct(">BqqIqq")  # version, stream id, shard id, shard index, after, issued_ms
_VERSION = 1
_MAC = 16


@dataclass(frozen=True, slots=True)
class Position:
    stream: str
    stream_id: int
    shard_id: int  # the store's id
    shard_index: int
    after: int  # the last counter consumed: reading resumes above it
    issued_ms: int


class IteratorCodec:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def encode(self, p: Position) -> str:
        body = _HEAD.pack(_VERSION, p.stream_id, p.shard_id, p.shard_index, p.after, p.issued_ms)
        body += p.stream.encode()
        mac = hmac.new(self._key, body, hashlib.sha256).digest()[:_MAC]
        return base64.urlsafe_b64encode(body + mac).decode()

    def decode(self, text: str) -> Position:
        try:
            raw = base64.urlsafe_b64decode(text.encode())
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise _invalid() from None
        body, mac = raw[:-_MAC], raw[-_MAC:]
        if len(body) <= _HEAD.size or not hmac.compare_digest(
            mac, hmac.new(self._key, body, hashlib.sha256).digest()[:_MAC]
        ):
            raise _invalid()
        version, stream_id, shard_id, index, after, issued = _HEAD.unpack_from(body)
        if version != _VERSION:
            raise _invalid()
        return Position(body[_HEAD.size :].decode(), stream_id, shard_id, index, after, issued)


def _invalid() -> InvalidArgument:
    return InvalidArgument("Invalid ShardIterator.")
