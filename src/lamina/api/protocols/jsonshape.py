"""Shape-driven JSON bodies, shared by the `json` and `rest-json` protocols.

`JsonShapes.decoder(shape)` turns parsed JSON into the Python values a boto3 user passes (bytes for
blobs, aware datetimes for timestamps, ints, nested dicts keyed by member name);
`JsonShapes.encoder(shape)` does the reverse for output dicts. Both are compiled once per shape
into closures, so a request walks no model metadata, and both skip members bound to a location
(uri, querystring, header(s), statusCode): a body carries only unlocated members.

Type mismatches raise `BodyTypeError` carrying the member path; the codec turns it into its
protocol's error. Unknown members are ignored, as AWS services ignore them; `null` means absent.
A string (or map key) holding an unpaired UTF-16 surrogate (JSON `"\\ud800"`; `json.loads` pairs
valid ones into one code point) is malformed input, a `BodyTypeError` too: it is not text that
AWS's UTF-8 wire or any store can carry, so the protocol's "cannot parse" 400 answers it, not a
`ValidationException` (there is no model constraint it breaks) and not a crash further in.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

from botocore.model import Shape

from lamina.api.protocols.scalars import (
    UNIX,
    ScalarError,
    decode_blob,
    encode_blob,
    format_float,
    format_timestamp,
    parse_float,
    timestamp_format,
    to_datetime,
)

Decoder = Callable[[Any], Any]
Encoder = Callable[[Any], Any]


class BodyTypeError(ValueError):
    """Raised when a JSON value does not have its member's type; `path` grows as it unwinds."""

    def __init__(self, expected: str, value: Any, detail: str = "") -> None:
        super().__init__(expected)
        self.expected = expected
        self.value = value
        self.detail = detail
        self.path: list[str] = []

    def __str__(self) -> str:
        where = ".".join(reversed(self.path)) or "(body)"
        why = f": {self.detail}" if self.detail else ""
        return f"Cannot deserialize {type(self.value).__name__} value at '{where}' as {self.expected}{why}"


TOO_DEEP = "JSON nested too deeply"  # why a body that raised RecursionError was refused
_SURROGATE = re.compile("[\ud800-\udfff]")
_UNPAIRED = "unpaired UTF-16 surrogate"


def _check_text(value: str) -> None:
    """Refuse an unpaired surrogate (`isascii` is O(1), so ASCII text costs nothing)."""
    if not value.isascii() and _SURROGATE.search(value) is not None:
        raise BodyTypeError("string", value, _UNPAIRED)


def _is_located(member: Shape) -> bool:
    return "location" in member.serialization


def _identity(value: Any) -> Any:
    return value


