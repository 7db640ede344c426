"""STS and IAM at the edge in-process, with a clock we control: temporary credentials work until
they expire, then every service answers ExpiredToken."""

from __future__ import annotations

import asyncio
import calendar
import json
from datetime import UTC, datetime
from unittest import mock

from botocore.auth import SigV4Auth
from botocore.credentials import Credentials

from lamina.api.app import EdgeApp
from lamina.api.auth import Authenticator
from lamina.api.services.iam import IamApi
from lamina.api.services.sts import StsApi, api_credentials
from lamina.config import Settings
from lamina.iam import IamService, TokenService
from lamina.store.memory_iam import MemoryIamStore

from .botocore_wire import build, parse, to_http

SETTINGS = Settings(access_key_id="ROOT", secret_access_key="root-secret", account_id="123456789012", interpreters={})
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})  # fmt: skip
START = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


class Clock:
    now = float(calendar.timegm(START.timetuple()))

    def __call__(self) -> float:
        return self.now


def platform() -> tuple[EdgeApp, Clock]:
    clock = Clock()
    store = MemoryIamStore()
    iam = IamService(store, SETTINGS.account_id, clock=clock)
    tokens = TokenService(iam, store, SETTINGS.access_key_id, clock=clock)
    app = EdgeApp(SETTINGS, api_credentials(SETTINGS, tokens))
    app.authenticator = Authenticator(app.authenticator.lookup, clock=clock)
    app.register_service("sts", StsApi(tokens).handlers())
    app.register_service("iam", IamApi(iam, tokens).handlers())
    return app, clock


def call(app: EdgeApp, clock: Clock, service: str, operation: str, params: dict, creds: Credentials):
    request = build(service, operation, params)
    signed_at = datetime.fromtimestamp(clock.now, UTC).replace(tzinfo=None)
    with mock.patch("botocore.auth.get_current_datetime", return_value=signed_at):
        SigV4Auth(creds, service, "us-east-1").add_auth(request)
    return parse(service, operation, asyncio.run(app.handle(to_http(request))))


def test_assumed_credentials_expire():
    app, clock = platform()
    root = Credentials("ROOT", "root-secret")
    role = call(app, clock, "iam", "CreateRole", {"RoleName": "exec", "AssumeRolePolicyDocument": TRUST}, root)
    assumed = call(app, clock, "sts", "AssumeRole",
                   {"RoleArn": role["Role"]["Arn"], "RoleSessionName": "s1", "DurationSeconds": 900}, root)  # fmt: skip
    creds = assumed["Credentials"]
    assert creds["Expiration"].timestamp() == clock.now + 900
    temporary = Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    clock.now += 899
    identity = call(app, clock, "sts", "GetCallerIdentity", {}, temporary)
    assert identity["Arn"] == "arn:aws:sts::123456789012:assumed-role/exec/s1"
    clock.now += 2
    expired = call(app, clock, "sts", "GetCallerIdentity", {}, temporary)
    assert expired["Error"]["Code"] == "ExpiredToken"
    assert expired["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert expired["Error"]["Message"] == "The security token included in the request is expired"


def test_policy_documents_travel_url_encoded():
    app, clock = platform()
    root = Credentials("ROOT", "root-secret")
    call(app, clock, "iam", "CreateRole", {"RoleName": "exec", "AssumeRolePolicyDocument": TRUST}, root)
    request = build("iam", "GetRole", {"RoleName": "exec"})
    signed_at = datetime.fromtimestamp(clock.now, UTC).replace(tzinfo=None)
    with mock.patch("botocore.auth.get_current_datetime", return_value=signed_at):
        SigV4Auth(root, "iam", "us-east-1").add_auth(request)
    body = asyncio.run(app.handle(to_http(request))).body.decode()
    assert "<AssumeRolePolicyDocument>%7B%22Version%22%3A%20%222012-10-17%22" in body
