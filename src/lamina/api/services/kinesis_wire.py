"""A hand-written wire path for Kinesis `PutRecords`, the hot ingest call (up to 500 records).

Why: the model-driven path costs ~2 µs a record in Python (shape decoder, validator, shape
encoder, each walking every record in interpreted code); at tens of thousands of records a
second that is most of the server's time. Here the common request is checked and decoded with a
few C-level passes over the whole batch (`map`, `itemgetter`, `binascii`); the output is checked
the same way, and the usual one (every record a success) is written from pieces. Measured with
`python -m bench.put_records_wire`: ~0.7 µs a record for parse + encode, against ~2.1.

The contract is the edge's `FastPath`: `parse` returns exactly the params that `JsonCodec`
parsing plus `Validator` would produce and accept, or None for anything else, so the generic path
answers unusual or invalid requests with its exact errors; `encode` returns exactly the bytes of
`JsonCodec.serialize_response`, or None. What it mirrors (botocore's kinesis model
PutRecordsInput, and the generic path's semantics):

- the body goes through the same `json.loads`; the document must have exactly `StreamName` and
  `Records` (StreamARN, StreamId, DryRun, unknown keys or nulls fall back);
- StreamName: 1-128 characters matching `[a-zA-Z0-9_.-]+`;
- Records: a list of 1-500 objects, each with exactly `Data` and `PartitionKey` (and optionally
  `ExplicitHashKey`), all strings, no nulls;
- PartitionKey: 1-256 UTF-16 code units, as the validator counts (lone surrogates fall back: the
  generic decoder refuses them as malformed input, decision 0021); ExplicitHashKey matches
  `0|([1-9]\\d{0,38})` (ASCII digits);
- Data: `binascii.a2b_base64` without strict mode, which is what `base64.b64decode` (the generic
  `decode_blob`) runs, non-ASCII text being an error for both; decoded size is not checked,
  because the validator checks no blob maximums (the service enforces its 1 MiB record limit).

tests/unit/api/test_kinesis_wire.py checks both directions against the generic path.
"""

from __future__ import annotations

import json
import re
from binascii import a2b_base64
from collections import deque
from collections.abc import Mapping
from itertools import chain, repeat
from operator import itemgetter, setitem
from typing import Any

from lamina.api.app import FastPath

MAX_RECORDS = 500
MAX_KEY_UNITS = 256  # PartitionKey max, in UTF-16 code units

_STREAM_NAME = re.compile(r"[a-zA-Z0-9_.-]{1,128}", re.ASCII)
_HASH_KEY = re.compile(r"0|[1-9][0-9]{0,38}", re.ASCII)
_TOP_KEYS = frozenset({"StreamName", "Records"})
_ENTRY_KEYS = frozenset({"Data", "PartitionKey"})
_ENTRY_KEYS_HASHED = frozenset({"Data", "PartitionKey", "ExplicitHashKey"})
_DICT = frozenset({dict})
_STR = frozenset({str})
_TWO = frozenset({2})
_OUT_KEYS = frozenset({"FailedRecordCount", "Records", "EncryptionType"})
_RESULT_KEYS = frozenset({"SequenceNumber", "ShardId", "ErrorCode", "ErrorMessage"})
_OUT_ORDER = ("FailedRecordCount", "Records", "EncryptionType")
_SEQUENCE_FIRST = frozenset({"SequenceNumber"})
_VERBATIM = re.compile(r"[ !#-\[\]-~]*")  # what json.dumps (ensure_ascii) writes unescaped
_sequence = itemgetter("SequenceNumber")
_shard = itemgetter("ShardId")
_data = itemgetter("Data")
_key = itemgetter("PartitionKey")


def parse_put_records(body: bytes) -> dict[str, Any] | None:
    """PutRecords params from a request body, or None when the generic path must decide."""
    try:
        doc = json.loads(body)
    except Exception:  # malformed, or too deep: the generic path words the error
        return None
    if type(doc) is not dict or doc.keys() != _TOP_KEYS:
        return None
    name, records = doc["StreamName"], doc["Records"]
    if type(name) is not str or _STREAM_NAME.fullmatch(name) is None:
        return None
    if type(records) is not list or not 0 < len(records) <= MAX_RECORDS:
        return None
    if not _DICT.issuperset(map(type, records)):
        return None
    if not _TWO.issuperset(map(len, records)):
        return _parse_one_by_one(doc, records)
    try:  # two keys each: both lookups succeeding means exactly Data and PartitionKey
        data, keys = list(map(_data, records)), list(map(_key, records))
        ascii_keys = "".join(keys).isascii()  # a TypeError unless all are strings
    except (KeyError, TypeError):
        return None
    if ascii_keys and max(map(len, keys)) <= MAX_KEY_UNITS and "" not in keys:
        pass  # ASCII: one UTF-16 unit a character
    elif not all(map(_key_fits, keys)):
        return None
    try:
        decoded = list(map(a2b_base64, data))
    except (ValueError, TypeError):  # bad base64 or non-ASCII text; not a string (JSON has no bytes)
        return None
    deque(map(setitem, records, repeat("Data"), decoded), maxlen=0)  # in place, at C speed
    return doc


