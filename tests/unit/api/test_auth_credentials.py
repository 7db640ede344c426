"""Credential lookups beyond the configured key pair: IAM access keys and STS sessions, whose
requests carry a session token (botocore's signer, our verifier), and the query protocol signed."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.credentials import Credentials

from lamina.api.auth import Authenticator, Secret, chain_credentials, parse_signature, static_credentials
from lamina.errors import ExpiredToken, InvalidSignature, UnrecognizedClient

from .botocore_wire import build, to_http

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


def signed(key: str, secret: str, token: str | None = None, service: str = "sts"):
    request = build(service, "GetCallerIdentity", {}) if service == "sts" else build(service, "ListFunctions", {})
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        SigV4Auth(Credentials(key, secret, token), service, "us-east-1").add_auth(request)
    return to_http(request)


def issued(key: str) -> str | Secret | None:
    if key == "ASIAEXPIRED":
        raise ExpiredToken("The security token included in the request is expired")
    return {"AKIAUSER": "user-secret", "ASIATEMP": Secret("temp-secret", "the-token")}.get(key)


AUTH = Authenticator(
    chain_credentials(static_credentials({"ROOT": "root-secret"}), issued),
    clock=lambda: calendar.timegm(NOW.timetuple()),
)


def verify(http) -> str | None:
    return AUTH.authenticate(http, parse_signature(http))


def test_every_source_of_keys_verifies():
    assert verify(signed("ROOT", "root-secret")) == "ROOT"
    assert verify(signed("AKIAUSER", "user-secret")) == "AKIAUSER"
    assert verify(signed("ASIATEMP", "temp-secret", "the-token")) == "ASIATEMP"
    assert verify(signed("AKIAUSER", "user-secret", service="lambda")) == "AKIAUSER"


def test_wrong_secrets_and_unknown_keys_are_refused():
    with pytest.raises(InvalidSignature):
        verify(signed("AKIAUSER", "root-secret"))
    with pytest.raises(UnrecognizedClient):
        verify(signed("AKIAGONE", "user-secret"))


def test_temporary_keys_need_their_session_token():
    with pytest.raises(UnrecognizedClient):
        verify(signed("ASIATEMP", "temp-secret"))
    with pytest.raises(UnrecognizedClient):
        verify(signed("ASIATEMP", "temp-secret", "another-token"))
    with pytest.raises(ExpiredToken):
        verify(signed("ASIAEXPIRED", "x", "the-token"))
