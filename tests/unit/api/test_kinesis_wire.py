"""The PutRecords fast path against the generic path it stands in for.

Whenever `parse_put_records` answers, the generic path (JsonCodec parse + Validator, built as the
edge builds them) must accept the body and give an equal dict; whenever `encode_put_records`
answers, it must give `serialize_response`'s bytes. Valid bodies must take the fast path.
"""

from __future__ import annotations

import base64
import json
import random
import string
from typing import Any

import botocore.session
import pytest

from lamina.api.protocols.json_ import JsonCodec
from lamina.api.services.kinesis_wire import PUT_RECORDS, encode_put_records, parse_put_records
from lamina.api.validation import Validator
from lamina.api.wire import HttpRequest
from lamina.errors import LaminaError

from .botocore_wire import build

MODEL = botocore.session.get_session().get_service_model("kinesis")
OPERATION = MODEL.operation_model("PutRecords")
CODEC = JsonCodec(MODEL)
VALIDATOR = Validator()
ASTRAL = "\U0001f600"  # two UTF-16 code units
MAX_HASH = str(2**128 - 1)


def generic_parse(body: bytes) -> dict[str, Any] | LaminaError:
    request = HttpRequest("POST", "/", "", {"x-amz-target": "Kinesis_20131202.PutRecords"}, body)
    try:
        params = CODEC.parse_request(OPERATION, request, {})
        VALIDATOR.validate(OPERATION, params)
    except LaminaError as exc:
        return exc
    return params


def agree(body: bytes | str | Any) -> tuple[dict[str, Any] | None, dict[str, Any] | LaminaError | Exception]:
    """Both paths on one body (a document is JSON-encoded first); the fast one must not differ."""
    if not isinstance(body, bytes | str):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    fast = parse_put_records(body)
    try:
        generic: dict[str, Any] | Exception = generic_parse(body)
    except Exception as exc:  # e.g. a lone surrogate the validator cannot measure: a 500
        generic = exc
    if fast is not None:
        assert not isinstance(generic, Exception), (body[:200], generic)
        assert fast == generic
        assert all(type(r["Data"]) is bytes for r in fast["Records"])
    return fast, generic


def valid(body: Any) -> dict[str, Any]:
    fast, generic = agree(body)
    assert fast is not None, generic
    return fast


def invalid(body: Any) -> None:
    fast, generic = agree(body)
    assert fast is None
    assert isinstance(generic, LaminaError), generic


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def doc(records: list[Any], name: Any = "s", **extra: Any) -> dict[str, Any]:
    return {"StreamName": name, "Records": records, **extra}


def rec(data: bytes = b"d", key: str = "k", **extra: Any) -> dict[str, Any]:
    return {"Data": b64(data), "PartitionKey": key, **extra}


def random_key(rng: random.Random) -> str:
    alphabet = string.printable + "é漢字" + ASTRAL + '"\\\u2028\x00'
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60)))


# -- parse: bodies the fast path takes ------------------------------------------------------------


def test_valid_bodies_take_the_fast_path_and_equal_the_generic_params():
    rng = random.Random(7)
    for n in (1, 2, 17, 499, 500):
        records = [rec(rng.randbytes(rng.randint(0, 300)), random_key(rng)) for _ in range(n)]
        params = valid(doc(records, "stream_name-1.x"))
        assert len(params["Records"]) == n
        assert params["StreamName"] == "stream_name-1.x"


def test_boundaries_that_are_still_valid():
    valid(doc([rec(b"", "k")]))  # empty Data ""
    valid(doc([rec(b"x", "k" * 256)]))
    valid(doc([rec(b"x", "é" * 256)]))
    valid(doc([rec(b"x", ASTRAL * 128)]))  # 256 UTF-16 units
    valid(doc([rec(b"x", "k")], "n" * 128))
    valid(doc([rec(b"x" * 100_000, "k")]))  # Data size is the service's to check, not the model's
    valid(doc([rec(b"x", "k", ExplicitHashKey=h) for h in ("0", "7", MAX_HASH, "9" * 39)]))
    valid(doc([rec(b"a", "k"), rec(b"b", "k", ExplicitHashKey="12")]))
    valid({"Records": [rec()], "StreamName": "s"})  # key order does not matter
    assert valid(doc([rec(b"\x00\xff" * 3, "k")]))["Records"][0]["Data"] == b"\x00\xff" * 3


