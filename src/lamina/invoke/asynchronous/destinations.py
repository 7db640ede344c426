"""Where the outcome of an asynchronous invocation goes: ONE dispatcher for destinations
(OnSuccess / OnFailure) and dead-letter queues, with a registry of target kinds keyed by the ARN's
service. `lambda` is served now; `sqs`, `sns`, `events` and `s3` plug in with `register` when those
services exist, and until then ARNs of theirs are refused up front with a clear message.

A target's `deliver` returns queue ops to commit together with the source event's own change
(a Lambda target enqueues an Event for the target function), so a record is delivered exactly when
the source event's outcome is committed: no record for an event that will run again after a crash,
none lost for an event that will not.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from lamina.errors import InvalidParameterValue, LaminaError
from lamina.functions.names import parse_function_ref
from lamina.functions.service import FunctionService
from lamina.model.events import Condition, QueuedEvent
from lamina.store.events import Enqueue, EventOp

ON_SUCCESS = "OnSuccess"
ON_FAILURE = "OnFailure"
DEAD_LETTER = "DeadLetterConfig"
PURPOSES = (ON_SUCCESS, ON_FAILURE, DEAD_LETTER)

# Which services AWS allows for each purpose (aws-lambda.md §3): S3 for failures only; DLQs are
# SQS or SNS only.
ALLOWED = {
    ON_SUCCESS: ("lambda", "sqs", "sns", "events"),
    ON_FAILURE: ("lambda", "sqs", "sns", "events", "s3"),
    DEAD_LETTER: ("sqs", "sns"),
}
_NAMES = {"lambda": "Lambda functions", "sqs": "SQS queues", "sns": "SNS topics", "events": "EventBridge event buses",
          "s3": "S3 buckets"}  # fmt: skip


@dataclass(frozen=True)
class Delivery:
    """What a target receives: the body (the record, or the original event for a DLQ) and, for
    DLQs, AWS's message attributes (RequestID, ErrorCode, ErrorMessage)."""

    body: bytes
    source: QueuedEvent
    attributes: Mapping[str, str]


class TargetKind(Protocol):
    """One kind of target (one ARN service)."""

    def validate(self, arn: str, purpose: str, source: str | None) -> None:
        """Raise InvalidParameterValue if `arn` cannot take deliveries (`source`: the configuring function)."""

    def deliver(self, arn: str, delivery: Delivery) -> Sequence[EventOp]:
        """Deliver, or return queue ops that deliver once committed; raise a LaminaError if impossible."""


def arn_service(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[2] if len(parts) >= 6 and parts[0] == "arn" and parts[2] else None


class Destinations:
    """The registry and the one dispatch path."""

    def __init__(self) -> None:
        self._kinds: dict[str, TargetKind] = {}

    def register(self, service: str, kind: TargetKind) -> None:
        self._kinds[service] = kind

    def validate_target(self, arn: str, purpose: str, source: str | None = None) -> None:
        """Raise InvalidParameterValue unless `arn` is a target Lamina can deliver to for `purpose`
        (OnSuccess, OnFailure or DeadLetterConfig); `source` names the function being configured."""
        if purpose not in PURPOSES:
            raise ValueError(f"unknown purpose {purpose!r}")
        service = arn_service(arn)
        allowed = ALLOWED[purpose]
        if service is None:
            raise InvalidParameterValue(f"The {purpose} target ARN {arn!r} is not a valid ARN.")
        if service not in allowed:
            kinds = ", ".join(_NAMES[s] for s in allowed)
            raise InvalidParameterValue(f"The {purpose} target {arn} is not supported: it must be one of {kinds}.")
        kind = self._kinds.get(service)
        if kind is None:
            served = [_NAMES[s] for s in allowed if s in self._kinds]
            hint = f" Lamina delivers {purpose} to {', '.join(served)} for now." if served else ""
            raise InvalidParameterValue(
                f"The {purpose} target {arn} is not available: Lamina does not serve {_NAMES[service]} yet.{hint}"
            )
        kind.validate(arn, purpose, source)

    def deliver(self, arn: str, delivery: Delivery) -> Sequence[EventOp]:
        """Hand `delivery` to the target's kind; raises LaminaError when the kind is unavailable."""
        service = arn_service(arn)
        kind = self._kinds.get(service or "")
        if kind is None:
            raise LaminaError(f"cannot deliver to {arn}: Lamina does not serve {service or 'that ARN'} targets yet")
        return kind.deliver(arn, delivery)


class LambdaTarget:
    """A Lamina function as a destination: the record becomes an Event invocation of it."""

    def __init__(self, functions: FunctionService) -> None:
        self.functions = functions

    def validate(self, arn: str, purpose: str, source: str | None) -> None:
        try:
            ref = parse_function_ref(arn)
        except LaminaError:
            raise InvalidParameterValue(f"The {purpose} target {arn} is not a valid function ARN.") from None
        if not arn.startswith("arn:") or ":function:" not in arn:
            raise InvalidParameterValue(f"The {purpose} target {arn} is not a valid function ARN.")
        if ref.region not in (None, self.functions.settings.region):
            raise InvalidParameterValue(f"The {purpose} target {arn} is in another region.")
        if source is not None and ref.name == source:
            raise InvalidParameterValue("You can't specify the function as a destination for itself.")
        try:
            self.functions.resolve(ref)
        except LaminaError as exc:
            raise InvalidParameterValue(f"The {purpose} target {arn} does not exist: {exc.message}") from None

    def deliver(self, arn: str, delivery: Delivery) -> Sequence[EventOp]:
        ref = parse_function_ref(arn)
        config = self.functions.resolve(ref)  # ResourceNotFound if it was deleted meanwhile
        now = time.time()
        event = QueuedEvent(id=str(uuid.uuid4()), function=config.name, qualifier=ref.qualifier,
                            payload=delivery.body, enqueued=now, next_attempt=now)  # fmt: skip
        return [Enqueue(event)]


def destination_record(
    event: QueuedEvent,
    condition: Condition,
    function_arn: str,
    payload: bytes,
    response: tuple[str, str | None, bytes] | None,
) -> bytes:
    """AWS's invocation record. `function_arn` is qualified with the executed version; `response`
    is (executed version, function error, response payload), None when the function never ran."""
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "requestContext": {
            "requestId": event.id,
            "functionArn": function_arn,
            "condition": str(condition),
            "approximateInvokeCount": event.attempts,
        },
        "requestPayload": _parsed(payload),
    }
    if response is not None:
        version, function_error, body = response
        context: dict[str, Any] = {"statusCode": 200, "executedVersion": version}
        if function_error:
            context["functionError"] = function_error
        record["responseContext"] = context
        record["responsePayload"] = _parsed(body)
    return json.dumps(record, separators=(",", ":")).encode()


def _parsed(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body.decode(errors="replace")