def _key_fits(key: str) -> bool:
    if key.isascii():
        return 0 < len(key) <= MAX_KEY_UNITS
    try:
        units = len(key.encode("utf-16-le")) // 2
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return 0 < units <= MAX_KEY_UNITS


def _parse_one_by_one(doc: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The batch has entries other than {Data, PartitionKey}: ExplicitHashKey, or to fall back."""
    decoded = []
    for entry in records:
        keys = entry.keys()
        if keys == _ENTRY_KEYS_HASHED:
            hash_key = entry["ExplicitHashKey"]
            if type(hash_key) is not str or _HASH_KEY.fullmatch(hash_key) is None:
                return None
        elif keys != _ENTRY_KEYS:
            return None
        data, key = entry["Data"], entry["PartitionKey"]
        if type(data) is not str or type(key) is not str or not _key_fits(key):
            return None
        try:
            decoded.append(a2b_base64(data))
        except ValueError:
            return None
    for entry, blob in zip(records, decoded, strict=True):
        entry["Data"] = blob
    return doc


def encode_put_records(output: Mapping[str, Any]) -> bytes | None:
    """The PutRecords response body for a handler's output, or None when the generic encoder
    must write it.

    The generic encoder copies each known member's value as is (strings and integers need no
    conversion), in the handler's order, leaving out nulls and unknown keys. The usual output,
    every record a success, is written from pieces; any other goes to `json.dumps` as it is,
    which is the same document whenever there are no unknown keys and no nulls."""
    if type(output) is not dict:
        return None
    if tuple(output) == _OUT_ORDER:
        body = _encode_successes(output)
        if body is not None:
            return body
    return _encode_checked(output)


def _encode_successes(output: dict[str, Any]) -> bytes | None:
    """{FailedRecordCount, Records, EncryptionType}, each record {SequenceNumber, ShardId} in that
    order, sequence numbers all digits and the other strings needing no JSON escapes; else None."""
    count, records, encryption = output["FailedRecordCount"], output["Records"], output["EncryptionType"]
    if type(count) is not int or type(records) is not list or type(encryption) is not str:
        return None
    if not _DICT.issuperset(map(type, records)) or not _TWO.issuperset(map(len, records)):
        return None
    if not _SEQUENCE_FIRST.issuperset(map(next, map(iter, records))):
        return None
    try:  # two keys, SequenceNumber first: both lookups succeeding means (SequenceNumber, ShardId)
        sequences, shards = list(map(_sequence, records)), list(map(_shard, records))
        digits = "".join(sequences)  # and a TypeError unless all are strings, as below
        if not all(_VERBATIM.fullmatch(shard) for shard in set(shards)):
            return None
    except (KeyError, TypeError):
        return None
    # Sequence numbers are decimal, and ASCII digits need no escapes.
    if not (digits.isascii() and digits.encode().isdigit()) or _VERBATIM.fullmatch(encryption) is None:
        return None
    if records:
        parts = ['"},{"SequenceNumber":"', "", '","ShardId":"', ""] * len(records)
        parts[0] = '[{"SequenceNumber":"'
        parts[1::4], parts[3::4] = sequences, shards
        parts.append('"}]')
    else:
        parts = ["[]"]
    return f'{{"FailedRecordCount":{count},"Records":{"".join(parts)},"EncryptionType":"{encryption}"}}'.encode()


def _encode_checked(output: dict[str, Any]) -> bytes | None:
    """`json.dumps` of the output itself, when it has no unknown keys and no nulls (a null shows
    as `null` in the text; a false alarm, e.g. in an error message, only costs the slow path)."""
    if not _OUT_KEYS.issuperset(output):
        return None
    records = output.get("Records")
    if records is not None:
        if type(records) is not list or not _DICT.issuperset(map(type, records)):
            return None
        if not _RESULT_KEYS.issuperset(chain.from_iterable(records)):
            return None
    try:
        text = json.dumps(output, separators=(",", ":"))
    except (TypeError, ValueError):  # not JSON at all: the generic encoder raises its own error
        return None
    if "null" in text:
        return None
    return text.encode()


PUT_RECORDS = FastPath(parse_put_records, encode_put_records)