def test_bodies_as_boto3_and_other_sdks_write_them():
    records = [{"Data": b64(b"hello"), "PartitionKey": "p\u00e9"}]
    valid(json.dumps(doc(records)))  # \u escapes, spaces
    valid(json.dumps(doc(records), ensure_ascii=False))  # raw UTF-8
    valid(json.dumps(doc(records), separators=(",", ":")))
    valid(json.dumps(doc(records), indent=2))
    valid(json.dumps(doc([{"Data": "aGk=", "PartitionKey": 'a/b\\c"d'}])))


def test_the_body_boto3_sends_takes_the_fast_path():
    records = [
        {"Data": b"\x00data", "PartitionKey": "cl\u00e9"},
        {"Data": b"", "PartitionKey": "k", "ExplicitHashKey": "5"},
    ]
    request = build("kinesis", "PutRecords", {"StreamName": "s", "Records": records})
    assert valid(request.body)["Records"] == records


def test_bodies_in_utf16_and_utf32_agree():
    """json.loads reads UTF-16/32 bodies too; their text can hold astral characters in ASCII bytes."""
    for encoding in ("utf-16", "utf-16-le", "utf-32-le", "utf-32-be"):
        valid(json.dumps(doc([rec(key=ASTRAL * 128)]), ensure_ascii=False).encode(encoding))
        invalid(json.dumps(doc([rec(key=ASTRAL * 129)]), ensure_ascii=False).encode(encoding))
        invalid(json.dumps(doc([rec(key="\U00010041" * 200)]), ensure_ascii=False).encode(encoding))


def test_base64_is_accepted_exactly_as_the_generic_decoder_accepts_it():
    rng = random.Random(3)
    alphabet = string.ascii_letters + string.digits + "+/=-_ \n.*é"
    samples = ["", "=", "==", "QQ", "QQ=", "QQ==", "QQ===", "Q", "QUJD", "QUJD\n", " QUJD", "QU JD", "QR==", "Q=Q="]
    samples += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(400)]
    taken = 0
    for text in samples:
        fast, _ = agree(doc([{"Data": text, "PartitionKey": "k"}]))
        taken += fast is not None
    assert taken > 50  # lenient decoding is mirrored, not refused
    agree(doc([{"Data": text, "PartitionKey": "k"} for text in samples[:500]]))


# -- parse: bodies left to the generic path ------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        doc([]),
        doc([rec()] * 501),
        doc([rec(key="")]),
        doc([rec(key="k" * 257)]),
        doc([rec(key="é" * 257)]),
        doc([rec(key=ASTRAL * 128 + "k")]),  # 257 UTF-16 units in 129 characters
        doc([{"Data": 5, "PartitionKey": "k"}]),
        doc([{"Data": ["aGk="], "PartitionKey": "k"}]),
        doc([{"Data": True, "PartitionKey": "k"}]),
        doc([{"Data": "aGk=", "PartitionKey": 5}]),
        doc([{"Data": "Q", "PartitionKey": "k"}]),  # 1 more than a multiple of 4
        doc([{"Data": "aGké", "PartitionKey": "k"}]),  # non-ASCII
        doc([{"PartitionKey": "k"}]),
        doc([{"Data": None, "PartitionKey": "k"}]),
        doc([rec(ExplicitHashKey="01")]),
        doc([rec(ExplicitHashKey="")]),
        doc([rec(ExplicitHashKey="1" * 40)]),
        doc([rec(ExplicitHashKey="-1")]),
        doc([rec(ExplicitHashKey="1\n")]),
        doc([rec(ExplicitHashKey="\u0661")]),  # an Arabic-Indic digit: \d is ASCII in Java
        doc([rec(ExplicitHashKey=1)]),
        doc([rec()], name=""),
        doc([rec()], name="a b"),
        doc([rec()], name="n" * 129),
        doc([rec()], name="ñ"),
        doc([rec()], name="s\n"),
        doc([rec()], name=5),
        doc("not a list"),
        doc({"Data": "aGk=", "PartitionKey": "k"}),
        doc([rec(), "entry"]),
        doc([rec(), 5]),
        doc([rec(), ["Data", "PartitionKey"]]),
        [rec()],
        "string",
        5,
        None,
        {},
        {"Records": None, "StreamName": "s"},
        {"Records": [rec()], "StreamARN": "not an arn"},
    ],
    ids=lambda body: json.dumps(body)[:60],
)
def test_invalid_bodies_fall_back_to_the_generic_error(body):
    invalid(body)


