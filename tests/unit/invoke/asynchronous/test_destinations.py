"""The destinations dispatcher: target validation by ARN service, delivery, the record format."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence

import pytest

from lamina.config import Settings
from lamina.errors import InvalidParameterValue, LaminaError
from lamina.functions.service import FunctionDraft, FunctionService
from lamina.invoke.asynchronous.configs import ConfigChange, EventInvokeConfigs
from lamina.invoke.asynchronous.destinations import Delivery, Destinations, LambdaTarget, destination_record
from lamina.model.events import Condition, QueuedEvent
from lamina.store.code import FileCodeStore
from lamina.store.events import Enqueue, EventOp
from lamina.store.memory import MemoryStore
from lamina.store.memory_events import MemoryEventStore

ARN = "arn:aws:lambda:us-east-1:000000000000:function:"


def zip_of(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", source)
    return buffer.getvalue()


@pytest.fixture
def functions(tmp_path) -> FunctionService:
    service = FunctionService(
        Settings(interpreters={}), MemoryStore(), FileCodeStore(tmp_path / "code", 10_000, 100_000)
    )
    for name in ("source", "target"):
        service.create(FunctionDraft(name=name, role="arn:aws:iam::000000000000:role/r", runtime="python3.12",
                                     handler="app.handler", zip_file=zip_of("def handler(e, c):\n    return 1\n")))  # fmt: skip
    return service


@pytest.fixture
def destinations(functions) -> Destinations:
    registry = Destinations()
    registry.register("lambda", LambdaTarget(functions))
    return registry


def event() -> QueuedEvent:
    return QueuedEvent(id="req-1", function="source", qualifier=None, payload=b'{"k": 1}', enqueued=1.0, attempts=3)


def test_a_lambda_target_must_exist_and_not_be_the_function_itself(destinations):
    destinations.validate_target(ARN + "target", "OnSuccess", source="source")
    with pytest.raises(InvalidParameterValue, match="does not exist"):
        destinations.validate_target(ARN + "missing", "OnFailure", source="source")
    with pytest.raises(InvalidParameterValue, match="destination for itself"):
        destinations.validate_target(ARN + "source", "OnFailure", source="source")


def test_services_not_served_yet_are_refused_with_a_clear_message(destinations):
    with pytest.raises(InvalidParameterValue, match="does not serve SQS queues yet"):
        destinations.validate_target("arn:aws:sqs:us-east-1:000000000000:q", "OnFailure")
    with pytest.raises(InvalidParameterValue, match="does not serve S3 buckets yet"):
        destinations.validate_target("arn:aws:s3:::bucket", "OnFailure")
    with pytest.raises(InvalidParameterValue, match="not supported"):
        destinations.validate_target("arn:aws:s3:::bucket", "OnSuccess")  # S3 takes failures only
    with pytest.raises(InvalidParameterValue, match="not supported"):
        destinations.validate_target(ARN + "target", "DeadLetterConfig")  # DLQs are SQS or SNS
    with pytest.raises(InvalidParameterValue, match="not a valid ARN"):
        destinations.validate_target("nonsense", "OnSuccess")


def test_a_new_kind_plugs_in_through_the_registry(destinations):
    delivered: list[Delivery] = []

    class Queue:
        def validate(self, arn: str, purpose: str, source: str | None) -> None:
            pass

        def deliver(self, arn: str, delivery: Delivery) -> Sequence[EventOp]:
            delivered.append(delivery)
            return []

    destinations.register("sqs", Queue())
    destinations.validate_target("arn:aws:sqs:us-east-1:000000000000:q", "DeadLetterConfig")
    assert destinations.deliver("arn:aws:sqs:us-east-1:000000000000:q", Delivery(b"x", event(), {})) == []
    assert delivered[0].body == b"x"
    with pytest.raises(LaminaError, match="sns"):
        destinations.deliver("arn:aws:sns:us-east-1:000000000000:t", Delivery(b"x", event(), {}))


def test_a_lambda_delivery_is_an_event_for_the_target(destinations):
    (op,) = destinations.deliver(ARN + "target", Delivery(b'{"r": 1}', event(), {}))
    assert isinstance(op, Enqueue)
    assert (op.event.function, op.event.payload, op.event.attempts) == ("target", b'{"r": 1}', 0)
    assert op.event.id != "req-1"


def test_the_record_has_aws_shape():
    body = destination_record(event(), Condition.RETRIES_EXHAUSTED, ARN + "source:$LATEST", b'{"k": 1}',
                              ("$LATEST", "Unhandled", b'{"errorMessage": "boom"}'))  # fmt: skip
    record = json.loads(body)
    assert record["version"] == "1.0" and record["timestamp"].endswith("Z")
    assert record["requestContext"] == {"requestId": "req-1", "functionArn": ARN + "source:$LATEST",
                                        "condition": "RetriesExhausted", "approximateInvokeCount": 3}  # fmt: skip
    assert record["requestPayload"] == {"k": 1}
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert record["responsePayload"] == {"errorMessage": "boom"}
    unrun = json.loads(destination_record(event(), Condition.EVENT_AGE_EXCEEDED, ARN + "source", b"{}", None))
    assert "responseContext" not in unrun and unrun["requestContext"]["condition"] == "EventAgeExceeded"


def test_configs_validate_ranges_and_merge_on_update(functions, destinations):
    configs = EventInvokeConfigs(Settings(interpreters={}), MemoryEventStore(), functions, destinations)
    with pytest.raises(InvalidParameterValue, match="at least one"):
        configs.put("source", None, ConfigChange())
    with pytest.raises(InvalidParameterValue, match="MaximumRetryAttempts"):
        configs.put("source", None, ConfigChange(maximum_retry_attempts=3))
    with pytest.raises(InvalidParameterValue, match="MaximumEventAgeInSeconds"):
        configs.put("source", None, ConfigChange(maximum_event_age=59))
    put = configs.put("source", None, ConfigChange(maximum_retry_attempts=0, on_failure=ARN + "target"))
    assert put.qualifier == "$LATEST" and configs.arn(put) == ARN + "source:$LATEST"
    merged = configs.update("source", None, ConfigChange(maximum_event_age=120))
    assert (merged.maximum_retry_attempts, merged.maximum_event_age, merged.on_failure) == (0, 120, ARN + "target")
    replaced = configs.put("source", None, ConfigChange(maximum_event_age=300))
    assert (replaced.maximum_retry_attempts, replaced.on_failure) == (None, None)  # Put removes what it omits
    assert configs.effective("source", None).maximum_event_age == 300
    configs.forget("source")
    assert configs.effective("source", None).maximum_event_age is None
