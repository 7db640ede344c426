"""SigV4: requests signed by botocore's own signer, verified by ours."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from unittest import mock

import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from lamina.api.auth import MISMATCH, Authenticator, parse_signature, static_credentials
from lamina.errors import IncompleteSignature, InvalidSignature, MissingAuthentication, UnrecognizedClient

from .botocore_wire import build, sign, to_http

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
ARN = "arn:aws:lambda:us-east-1:123456789012:function:my-function"


def authenticator(now: datetime = NOW) -> Authenticator:
    return Authenticator(static_credentials({"AKID": "SECRET"}), clock=lambda: calendar.timegm(now.timetuple()))


def signed(operation: str, params: dict, *, secret: str = "SECRET", at: datetime = NOW, key: str = "AKID"):
    request = build("lambda", operation, params)
    with mock.patch("botocore.auth.get_current_datetime", return_value=at.replace(tzinfo=None)):
        sign(request, "lambda", key=key, secret=secret)
    return to_http(request)


def verify(http, now: datetime = NOW) -> str | None:
    return authenticator(now).authenticate(http, parse_signature(http))


def test_good_signatures_verify_and_name_the_caller():
    assert verify(signed("GetAccountSettings", {})) == "AKID"
    assert verify(signed("Invoke", {"FunctionName": ARN + ":live", "Payload": b'{"a": 1}', "Qualifier": "live"})) == (
        "AKID"
    )
    assert verify(signed("TagResource", {"Resource": ARN, "Tags": {"k": "v w"}})) == "AKID"
    assert verify(signed("UntagResource", {"Resource": ARN, "TagKeys": ["a b", "c/d", "e&f=g"]})) == "AKID"
    assert verify(signed("ListFunctions", {"MaxItems": 5, "Marker": "a+b/c=="})) == "AKID"


def test_scope_gives_region_and_service():
    request = build("lambda", "GetAccountSettings", {})
    sign(request, "lambda", region="eu-west-3")
    signature = parse_signature(to_http(request))
    assert (signature.region, signature.service, signature.access_key) == ("eu-west-3", "lambda", "AKID")


def test_wrong_secret_is_rejected_with_aws_wording():
    with pytest.raises(InvalidSignature) as info:
        verify(signed("GetAccountSettings", {}, secret="WRONG"))
    assert info.value.message == MISMATCH
    assert info.value.status == 403 and info.value.code == "InvalidSignatureException"


def test_tampered_body_path_query_or_header_is_rejected():
    http = signed("Invoke", {"FunctionName": "f", "Payload": b'{"amount": 1}'})
    http.body = b'{"amount": 9}'
    with pytest.raises(InvalidSignature):
        verify(http)
    http = signed("GetFunction", {"FunctionName": "f"})
    http.raw_path = http.raw_path.replace("/f", "/g")
    with pytest.raises(InvalidSignature):
        verify(http)
    http = signed("ListFunctions", {"MaxItems": 5})
    http.query = "MaxItems=50"
    with pytest.raises(InvalidSignature):
        verify(http)
    http = signed("Invoke", {"FunctionName": "f", "InvocationType": "Event"})
    http.headers["x-amz-invocation-type"] = "RequestResponse"
    with pytest.raises(InvalidSignature):
        verify(http)


def test_declared_payload_hash_must_match_the_body():
    request = build("lambda", "Invoke", {"FunctionName": "f", "Payload": b"{}"})
    request.headers["X-Amz-Content-SHA256"] = "0" * 64
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        sign(request, "lambda")
    with pytest.raises(InvalidSignature):
        verify(to_http(request))


def test_unknown_key_and_unsigned_requests():
    with pytest.raises(UnrecognizedClient, match=r"The security token included in the request is invalid\."):
        verify(signed("GetAccountSettings", {}, key="OTHER"))
    unsigned = to_http(build("lambda", "GetAccountSettings", {}))
    with pytest.raises(MissingAuthentication, match="Missing Authentication Token"):
        verify(unsigned)


def test_stale_and_future_dates_are_rejected():
    http = signed("GetAccountSettings", {}, at=datetime(2026, 5, 1, 11, 44, 0, tzinfo=UTC))
    with pytest.raises(InvalidSignature) as info:
        verify(http)
    assert info.value.message == (
        "Signature expired: 20260501T114400Z is now earlier than 20260501T114500Z (20260501T120000Z - 15 min.)"
    )
    assert verify(signed("GetAccountSettings", {}, at=datetime(2026, 5, 1, 11, 46, 0, tzinfo=UTC))) == "AKID"
    with pytest.raises(InvalidSignature, match="Signature not yet current"):
        verify(signed("GetAccountSettings", {}, at=datetime(2026, 5, 1, 12, 16, 0, tzinfo=UTC)))


def presigned(expires: int = 300, secret: str = "SECRET") -> AWSRequest:
    request = AWSRequest(method="GET", url="http://127.0.0.1:4566/_lamina/code/abc.zip?part=1")
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        SigV4QueryAuth(Credentials("AKID", secret), "lambda", "us-east-1", expires=expires).add_auth(request)
    return request


def test_presigned_urls_verify_until_they_expire():
    http = to_http(presigned())
    assert "X-Amz-Signature=" in http.query and "authorization" not in http.headers
    assert verify(http) == "AKID"
    later = datetime(2026, 5, 1, 12, 5, 1, tzinfo=UTC)
    with pytest.raises(InvalidSignature, match="Signature expired"):
        verify(http, now=later)
    with pytest.raises(InvalidSignature):
        verify(to_http(presigned(secret="WRONG")))
    tampered = to_http(presigned())
    tampered.query = tampered.query.replace("part=1", "part=2")
    with pytest.raises(InvalidSignature):
        verify(tampered)


def test_malformed_authorization_headers():
    http = signed("GetAccountSettings", {})
    http.headers["authorization"] = "AWS4-HMAC-SHA256 Credential=AKID/20260501/us-east-1/lambda/aws4_request"
    with pytest.raises(IncompleteSignature, match="requires 'Signature' parameter"):
        parse_signature(http)
    http.headers["authorization"] = "AWS AKID:c2lnbmF0dXJl"
    with pytest.raises(IncompleteSignature):
        parse_signature(http)


def test_scope_date_must_match_the_request_date():
    http = signed("GetAccountSettings", {})
    http.headers["authorization"] = http.headers["authorization"].replace("/20260501/", "/20260430/")
    with pytest.raises(InvalidSignature, match="Date in Credential scope does not match"):
        verify(http)


def test_open_mode_accepts_anything_and_still_reports_the_key():
    open_auth = Authenticator(None)
    http = signed("GetAccountSettings", {}, secret="anything", key="SOMEONE")
    assert open_auth.authenticate(http, parse_signature(http)) == "SOMEONE"
    unsigned = to_http(build("lambda", "GetAccountSettings", {}))
    assert open_auth.authenticate(unsigned, parse_signature(unsigned)) is None