@pytest.mark.parametrize("body", [b"", b"{", b"{}}", b"\xff\xfe", b'{"Records": [}'])
def test_malformed_bodies_fall_back(body):
    invalid(body)


def test_too_deep_a_body_falls_back():
    fast, _ = agree(b"[" * 100_000)  # the generic json.loads raises RecursionError here: a 500
    assert fast is None


@pytest.mark.parametrize(
    "body",
    [
        doc([rec(Extra=1)]),  # unknown keys are ignored by the generic path
        doc([rec()], Extra="x"),
        doc([rec()], StreamARN="arn:aws:kinesis:us-east-1:123456789012:stream/s"),
        doc([rec()], StreamId="abcdefghij0123456789-abc"),
        doc([rec()], DryRun=False),
        doc([rec()], name=None),
        {"Records": [rec()]},  # no StreamName: the handler's error
        doc([rec(ExplicitHashKey=None)]),  # null means absent
        doc([rec(key=None)]),
        doc([{"Data": "aGk="}]),  # PartitionKey is not `required` in the model
        doc([rec(), None]),
        json.dumps(doc([rec()])).replace('"k"', '"k\\ud800"'),  # a lone surrogate: the validator fails
        json.dumps(doc([rec()])).replace('"Data"', '"Data": "eA==", "Data"'),  # duplicate keys: last wins
        json.dumps(doc([rec()])).replace('"s"', '"s", "StreamName": "t"'),
    ],
    ids=lambda body: (body if isinstance(body, str) else json.dumps(body))[:60],
)
def test_odd_but_accepted_bodies_agree_when_taken(body):
    agree(body)


def test_mutated_bodies_agree():
    """Random edits of valid bodies, at the document and at the byte level."""
    rng = random.Random(11)
    values = [None, "", "x", "aGk=", "QQ", 0, 1.5, True, [], {}, "k" * 257, ASTRAL * 129, "\u0663", "01", MAX_HASH]
    keys = ["Data", "PartitionKey", "ExplicitHashKey", "StreamName", "Records", "Other"]
    for _ in range(600):
        records = [rec(rng.randbytes(rng.randint(0, 20)), random_key(rng)) for _ in range(rng.randint(1, 6))]
        body = doc(records)
        for _ in range(rng.randint(0, 3)):
            target = body if rng.random() < 0.3 else rng.choice(records)
            key = rng.choice(keys)
            if rng.random() < 0.3 and key in target:
                del target[key]
            else:
                target[key] = rng.choice(values)
        text = json.dumps(body)
        agree(text)
        if text:
            cut = rng.randrange(len(text))
            agree(text[:cut] + rng.choice(' "{}[],:\\0aQ=é') + text[cut + 1 :])


# -- encode ----------------------------------------------------------------------------------------


def generic_encode(output: dict[str, Any]) -> bytes:
    return CODEC.serialize_response(OPERATION, output).body


def agree_encoded(output: Any) -> bytes | None:
    fast = encode_put_records(output)
    if fast is not None:
        assert fast == generic_encode(output)
    return fast


def success(seq: int, shard: int = 0) -> dict[str, str]:
    return {"SequenceNumber": str(49_650_000_000_000_000_000_000_000 + seq), "ShardId": f"shardId-{shard:012d}"}


