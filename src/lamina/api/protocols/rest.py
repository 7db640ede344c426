"""What `rest-json` and `rest-xml` share: members bound to the URI, the query string, headers and
the status code, and the payload rules (botocore `BaseRestSerializer` / `BaseRestParser`).

Subclasses supply the body format: `decode_body` / `encode_body` for structures, and the error
document. A blob or string payload member is the raw body, both ways (Lambda Invoke's `Payload`).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.model import OperationModel, Shape

from lamina.api.protocols.base import ProtocolCodec
from lamina.api.protocols.scalars import ISO8601, RFC822, ScalarError, from_text, to_text
from lamina.api.wire import HttpRequest, HttpResponse
from lamina.errors import SerializationError

Member = tuple[str, str, Shape]  # (wire name, member name, shape)


@dataclass(slots=True)
class Binding:
    """Where each member of one input or output shape lives in the HTTP message."""

    shape: Shape | None
    labels: list[Member] = field(default_factory=list)
    query: list[Member] = field(default_factory=list)
    query_map: tuple[str, Shape] | None = None
    headers: list[Member] = field(default_factory=list)  # wire names lower-cased for requests
    header_maps: list[Member] = field(default_factory=list)  # (prefix, name, shape)
    status_member: str | None = None
    payload: tuple[str, Shape] | None = None
    raw_payload: bool = False  # payload is a blob or string: the body itself
    has_body: bool = False  # unlocated members exist: the body is a document of them


def bind(shape: Shape | None, *, lower_headers: bool) -> Binding:
    binding = Binding(shape)
    if shape is None:
        return binding
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        if location == "uri":
            binding.labels.append((wire, name, member))
        elif location == "querystring":
            if member.type_name == "map":
                binding.query_map = (name, member)
            else:
                binding.query.append((wire, name, member))
        elif location == "header":
            binding.headers.append((wire.lower() if lower_headers else wire, name, member))
        elif location == "headers":
            binding.header_maps.append((wire.lower() if lower_headers else wire, name, member))
        elif location == "statusCode":
            binding.status_member = name
        elif location is None:
            binding.has_body = True
    payload = shape.serialization.get("payload")
    if payload is not None:
        member = shape.members[payload]
        binding.payload = (payload, member)
        binding.raw_payload = member.type_name in ("blob", "string")
        binding.has_body = False
    return binding


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


class RestCodec(ProtocolCodec):
    """Binds located members; leaves the body format to subclasses."""

    raw_content_type = "application/octet-stream"

    def __init__(self, model: Any) -> None:
        super().__init__(model)
        self._inputs: dict[str, Binding] = {}
        self._outputs: dict[str, Binding] = {}

    # -- body format hooks ----------------------------------------------------------------------

    @abstractmethod
    def decode_body(self, shape: Shape, body: bytes) -> dict[str, Any]:
        """The unlocated members of `shape` from a structured body (empty body → {})."""

    @abstractmethod
    def encode_body(self, shape: Shape, value: Mapping[str, Any]) -> tuple[bytes, str]:
        """(body, content type) for the unlocated members of `shape` in `value`."""

    # -- requests -------------------------------------------------------------------------------

    def input_binding(self, operation: OperationModel) -> Binding:
        binding = self._inputs.get(operation.name)
        if binding is None:
            binding = self._inputs[operation.name] = bind(operation.input_shape, lower_headers=True)
        return binding

    def parse_request(
        self, operation: OperationModel, request: HttpRequest, labels: Mapping[str, str]
    ) -> dict[str, Any]:
        b = self.input_binding(operation)
        params: dict[str, Any] = {}
        if b.shape is None:
            return params
        for wire, name, shape in b.labels:
            if wire in labels:
                params[name] = self._text(shape, labels[wire], ISO8601, name)
        if b.query or b.query_map is not None:
            self._parse_query(b, request, params)
        headers = request.headers
        for wire, name, shape in b.headers:
            text = headers.get(wire)
            if text is not None:
                params[name] = self._text(shape, text, RFC822, name)
        for prefix, name, _shape in b.header_maps:
            found = {k[len(prefix) :]: v for k, v in headers.items() if k.startswith(prefix)}
            if found:
                params[name] = found
        body = request.body
        if b.payload is not None:
            name, shape = b.payload
            if body:
                if b.raw_payload:
                    params[name] = body if shape.type_name == "blob" else self._utf8(body, name)
                else:
                    params[name] = self.decode_body(shape, body)
        elif b.has_body:
            params.update(self.decode_body(b.shape, body))
        return params

    def _parse_query(self, b: Binding, request: HttpRequest, params: dict[str, Any]) -> None:
        grouped: dict[str, list[str]] = {}
        for key, value in request.query_pairs:
            grouped.setdefault(key, []).append(value)
        claimed = set()
        for wire, name, shape in b.query:
            values = grouped.get(wire)
            if not values:
                continue
            claimed.add(wire)
            if shape.type_name == "list":
                params[name] = [self._text(shape.member, v, ISO8601, name) for v in values]
            else:
                params[name] = self._text(shape, values[0], ISO8601, name)
        if b.query_map is not None:
            name, shape = b.query_map
            multi = shape.value.type_name == "list"
            rest = {k: (v if multi else v[0]) for k, v in grouped.items() if k not in claimed}
            if rest:
                params[name] = rest

    @staticmethod
    def _utf8(body: bytes, name: str) -> str:
        try:
            return body.decode()
        except UnicodeDecodeError:
            raise SerializationError(f"Value at '{_camel(name)}' is not valid UTF-8") from None

    def _text(self, shape: Shape, text: str, default_ts: str, name: str) -> Any:
        try:
            return from_text(shape, text, default_ts)
        except ScalarError as exc:
            raise SerializationError(f"Value '{text}' at '{_camel(name)}' is not valid: {exc}") from None

    # -- responses ------------------------------------------------------------------------------

    def output_binding(self, operation: OperationModel) -> Binding:
        binding = self._outputs.get(operation.name)
        if binding is None:
            binding = self._outputs[operation.name] = bind(operation.output_shape, lower_headers=False)
        return binding

    def serialize_response(self, operation: OperationModel, output: Mapping[str, Any]) -> HttpResponse:
        b = self.output_binding(operation)
        status = operation.http.get("responseCode", 200)
        headers: dict[str, str] = {}
        body = b""
        if b.shape is not None:
            if b.status_member is not None and output.get(b.status_member) is not None:
                status = int(output[b.status_member])
            for wire, name, shape in b.headers:
                value = output.get(name)
                if value is not None:
                    headers[wire] = to_text(shape, value, RFC822)
            for prefix, name, _shape in b.header_maps:
                for key, value in (output.get(name) or {}).items():
                    headers[prefix + key] = str(value)
            if b.payload is not None:
                name, shape = b.payload
                value = output.get(name)
                if value is not None:
                    if b.raw_payload:
                        body = value.encode() if isinstance(value, str) else bytes(value)
                        headers.setdefault("Content-Type", self.raw_content_type)
                    else:
                        body, headers["Content-Type"] = self.encode_body(shape, value)
            elif b.has_body:
                body, headers["Content-Type"] = self.encode_body(b.shape, output)
        if status in (204, 304):
            body = b""
            headers.pop("Content-Type", None)
        return HttpResponse(status, headers, body)
