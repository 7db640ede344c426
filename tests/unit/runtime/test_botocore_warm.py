"""Zygotes that preload boto3 warm botocore's static data (service models, endpoint rule sets,
endpoints, partitions); a handler's clients must still be made from the function's own
environment: endpoint, region, credentials, execution env, data path and home."""

from __future__ import annotations

import json
import os

from lamina.model.invocation import Outcome

from .conftest import call, make_pool, make_spec

CLIENT = """
import gc, os, boto3, botocore.loaders, botocore.session

class Sent(Exception):
    pass

captured = {}

def capture(request, **kwargs):
    captured["url"] = request.url
    captured["auth"] = request.headers["Authorization"].decode()
    captured["token"] = request.headers["X-Amz-Security-Token"].decode()
    captured["ua"] = request.headers["User-Agent"].decode()
    raise Sent()  # nothing leaves the machine

client = boto3.client("lambda")
client.meta.events.register("before-send", capture)
try:
    client.list_functions()
except Sent:
    pass

def seeded():
    # A fresh session's loader: its cache is empty unless the zygote's warm data seeded it.
    return len(botocore.session.get_session().get_component("data_loader")._cache)

fresh = seeded()
home_models = os.path.join(os.environ["HOME"], ".aws", "models")
customer = botocore.loaders.Loader.CUSTOMER_DATA_PATH
os.makedirs(home_models)  # models of the function's own: the warm data no longer applies
with_home_models = seeded()
os.rmdir(home_models)
os.environ["AWS_DATA_PATH"] = os.environ["LAMBDA_TASK_ROOT"]
with_data_path = seeded()
del os.environ["AWS_DATA_PATH"]
dynamodb = boto3.client("dynamodb").meta.region_name  # works from the warm data too

def handler(event, context):
    return {
        "captured": captured, "region": client.meta.region_name, "dynamodb": dynamodb,
        "fresh": fresh, "with_home_models": with_home_models, "with_data_path": with_data_path,
        "customer": customer, "home_models": home_models, "frozen": gc.get_freeze_count(),
    }
"""


def _function(name: str, region: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": f"http://{name}.invalid:9",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": f"AKID{name.upper()}",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_SESSION_TOKEN": f"token-{name}",
    }


def test_clients_are_made_from_each_functions_own_environment(runner, pool):
    specs = {
        name: make_spec(CLIENT, preload=("boto3",), env_vars=_function(name, region))
        for name, region in (("first", "eu-west-3"), ("second", "ap-southeast-2"))
    }
    for name, spec in specs.items():
        result = runner.run(call(pool, spec))
        assert result.outcome is Outcome.SUCCESS, result.payload
        out = json.loads(result.payload)
        region = spec.env_vars["AWS_REGION"]
        captured = out["captured"]
        assert captured["url"] == f"http://{name}.invalid:9/2015-03-31/functions"
        assert (
            f"Credential=AKID{name.upper()}/" in captured["auth"]
            and f"/{region}/lambda/aws4_request" in captured["auth"]
        )
        assert captured["token"] == f"token-{name}"
        assert f"exec-env/AWS_Lambda_{spec.runtime}" in captured["ua"]
        assert out["region"] == out["dynamodb"] == region
        # The warm data was used, and only where a fresh process would read the same files.
        assert out["fresh"] > 0
        assert out["with_home_models"] == 0 and out["with_data_path"] == 0
        assert out["customer"] == out["home_models"]  # ~ is the function's HOME, not the zygote's
        assert out["frozen"] > 0  # the zygote's heap stays out of the environment's collections
    assert pool._plans[specs["first"].key].zygote.services == pool.preload_services != ()


def test_no_services_no_warm_data(runner, tmp_path):
    cold = make_pool(tmp_path, preload_services=())
    try:
        spec = make_spec(CLIENT, preload=("boto3",), env_vars=_function("cold", "us-west-2"))
        result = runner.run(call(cold, spec))
        out = json.loads(result.payload)
        assert result.outcome is Outcome.SUCCESS, result.payload
        assert out["fresh"] == 0
        assert out["captured"]["url"] == "http://cold.invalid:9/2015-03-31/functions"
    finally:
        runner.run(cold.close())


def test_a_bundled_botocore_is_not_warmed(runner, pool):
    """A function that ships botocore gets a zygote without preloads, hence without warm data."""
    spec = make_spec(
        "import botocore.session\ndef handler(e, c):\n    return botocore.session.marker\n",
        preload=("boto3",),
        files={"botocore/__init__.py": "", "botocore/session.py": "marker = 'bundled'\n"},
    )
    result = runner.run(call(pool, spec))
    assert json.loads(result.payload) == "bundled"
    assert pool._plans[spec.key].zygote.preload == ()
    assert os.path.isdir(spec.code_dir / "botocore")