class JsonShapes:
    """Compiled JSON decoders and encoders for one service model.

    Thread-safe: large bodies are parsed on worker threads. A structure's closure is visible to
    other threads only once it and everything it refers to are complete; while compiling, the
    compiling thread alone sees it (in `_pending`), which is what recursive shapes need.
    """

    def __init__(self, timestamp_default: str = UNIX) -> None:
        self._ts_default = timestamp_default
        self._decoders: dict[str, Decoder] = {}
        self._encoders: dict[str, Encoder] = {}
        self._pending: dict[tuple[str, str], Callable[[Any], Any]] = {}
        self._lock = threading.RLock()
        self._depth = 0

    def _structure(
        self, cache: dict[str, Any], kind: str, shape: Shape, build: Callable[[Shape], Callable[[Any], Any]]
    ) -> Callable[[Any], Any]:
        with self._lock:
            found = cache.get(shape.name) or self._pending.get((kind, shape.name))
            if found is not None:
                return found
            self._depth += 1
            try:
                return build(shape)
            except BaseException:
                if self._depth == 1:
                    self._pending.clear()
                raise
            finally:
                self._depth -= 1
                if self._depth == 0:
                    for (k, name), compiled in self._pending.items():
                        (self._decoders if k == "decode" else self._encoders)[name] = compiled
                    self._pending.clear()

    # -- decoding -------------------------------------------------------------------------------

    def decoder(self, shape: Shape) -> Decoder:
        kind = shape.type_name
        if kind == "structure":
            cached = self._decoders.get(shape.name)
            return (
                cached
                if cached is not None
                else self._structure(self._decoders, "decode", shape, self._structure_decoder)
            )
        if kind == "list":
            return self._list_decoder(shape)
        if kind == "map":
            return self._map_decoder(shape)
        return _scalar_decoder(shape)

    def _structure_decoder(self, shape: Shape) -> Decoder:
        if shape.is_document_type:
            return _identity
        table: dict[str, tuple[str, Decoder]] = {}

        def decode(value: Any) -> dict[str, Any]:
            if not isinstance(value, dict):
                raise BodyTypeError("structure", value)
            out = {}
            for key, raw in value.items():
                entry = table.get(key)
                if entry is None or raw is None:
                    continue
                name, member_decoder = entry
                try:
                    out[name] = member_decoder(raw)
                except BodyTypeError as exc:
                    exc.path.append(name[:1].lower() + name[1:])
                    raise
            return out

        self._pending[("decode", shape.name)] = decode  # before the members: shapes may recurse
        for name, member in shape.members.items():
            if not _is_located(member):
                table[member.serialization.get("name", name)] = (name, self.decoder(member))
        return decode

    def _list_decoder(self, shape: Shape) -> Decoder:
        item = self.decoder(shape.member)

        def decode(value: Any) -> list[Any]:
            if not isinstance(value, list):
                raise BodyTypeError("list", value)
            out = []
            for index, raw in enumerate(value):
                try:
                    out.append(None if raw is None else item(raw))
                except BodyTypeError as exc:
                    exc.path.append(f"{index + 1}.member")
                    raise
            return out

        return decode

    def _map_decoder(self, shape: Shape) -> Decoder:
        val = self.decoder(shape.value)

        def decode(value: Any) -> dict[str, Any]:
            if not isinstance(value, dict):
                raise BodyTypeError("map", value)
            out = {}
            for key, raw in value.items():
                _check_text(key)  # unwinds without the key in the path: it cannot be shown
                try:
                    out[key] = None if raw is None else val(raw)
                except BodyTypeError as exc:
                    exc.path.append(str(key))
                    raise
            return out

        return decode

    # -- encoding -------------------------------------------------------------------------------

    def encoder(self, shape: Shape) -> Encoder | None:
        """The value's JSON form; None when the value is already JSON (strings, ints, bools)."""
        kind = shape.type_name
        if kind == "structure":
            cached = self._encoders.get(shape.name)
            return (
                cached
                if cached is not None
                else self._structure(self._encoders, "encode", shape, self._structure_encoder)
            )
        if kind == "list":
            item = self.encoder(shape.member)
            if item is None:
                return list
            return lambda value: [None if v is None else item(v) for v in value]
        if kind == "map":
            val = self.encoder(shape.value)
            if val is None:
                return dict
            return lambda value: {k: None if v is None else val(v) for k, v in value.items()}
        if kind == "timestamp":
            fmt = timestamp_format(shape, self._ts_default)
            return lambda value: format_timestamp(value, fmt)
        if kind == "blob":
            return encode_blob
        if kind in ("float", "double"):
            return lambda value: format_float(float(value))
        return None

    def _structure_encoder(self, shape: Shape) -> Encoder:
        if shape.is_document_type:
            return _identity
        table: dict[str, tuple[str, Encoder | None]] = {}

        def encode(value: Any) -> dict[str, Any]:
            out = {}
            for name, raw in value.items():
                entry = table.get(name)
                if entry is None or raw is None:
                    continue
                wire, member_encoder = entry
                out[wire] = raw if member_encoder is None else member_encoder(raw)
            return out

        self._pending[("encode", shape.name)] = encode
        for name, member in shape.members.items():
            if not _is_located(member):
                table[name] = (member.serialization.get("name", name), self.encoder(member))
        return encode


def _scalar_decoder(shape: Shape) -> Decoder:
    kind = shape.type_name
    if kind == "string":

        def decode_string(value: Any) -> str:
            if not isinstance(value, str):
                raise BodyTypeError("string", value)
            _check_text(value)
            return value

        return decode_string
    if kind in ("integer", "long"):

        def decode_int(value: Any) -> int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise BodyTypeError(kind, value)

        return decode_int
    if kind == "boolean":

        def decode_bool(value: Any) -> bool:
            if not isinstance(value, bool):
                raise BodyTypeError("boolean", value)
            return value

        return decode_bool
    if kind in ("float", "double"):

        def decode_float(value: Any) -> float:
            try:
                return parse_float(value)
            except ScalarError:
                raise BodyTypeError(kind, value) from None

        return decode_float
    if kind == "blob":

        def decode_b64(value: Any) -> bytes:
            if not isinstance(value, str):
                raise BodyTypeError("base64 blob", value)
            try:
                return decode_blob(value)
            except ScalarError:
                raise BodyTypeError("base64 blob", value) from None

        return decode_b64
    if kind == "timestamp":

        def decode_timestamp(value: Any) -> Any:
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise BodyTypeError("timestamp", value)
            try:
                return to_datetime(value)
            except (ScalarError, OverflowError, OSError):
                raise BodyTypeError("timestamp", value) from None

        return decode_timestamp
    return _identity
