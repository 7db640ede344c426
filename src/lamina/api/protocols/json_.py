"""`json` (awsJson 1.0/1.1: Kinesis, CloudWatch Logs, DynamoDB, SQS): `POST /` with the operation
in `X-Amz-Target: <targetPrefix>.<Operation>` and the whole input as a JSON body.

Errors: `{"__type": <Code>, "message": ...}` with the error's status, which botocore's
`BaseJSONParser._do_error_parse` reads. Services marked `awsQueryCompatible` (SQS) also get
`x-amzn-query-error: <query code>;Sender|Receiver`, from which botocore recovers the old query
error code (`AWS.SimpleQueueService.NonExistentQueue`) that SQS clients match on. The query code is
the error's `query_code` attribute if it has one, else the model's `error.code`, else its code
(current models no longer record the legacy codes, so SQS errors should carry `query_code`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.model import OperationModel, ServiceModel

from lamina.api.protocols.base import ProtocolCodec
from lamina.api.protocols.jsonshape import TOO_DEEP, BodyTypeError, JsonShapes
from lamina.api.protocols.rest_json import add_error_extras
from lamina.api.wire import HttpRequest, HttpResponse
from lamina.errors import LaminaError, SerializationError


class JsonCodec(ProtocolCodec):
    protocol = "json"

    def __init__(self, model: ServiceModel, body_error: type[LaminaError] = SerializationError) -> None:
        super().__init__(model)
        self.shapes = JsonShapes()
        self.body_error = body_error
        self.content_type = f"application/x-amz-json-{model.metadata.get('jsonVersion', '1.0')}"
        self.query_compatible = "awsQueryCompatible" in model.metadata

    def parse_request(
        self, operation: OperationModel, request: HttpRequest, labels: Mapping[str, str]
    ) -> dict[str, Any]:
        shape = operation.input_shape
        if shape is None or not request.body:
            return {}
        try:
            document = json.loads(request.body)
            return self.shapes.decoder(shape)(document)
        except (ValueError, UnicodeDecodeError) as exc:  # BodyTypeError is a ValueError
            detail = str(exc) if isinstance(exc, BodyTypeError) else f"Could not parse request body: {exc}"
            raise self.body_error(detail) from None
        except RecursionError:  # `[[[...` deeper than the interpreter's limit: unparseable too
            raise self.body_error(f"Could not parse request body: {TOO_DEEP}") from None

    def serialize_response(self, operation: OperationModel, output: Mapping[str, Any]) -> HttpResponse:
        shape = operation.output_shape
        document: Any = {}
        if shape is not None:
            encoder = self.shapes.encoder(shape)
            document = output if encoder is None else encoder(output)
        body = json.dumps(document, separators=(",", ":")).encode()
        return HttpResponse(200, {"Content-Type": self.content_type}, body)

    def serialize_error(self, error: LaminaError) -> HttpResponse:
        shape = self.error_shape(error.code)
        body: dict[str, Any] = {"__type": error.code, self.message_key(error.code): error.message}
        headers = {"Content-Type": self.content_type}
        extra = error.extra()
        if extra:
            add_error_extras(self.shapes, shape, extra, body, headers)
        if self.query_compatible:
            query_code = getattr(error, "query_code", None)
            if query_code is None and shape is not None:
                query_code = shape.metadata.get("error", {}).get("code")
            query_code = query_code or error.code
            headers["x-amzn-query-error"] = f"{query_code};{'Sender' if error.sender_fault else 'Receiver'}"
        return HttpResponse(error.status, headers, json.dumps(body, separators=(",", ":")).encode())
