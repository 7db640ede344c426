"""Micro-benchmark: PutRecords wire cost per record, generic model-driven path vs the fast path.

    .venv/bin/python -m bench.put_records_wire [--records 500] [--size 100]

Generic = json.loads + shape decoder + validator (parse) and shape encoder + json.dumps (encode);
fast = lamina.api.services.kinesis_wire; floor = json.loads plus base64-decoding each Data, which
any Python parse pays. Prints µs per record for each step.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import time
from collections.abc import Callable
from typing import Any

import botocore.session

from lamina.api.protocols.json_ import JsonCodec
from lamina.api.services.kinesis_wire import encode_put_records, parse_put_records
from lamina.api.validation import Validator
from lamina.api.wire import HttpRequest


def per_record(fn: Callable[[], Any], records: int, seconds: float = 1.0) -> float:
    """Best-of-5 µs per record of `fn` (one call handles `records` records)."""
    best = float("inf")
    for _ in range(5):
        n, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / 5:
            fn()
            n += 1
        best = min(best, elapsed / n)
    return best / records * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--size", type=int, default=100, help="bytes of Data per record")
    args = parser.parse_args()
    model = botocore.session.get_session().get_service_model("kinesis")
    operation = model.operation_model("PutRecords")
    codec, validator = JsonCodec(model), Validator()
    records = [
        {"Data": base64.b64encode(os.urandom(args.size)).decode(), "PartitionKey": f"key-{i}"}
        for i in range(args.records)
    ]
    body = json.dumps({"StreamName": "bench", "Records": records}).encode()
    request = HttpRequest("POST", "/", "", {})
    request.body = body
    output = {
        "FailedRecordCount": 0,
        "Records": [
            {
                "SequenceNumber": str(49_650_000_000_000_000_000_000_000_000_000_000_000_000_000 + i),
                "ShardId": "shardId-000000000000",
            }
            for i in range(args.records)
        ],
        "EncryptionType": "NONE",
    }
    decoder = codec.shapes.decoder(operation.input_shape)
    encoder = codec.shapes.encoder(operation.output_shape)
    assert parse_put_records(body) == decoder(json.loads(body))
    assert encode_put_records(output) == codec.serialize_response(operation, output).body
    n = args.records
    doc = json.loads(body)
    decoded = decoder(doc)
    loads = per_record(lambda: json.loads(body), n)
    decode = per_record(lambda: decoder(doc), n)
    validate = per_record(lambda: validator.validate(operation, decoded), n)
    encode = per_record(lambda: json.dumps(encoder(output), separators=(",", ":")).encode(), n)
    fast_parse = per_record(lambda: parse_put_records(body), n)
    fast_encode = per_record(lambda: encode_put_records(output), n)
    texts = [r["Data"] for r in records]
    base64_only = per_record(lambda: list(map(binascii.a2b_base64, texts)), n)
    generic = loads + decode + validate + encode
    print(f"{n} records of {args.size} bytes, µs per record")
    print(f"generic: json.loads {loads:.3f} + decode {decode:.3f} + validate {validate:.3f} + encode {encode:.3f}")
    print(f"         = {generic:.3f}")
    print(f"fast:    parse {fast_parse:.3f} + encode {fast_encode:.3f} = {fast_parse + fast_encode:.3f}")
    print(f"floor:   json.loads {loads:.3f} + base64 decoding alone {base64_only:.3f} = {loads + base64_only:.3f}")


if __name__ == "__main__":
    main()
