"""The edge under uvicorn on a free port, driven by real boto3 and the real AWS CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from lamina.api.app import EdgeApp
from lamina.api.server import BackgroundServer
from lamina.api.wire import HttpRequest, HttpResponse
from lamina.config import Settings
from lamina.errors import TooManyRequests

ACCOUNT_SETTINGS = {
    "AccountLimit": {
        "TotalCodeSize": 80530636800,
        "CodeSizeUnzipped": 262144000,
        "CodeSizeZipped": 52428800,
        "ConcurrentExecutions": 1000,
        "UnreservedConcurrentExecutions": 1000,
    },
    "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": 0},
}


async def get_account_settings(ctx, params):
    return ACCOUNT_SETTINGS


async def invoke(ctx, params):
    if params["FunctionName"] == "busy":
        raise TooManyRequests("Rate Exceeded.", "ReservedFunctionConcurrentInvocationLimitExceeded")
    echo = {
        "function": params["FunctionName"],
        "event": json.loads(params.get("Payload") or b"null"),
        "region": ctx.region,
        "caller": ctx.access_key_id,
    }
    return {
        "StatusCode": 200,
        "Payload": json.dumps(echo).encode(),
        "LogResult": "U1RBUlQ=",
        "ExecutedVersion": params.get("Qualifier") or "$LATEST",
    }


async def health(request: HttpRequest) -> HttpResponse:
    return HttpResponse(200, {"Content-Type": "application/json"}, b'{"status":"ok"}')


@pytest.fixture(scope="module")
def server():
    app = EdgeApp(Settings(access_key_id="AKIDEXAMPLE", secret_access_key="s3cr3t", interpreters={}))
    app.register_service("lambda", {"GetAccountSettings": get_account_settings, "Invoke": invoke})
    app.register_route("/_lamina/health", health)
    with BackgroundServer(app) as running:
        yield running


def client(server, secret: str = "s3cr3t"):
    return boto3.client(
        "lambda",
        endpoint_url=server.url,
        region_name="eu-central-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}),
    )


def test_boto3_signed_calls(server):
    lam = client(server)
    got = lam.get_account_settings()
    got.pop("ResponseMetadata")
    assert got == ACCOUNT_SETTINGS
    arn = "arn:aws:lambda:eu-central-1:000000000000:function:echo"
    response = lam.invoke(FunctionName=arn, Qualifier="live", Payload=b'{"n": 1}', LogType="Tail")
    assert json.loads(response["Payload"].read()) == {
        "function": arn,
        "event": {"n": 1},
        "region": "eu-central-1",
        "caller": "AKIDEXAMPLE",
    }
    assert (response["StatusCode"], response["ExecutedVersion"], response["LogResult"]) == (200, "live", "U1RBUlQ=")


def test_boto3_sees_modeled_errors(server):
    with pytest.raises(ClientError) as info:
        client(server).invoke(FunctionName="busy")
    assert info.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert info.value.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"


def test_boto3_wrong_secret(server):
    with pytest.raises(ClientError) as info:
        client(server, secret="wrong").get_account_settings()
    assert info.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_boto3_unimplemented_operation(server):
    with pytest.raises(ClientError) as info:
        client(server).list_functions()
    assert info.value.response["Error"]["Code"] == "NotImplemented"


def test_plain_route(server):
    with urllib.request.urlopen(server.url + "/_lamina/health", timeout=10) as response:
        assert json.loads(response.read()) == {"status": "ok"}


def _aws(server, *args: str, secret: str = "s3cr3t") -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_MAX_ATTEMPTS": "1",
    }
    env.pop("AWS_PROFILE", None)
    aws = Path(sys.executable).with_name("aws")
    return subprocess.run(
        [str(aws), "--endpoint-url", server.url, *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_aws_cli(server):
    done = _aws(server, "lambda", "get-account-settings")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ACCOUNT_SETTINGS
    refused = _aws(server, "lambda", "get-account-settings", secret="wrong")
    assert refused.returncode != 0
    assert "InvalidSignatureException" in refused.stderr
