"""SigV4 is verified when credentials are configured; Lamina refuses to listen openly without them."""

from __future__ import annotations

import subprocess

import pytest
from botocore.exceptions import ClientError

from .conftest import LAMINA, LaminaServer, create, invoke_json


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    env = {"LAMINA_ACCESS_KEY_ID": "AKIDLAMINATEST", "LAMINA_SECRET_ACCESS_KEY": "s3cr3t"}
    instance = LaminaServer(tmp_path_factory.mktemp("secured") / "data", env=env).start()
    yield instance
    instance.stop()


def test_signed_requests_with_the_right_secret_pass(secured):
    lam = secured.client(key="AKIDLAMINATEST", secret="s3cr3t")
    create(
        lam,
        "signed",
        "import boto3\ndef handler(e, c):\n    return boto3.client('lambda').list_functions()['Functions'][0]['FunctionName']\n",
        Timeout=30,
    )
    # the function's own boto3 calls are signed with credentials Lamina accepts
    assert invoke_json(lam, "signed")[1] == "signed"


def test_wrong_secret_and_unknown_key_are_refused(secured):
    with pytest.raises(ClientError) as exc:
        secured.client(key="AKIDLAMINATEST", secret="wrong").list_functions()
    assert exc.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as exc:
        secured.client(key="SOMEONEELSE", secret="s3cr3t").list_functions()
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_unsigned_private_routes_are_refused_when_secured(secured):
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(f"{secured.endpoint}/_lamina/cost", timeout=10)
    assert exc.value.code == 403


def test_refuses_public_bind_without_credentials(tmp_path):
    result = subprocess.run([LAMINA, "up", "--host", "0.0.0.0", "--port", "0", "--data-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"})  # fmt: skip
    assert result.returncode != 0 and "refusing to listen on 0.0.0.0" in result.stderr


def test_unsigned_requests_accepted_on_loopback_without_credentials(tmp_path):
    server = LaminaServer(tmp_path / "data").start()
    try:
        assert "Functions" in server.client(key="anything", secret="at-all").list_functions()
    finally:
        server.stop()


def test_lamina_cli_signs_its_own_routes(secured):
    import os

    env = {**os.environ, "LAMINA_ENDPOINT": secured.endpoint, "LAMINA_ACCESS_KEY_ID": "AKIDLAMINATEST"}
    good = subprocess.run([LAMINA, "cost"], capture_output=True, text=True, timeout=60,
                          env={**env, "LAMINA_SECRET_ACCESS_KEY": "s3cr3t"})  # fmt: skip
    assert good.returncode == 0 and "TOTAL" in good.stdout
    bad = subprocess.run([LAMINA, "cost"], capture_output=True, text=True, timeout=60,
                         env={**env, "LAMINA_SECRET_ACCESS_KEY": "wrong"})  # fmt: skip
    assert bad.returncode != 0 and "InvalidSignatureException" in bad.stderr
