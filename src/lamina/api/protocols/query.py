"""`query` (STS, IAM, SNS, the old SQS): form-encoded input, XML output.

Input is `Action=<Operation>&Version=<apiVersion>&<members>` in a form body (or the URL's query
string), flattened as botocore's `QuerySerializer` writes it: nested structures as `A.B`, lists as
`Name.member.N` (`Name.N` when `flattened`, the member's `locationName` when it has one, `Name=`
for an empty list), maps as `Name.entry.N.key` / `.value`, timestamps ISO 8601, booleans
`true`/`false`, blobs base64.

Output is `<OpResponse xmlns=<xmlNamespace>><OpResult>...</OpResult><ResponseMetadata><RequestId>
...</RequestId></ResponseMetadata></OpResponse>` (the result element is the output shape's
`resultWrapper`), lists as `<member>` children (or repeated elements when flattened), maps as
`<entry><key/><value/></entry>`. Errors are `<ErrorResponse><Error><Type>Sender|Receiver</Type>
<Code/><Message/></Error><RequestId/></ErrorResponse>` with the error's status, as botocore's
`QueryParser` reads them.

The request id lives in the body (botocore takes it from there, not from a header), but codecs
serialise before the app knows it: the document carries a placeholder that `finish` replaces.

Query services spell some common errors differently from the JSON services: `ValidationError`,
`InvalidClientTokenId`, `SignatureDoesNotMatch`, `InvalidAction`... `QUERY_CODES` renames them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from botocore.model import OperationModel, ServiceModel, Shape

from lamina.api.protocols.base import ProtocolCodec
from lamina.api.protocols.scalars import (
    ISO8601,
    ScalarError,
    encode_blob,
    format_float,
    format_timestamp,
    from_text,
    timestamp_format,
)
from lamina.api.wire import HttpRequest, HttpResponse
from lamina.errors import LaminaError, ValidationError

XML = "text/xml"
PLACEHOLDER = "00000000-0000-0000-0000-000000000000"
_PLACEHOLDER_BYTES = PLACEHOLDER.encode()
_MISSING = object()

# Lamina's (JSON services') codes for common errors → what query services answer.
QUERY_CODES = {
    "ValidationException": "ValidationError",
    "UnrecognizedClientException": "InvalidClientTokenId",
    "InvalidSignatureException": "SignatureDoesNotMatch",
    "MissingAuthenticationTokenException": "MissingAuthenticationToken",
    "IncompleteSignatureException": "IncompleteSignature",
    "UnknownOperationException": "InvalidAction",
    "ServiceException": "InternalFailure",
    "SerializationException": "MalformedInput",
    "ExpiredTokenException": "ExpiredToken",
}


def form_params(request: HttpRequest) -> dict[str, str]:
    """The request's query-string and form-body parameters (the body wins on repeats)."""
    params = dict(request.query_pairs)
    if request.body and request.method != "GET":
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError("The request body is not UTF-8 form data.") from None
        params.update(parse_qsl(text, keep_blank_values=True))
    return params


class _Form:
    """Flat `A.B.member.1` keys with every dotted prefix indexed, for presence tests."""

    def __init__(self, params: Mapping[str, str]) -> None:
        self.values = params
        self.prefixes: set[str] = set()
        for key in params:
            parts = key.split(".")
            for end in range(1, len(parts) + 1):
                self.prefixes.add(".".join(parts[:end]))


