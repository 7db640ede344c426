"""Every operation of whole services, both ways, with values generated from the model.

Inputs: a value for every member → botocore's serializer → our router and parser → the same
value. Outputs: the same through our serializer and botocore's parser.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.model import Shape

from lamina.api.protocols import codec_for
from lamina.api.routing import router_for

from ..botocore_wire import http_request, model, parse

WHEN = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)  # whole seconds: RFC 822 headers drop fractions


def example(shape: Shape, depth: int = 0, location: str | None = None) -> Any:
    kind = shape.type_name
    if kind == "structure":
        if shape.is_document_type:
            return {"doc": [1, "two", {"three": None}]}
        members = list(shape.members.items())
        if shape.metadata.get("union"):
            members = members[:1]
        out = {}
        for name, member in members:
            if depth > 3 and name not in shape.required_members:
                continue
            if member.serialization.get("eventstream") or (
                member.type_name == "blob" and member.serialization.get("location") == "header"
            ):
                continue
            out[name] = example(member, depth + 1, member.serialization.get("location"))
        return out
    if kind == "list":
        return [example(shape.member, depth + 1, location), example(shape.member, depth + 1, location)]
    if kind == "map":
        key = "key-1" if location != "headers" else "meta-1"
        return {key: example(shape.value, depth + 1)}
    if kind == "string":
        enum = shape.enum
        if enum:
            return enum[0]
        if shape.serialization.get("jsonvalue"):
            return {"json": ["value", 1]}
        return "text, with/odd chars=&?" if location not in ("uri", "header") else "label-1"
    if kind in ("integer", "long"):
        return 42
    if kind in ("float", "double"):
        return 1.5
    if kind == "boolean":
        return True
    if kind == "blob":
        return b"\x00\xffblob"
    if kind == "timestamp":
        return WHEN
    raise AssertionError(kind)


SERVICES = ["lambda", "kinesis", "logs", "sqs", "dynamodb"]


def _cases(side: str) -> list[tuple[str, str]]:
    """Operations with an input (or output) shape that is not an event stream."""
    cases = []
    for service in SERVICES:
        for name in model(service).operation_names:
            shape = getattr(model(service).operation_model(name), f"{side}_shape")
            if shape is not None and not any(m.serialization.get("eventstream") for m in shape.members.values()):
                cases.append((service, name))
    return cases


@pytest.mark.parametrize(("service", "operation"), _cases("input"))
def test_inputs_round_trip(service, operation):
    m = model(service)
    op = m.operation_model(operation)
    params = example(op.input_shape)
    request = http_request(service, operation, params, validate=False)
    match = router_for(m, m.resolved_protocol).match(request)
    assert match is not None and match.operation == operation
    assert codec_for(m).parse_request(op, request, match.labels) == params


@pytest.mark.parametrize(("service", "operation"), _cases("output"))
def test_outputs_round_trip(service, operation):
    m = model(service)
    op = m.operation_model(operation)
    shape = op.output_shape
    output = example(shape)
    status_member = next(
        (n for n, mem in shape.members.items() if mem.serialization.get("location") == "statusCode"), None
    )
    if status_member:
        output[status_member] = 200
    payload = shape.serialization.get("payload")
    if payload and shape.members[payload].type_name == "blob":
        output[payload] = b'{"raw": "bytes"}'  # botocore's test-time parser decodes it as UTF-8
    parsed = parse(service, operation, codec_for(m).serialize_response(op, output))
    parsed.pop("ResponseMetadata")
    if payload and shape.members[payload].type_name == "blob":
        assert parsed.pop(payload).encode() == output.pop(payload)  # a stream in boto3
    assert parsed == output
