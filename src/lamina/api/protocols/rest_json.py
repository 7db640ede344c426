"""`rest-json` (Lambda, API Gateway, ...): located members plus a JSON body.

Errors follow what botocore's `RestJSONParser` reads and real Lambda sends: the code in the
`x-amzn-ErrorType` header, and a body `{"Type": "User"|"Service", "message": ..., <extras>}`
(`Message` when the modeled error shape spells it so), e.g. real Lambda's
`{"Reason":"CallerRateLimitExceeded","Type":"User","message":"Rate exceeded"}`
(reference/aws-lambda.md §0, §1 error table). Extras modeled as headers (TooManyRequestsException's
`retryAfterSeconds` → `Retry-After`) go in headers.

An unparseable JSON body is Lambda's `InvalidRequestContentException` "Could not parse request
body into json: ..." (reference §1); a service that answers otherwise passes `body_error`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.model import ServiceModel, Shape

from lamina.api.protocols.jsonshape import TOO_DEEP, JsonShapes
from lamina.api.protocols.rest import RestCodec
from lamina.api.protocols.scalars import RFC822, to_text
from lamina.api.wire import HttpResponse
from lamina.errors import InvalidRequestContent, LaminaError

JSON = "application/json"


class RestJsonCodec(RestCodec):
    protocol = "rest-json"

    def __init__(self, model: ServiceModel, body_error: type[LaminaError] = InvalidRequestContent) -> None:
        super().__init__(model)
        self.shapes = JsonShapes()
        self.body_error = body_error

    def decode_body(self, shape: Shape, body: bytes) -> dict[str, Any]:
        if not body:
            return {}
        try:
            document = json.loads(body)
            return self.shapes.decoder(shape)(document)
        except (ValueError, UnicodeDecodeError) as exc:  # BodyTypeError is a ValueError
            raise self.body_error(f"Could not parse request body into json: {exc}") from None
        except RecursionError:  # `[[[...` deeper than the interpreter's limit: unparseable too
            raise self.body_error(f"Could not parse request body into json: {TOO_DEEP}") from None

    def encode_body(self, shape: Shape, value: Mapping[str, Any]) -> tuple[bytes, str]:
        encoder = self.shapes.encoder(shape)
        document = value if encoder is None else encoder(value)
        return json.dumps(document, separators=(",", ":")).encode(), JSON

    def serialize_error(self, error: LaminaError) -> HttpResponse:
        body: dict[str, Any] = {
            "Type": "User" if error.sender_fault else "Service",
            self.message_key(error.code): error.message,
        }
        headers = {"x-amzn-ErrorType": error.code, "Content-Type": JSON}
        extra = error.extra()
        if extra:
            shape = self.error_shape(error.code)
            add_error_extras(self.shapes, shape, extra, body, headers)
        return HttpResponse(error.status, headers, json.dumps(body, separators=(",", ":")).encode())


def add_error_extras(
    shapes: JsonShapes, shape: Shape | None, extra: Mapping[str, Any], body: dict, headers: dict
) -> None:
    """Place `LaminaError.extra()` members where the modeled error shape says they go."""
    members = shape.members if shape is not None else {}
    for name, value in extra.items():
        member = members.get(name)
        if member is None:
            body[name] = value
            continue
        wire = member.serialization.get("name", name)
        if member.serialization.get("location") == "header":
            headers[wire] = to_text(member, value, RFC822)
        else:
            encoder = shapes.encoder(member)
            body[wire] = value if encoder is None else encoder(value)