def failure(code: str = "ProvisionedThroughputExceededException", message: str = "Rate exceeded") -> dict[str, str]:
    return {"ErrorCode": code, "ErrorMessage": message}


def output(records: list[Any], failed: int | None = None) -> dict[str, Any]:
    if failed is None:
        failed = sum(1 for r in records if r and "ErrorCode" in r)
    return {"FailedRecordCount": failed, "Records": records, "EncryptionType": "NONE"}


def test_handler_outputs_take_the_fast_encoder_and_equal_the_generic_bytes():
    rng = random.Random(5)
    for n in (1, 2, 100, 500):
        assert agree_encoded(output([success(i, rng.randrange(8)) for i in range(n)])) is not None
        mixed = [success(i) if rng.random() < 0.8 else failure() for i in range(n)]
        assert agree_encoded(output(mixed)) is not None
    assert agree_encoded(output([failure("InternalFailure", "Internal service failure.")] * 3)) is not None
    assert agree_encoded(output([failure(message='quote " back\\slash é \x01 \u2028 ' + ASTRAL)])) is not None


def test_unusual_outputs_are_written_as_the_generic_encoder_writes_them_or_left_to_it():
    samples: list[Any] = [
        {},
        output([]),
        output([success(1)], failed=True),
        output([success(1)], failed=1.0),
        {"Records": [success(1)], "FailedRecordCount": 0, "EncryptionType": "NONE"},  # another order
        {"FailedRecordCount": 0, "Records": [success(1)]},
        {"FailedRecordCount": 0, "Records": [success(1)], "EncryptionType": "KMS", "Extra": 1},
        {"FailedRecordCount": None, "Records": [success(1)], "EncryptionType": "NONE"},
        output([{"ShardId": "shardId-000000000000", "SequenceNumber": "1"}]),  # members reversed
        output([{"SequenceNumber": "1"}]),
        output([{"SequenceNumber": "1", "ShardId": None}]),
        output([{"SequenceNumber": "1", "ShardId": "s", "Extra": "x"}]),
        output([{"SequenceNumber": "1", "Other": "s"}]),
        output([{"SequenceNumber": 1, "ShardId": "s"}]),
        output([{"SequenceNumber": "1a", "ShardId": "s"}]),
        output([{"SequenceNumber": "\u0661", "ShardId": "s"}]),
        output([{"SequenceNumber": "1", "ShardId": 'sh"ard'}]),
        output([{"SequenceNumber": "1", "ShardId": "é"}]),
        output([{"SequenceNumber": "1", "ShardId": "\x7f"}]),
        output([{"SequenceNumber": "1", "ShardId": ""}]),
        output([success(1), None]),
        output([failure(message="null")]),
        output([failure(message=None)]),
        output([{"ErrorCode": "X"}]),
        output([success(1)]) | {"EncryptionType": 'N"ONE'},
        output((success(1),)),  # a tuple, not a list
        output([failure(message=object())]),  # not JSON: the generic encoder's error
    ]
    for sample in samples:
        agree_encoded(sample)


def test_random_outputs_agree():
    rng = random.Random(13)
    pieces = ["1", "0", "", "shardId-000000000001", "é", '"', "\\", "\x00", "null", "a b", ASTRAL, None, 5]
    names = ["SequenceNumber", "ShardId", "ErrorCode", "ErrorMessage", "Unknown"]
    taken = 0
    for _ in range(500):
        records = []
        for i in range(rng.randint(0, 5)):
            record = success(i) if rng.random() < 0.6 else failure()
            if rng.random() < 0.3:
                record[rng.choice(names)] = rng.choice(pieces)
            if rng.random() < 0.1:
                record = dict(reversed(record.items()))
            records.append(record)
        sample = output(records, failed=rng.choice([0, 1, len(records), None, True]))
        if rng.random() < 0.2:
            sample[rng.choice(["EncryptionType", "Extra", "FailedRecordCount"])] = rng.choice(pieces)
        taken += agree_encoded(sample) is not None
    assert taken > 100


def test_the_registered_hook_is_these_functions():
    assert PUT_RECORDS.parse is parse_put_records and PUT_RECORDS.encode is encode_put_records
