"""The contract every protocol codec keeps: one request in, params out; output or error in, one
response out. All shapes come from the botocore service model; nothing here is hand-written.

A codec is built once per registered service (`codec = RestJsonCodec(service_model)`) and is
stateless per request, so one instance serves all requests concurrently.

- `parse_request(operation, request, labels)` → the operation's input params, exactly as a boto3
  user would have passed them: bytes for blobs, aware `datetime` for timestamps, `int`, `float`,
  `bool`, nested dicts/lists, keyed by *member* name (not wire name). Members absent from the
  request are absent from the dict. `labels` are the URI labels the router matched, already
  percent-decoded. Raises a `LaminaError` (the protocol's own code for unparseable input);
  model constraints (required, min/max, enum, pattern) are *not* checked here: that is
  `api/validation.py`, run by the app after parsing.
- `serialize_response(operation, output)` → `HttpResponse` that botocore's parser for this
  protocol turns back into `output` (plus ResponseMetadata). `None` values are omitted.
- `serialize_error(error)` → `HttpResponse` from which botocore's parser yields
  `Error.Code == error.code`, `Error.Message == error.message`, and the modeled extras of
  `error.extra()` (keyed by member name, e.g. `Reason`).
- `request_id_header` names the header `finish(response, request_id)` puts the request id in.

Adding a protocol (`query` for STS/IAM/SNS, `rest-xml` for S3): subclass `ProtocolCodec` in a
module named after the protocol, register the class in `CODECS` (`api/protocols/__init__.py`),
and give `api/routing.py` a router for it if operations are not addressed by `requestUri`
(`query` names them with the `Action` parameter, which may sit in a form body: route after the
body is read). `rest.RestCodec` already binds uri/querystring/header/headers/statusCode members
and payloads; a `rest-xml` codec only supplies the body format and the error document (and uses
`x-amz-request-id`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from botocore.model import OperationModel, ServiceModel, Shape

from lamina.api.wire import HttpRequest, HttpResponse
from lamina.errors import LaminaError


class ProtocolCodec(ABC):
    """Parses requests and serialises responses and errors for one service's protocol."""

    protocol: ClassVar[str]
    request_id_header: ClassVar[str] = "x-amzn-RequestId"

    def __init__(self, model: ServiceModel) -> None:
        self.model = model
        self._error_shapes: dict[str, Shape | None] = {}

    @abstractmethod
    def parse_request(
        self, operation: OperationModel, request: HttpRequest, labels: Mapping[str, str]
    ) -> dict[str, Any]: ...

    @abstractmethod
    def serialize_response(self, operation: OperationModel, output: Mapping[str, Any]) -> HttpResponse: ...

    @abstractmethod
    def serialize_error(self, error: LaminaError) -> HttpResponse: ...

    def finish(self, response: HttpResponse, request_id: str) -> None:
        """Stamp the request id on a serialised response (`query` also writes it in the body)."""
        response.headers[self.request_id_header] = request_id

    def error_shape(self, code: str) -> Shape | None:
        """The modeled exception shape for an error code, found by its code or its shape name."""
        if code in self._error_shapes:
            return self._error_shapes[code]
        shape = self.model.shape_for_error_code(code)
        if shape is None and code in self.model.shape_names:
            candidate = self.model.shape_for(code)
            if candidate.metadata.get("exception"):
                shape = candidate
        self._error_shapes[code] = shape
        return shape

    def message_key(self, code: str) -> str:
        """`message` or `Message`: whichever member the modeled error shape has (Lambda uses both:
        ResourceNotFoundException has `Message`, InvalidParameterValueException `message`)."""
        shape = self.error_shape(code)
        if shape is not None and "Message" in shape.members and "message" not in shape.members:
            return "Message"
        return "message"