class QueryCodec(ProtocolCodec):
    protocol = "query"

    def __init__(self, model: ServiceModel) -> None:
        super().__init__(model)
        self.namespace = model.metadata.get("xmlNamespace", "")

    # -- input ----------------------------------------------------------------------------------

    def parse_request(
        self, operation: OperationModel, request: HttpRequest, labels: Mapping[str, str]
    ) -> dict[str, Any]:
        shape = operation.input_shape
        if shape is None:
            return {}
        form = _Form(form_params(request))
        value = self._decode(shape, "", form)
        return {} if value is _MISSING else value

    def _decode(self, shape: Shape, prefix: str, form: _Form) -> Any:
        kind = shape.type_name
        if kind == "structure":
            if prefix and prefix not in form.prefixes:
                return _MISSING
            out: dict[str, Any] = {}
            for name, member in shape.members.items():
                key = _member_key(member, name, prefix)
                value = self._decode(member, key, form)
                if value is not _MISSING:
                    out[name] = value
            return out
        if kind == "list":
            if form.values.get(prefix) == "":
                return []
            if shape.serialization.get("flattened"):
                base = prefix
            else:
                base = f"{prefix}.{shape.member.serialization.get('name', 'member')}"
            items = []
            index = 1
            while f"{base}.{index}" in form.prefixes:
                item = self._decode(shape.member, f"{base}.{index}", form)
                items.append(item if item is not _MISSING else {})
                index += 1
            return items if items else _MISSING
        if kind == "map":
            base = prefix if shape.serialization.get("flattened") else f"{prefix}.entry"
            key_name = shape.key.serialization.get("name", "key")
            value_name = shape.value.serialization.get("name", "value")
            result: dict[str, Any] = {}
            index = 1
            while f"{base}.{index}" in form.prefixes:
                key = self._decode(shape.key, f"{base}.{index}.{key_name}", form)
                value = self._decode(shape.value, f"{base}.{index}.{value_name}", form)
                if key is not _MISSING:
                    result[key] = None if value is _MISSING else value
                index += 1
            return result if result else _MISSING
        text = form.values.get(prefix)
        if text is None:
            return _MISSING
        try:
            return from_text(shape, text, ISO8601)
        except ScalarError as exc:
            raise ValidationError(f"1 validation error detected: Value '{text}' at '{prefix}' {exc}") from None

    # -- output ---------------------------------------------------------------------------------

    def serialize_response(self, operation: OperationModel, output: Mapping[str, Any]) -> HttpResponse:
        name = operation.name
        parts = [f'<{name}Response xmlns="{self.namespace}">']
        shape = operation.output_shape
        if shape is not None:
            wrapper = shape.serialization.get("resultWrapper")
            if wrapper:
                parts.append(f"<{wrapper}>")
            self._encode_members(shape, output, parts)
            if wrapper:
                parts.append(f"</{wrapper}>")
        parts.append(f"<ResponseMetadata><RequestId>{PLACEHOLDER}</RequestId></ResponseMetadata></{name}Response>")
        return HttpResponse(200, {"Content-Type": XML}, "".join(parts).encode())

    def _encode_members(self, shape: Shape, value: Mapping[str, Any], parts: list[str]) -> None:
        for name, member in shape.members.items():
            item = value.get(name)
            if item is None:
                continue
            wire = member.serialization.get("name", name)
            if member.type_name == "list" and member.serialization.get("flattened"):
                element = member.member.serialization.get("name", wire)
                for entry in item:
                    self._encode_element(member.member, element, entry, parts)
            elif member.type_name == "map" and member.serialization.get("flattened"):
                for key, entry in item.items():
                    parts.append(f"<{wire}>")
                    self._encode_pair(member, key, entry, parts)
                    parts.append(f"</{wire}>")
            else:
                self._encode_element(member, wire, item, parts)

    def _encode_element(self, shape: Shape, tag: str, value: Any, parts: list[str]) -> None:
        parts.append(f"<{tag}>")
        self._encode_value(shape, value, parts)
        parts.append(f"</{tag}>")

    def _encode_pair(self, shape: Shape, key: Any, value: Any, parts: list[str]) -> None:
        self._encode_element(shape.key, shape.key.serialization.get("name", "key"), key, parts)
        if value is not None:
            self._encode_element(shape.value, shape.value.serialization.get("name", "value"), value, parts)

    def _encode_value(self, shape: Shape, value: Any, parts: list[str]) -> None:
        kind = shape.type_name
        if kind == "structure":
            self._encode_members(shape, value, parts)
        elif kind == "list":
            element = shape.member.serialization.get("name", "member")
            for item in value:
                self._encode_element(shape.member, element, item, parts)
        elif kind == "map":
            for key, item in value.items():
                parts.append("<entry>")
                self._encode_pair(shape, key, item, parts)
                parts.append("</entry>")
        else:
            parts.append(escape(scalar_text(shape, value)))

    # -- errors ---------------------------------------------------------------------------------

    def serialize_error(self, error: LaminaError) -> HttpResponse:
        code = QUERY_CODES.get(error.code, error.code)
        parts = [
            f'<ErrorResponse xmlns="{self.namespace}"><Error>',
            f"<Type>{'Sender' if error.sender_fault else 'Receiver'}</Type>",
            f"<Code>{escape(code)}</Code><Message>{escape(error.message)}</Message>",
        ]
        extra = error.extra()
        if extra:
            shape = self.error_shape(code)
            members = shape.members if shape is not None else {}
            for name, value in extra.items():
                member = members.get(name)
                if member is None:
                    parts.append(f"<{name}>{escape(str(value))}</{name}>")
                else:
                    self._encode_element(member, member.serialization.get("name", name), value, parts)
        parts.append(f"</Error><RequestId>{PLACEHOLDER}</RequestId></ErrorResponse>")
        return HttpResponse(error.status, {"Content-Type": XML}, "".join(parts).encode())

    def finish(self, response: HttpResponse, request_id: str) -> None:
        super().finish(response, request_id)
        head, sep, tail = response.body.rpartition(_PLACEHOLDER_BYTES)
        if sep:
            response.body = head + escape(request_id).encode() + tail


def _member_key(member: Shape, name: str, prefix: str) -> str:
    """Where botocore's QuerySerializer puts a structure member."""
    wire = member.serialization.get("name", name)
    if member.type_name == "list" and member.serialization.get("flattened"):
        element = member.member.serialization.get("name")
        if element:
            wire = element
    return f"{prefix}.{wire}" if prefix else wire


def scalar_text(shape: Shape, value: Any) -> str:
    kind = shape.type_name
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "timestamp":
        return str(format_timestamp(value, timestamp_format(shape, ISO8601)))
    if kind == "blob":
        return encode_blob(value)
    if kind in ("float", "double"):
        return str(format_float(float(value)))
    return value if isinstance(value, str) else str(value)
