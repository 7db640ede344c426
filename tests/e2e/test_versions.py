"""Versions and aliases through unmodified boto3 and the AWS CLI: snapshots, qualifiers, weighted routing."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from .conftest import LaminaServer, create, handler_zip, invoke_json

COUNTING = """
import os
COUNT = 0
def handler(event, context):
    global COUNT
    COUNT += 1
    return {"code": "%s", "count": COUNT, "pid": os.getpid(), "version": context.function_version,
            "arn": context.invoked_function_arn}
"""


def code(tag: str) -> bytes:
    return handler_zip(COUNTING % tag)


def deploy_versions(lam, name: str, tags: list[str]) -> list[str]:
    """$LATEST runs tags[-1]; version i+1 runs tags[i] for every tag but the last."""
    create(lam, name, "", ZipFile=code(tags[0]))
    versions = []
    for tag in tags[1:]:
        versions.append(lam.publish_version(FunctionName=name)["Version"])
        lam.update_function_code(FunctionName=name, ZipFile=code(tag))
    return versions


def error_of(excinfo) -> tuple[str, int, str]:
    err = excinfo.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Message"]


def test_publish_snapshots_code_and_configuration(lam, fresh_name):
    create(lam, fresh_name, "", ZipFile=code("one"), Description="first", MemorySize=256)
    v1 = lam.publish_version(FunctionName=fresh_name, Description="release one")
    assert v1["Version"] == "1"
    assert v1["FunctionArn"].endswith(f":function:{fresh_name}:1")
    assert v1["Description"] == "release one" and v1["MemorySize"] == 256
    latest = lam.get_function_configuration(FunctionName=fresh_name)
    assert v1["CodeSha256"] == latest["CodeSha256"] and v1["RevisionId"] != latest["RevisionId"]
    # Nothing changed since version 1: no new version.
    assert lam.publish_version(FunctionName=fresh_name)["Version"] == "1"

    lam.update_function_configuration(FunctionName=fresh_name, MemorySize=512)
    lam.get_waiter("function_updated_v2").wait(FunctionName=fresh_name)
    v2 = lam.publish_version(FunctionName=fresh_name)
    assert v2["Version"] == "2" and v2["MemorySize"] == 512
    got = lam.get_function_configuration(FunctionName=fresh_name, Qualifier="1")
    assert got["MemorySize"] == 256 and got["Version"] == "1" and got["FunctionArn"].endswith(":1")
    via_arn = lam.get_function(FunctionName=f"{latest['FunctionArn']}:2")
    assert via_arn["Configuration"]["Version"] == "2" and via_arn["Configuration"]["MemorySize"] == 512

    listed = lam.list_versions_by_function(FunctionName=fresh_name)["Versions"]
    assert [v["Version"] for v in listed] == ["$LATEST", "1", "2"]
    assert listed[0]["FunctionArn"].endswith(":$LATEST")
    page = lam.list_versions_by_function(FunctionName=fresh_name, MaxItems=2)
    assert [v["Version"] for v in page["Versions"]] == ["$LATEST", "1"]
    rest = lam.list_versions_by_function(FunctionName=fresh_name, Marker=page["NextMarker"])
    assert [v["Version"] for v in rest["Versions"]] == ["2"] and "NextMarker" not in rest

    every = lam.list_functions(FunctionVersion="ALL")["Functions"]
    mine = sorted(f["Version"] for f in every if f["FunctionName"] == fresh_name)
    assert mine == ["$LATEST", "1", "2"]
    assert sum(f["FunctionName"] == fresh_name for f in lam.list_functions()["Functions"]) == 1


def test_publish_preconditions(lam, fresh_name):
    create(lam, fresh_name, "", ZipFile=code("one"))
    latest = lam.get_function_configuration(FunctionName=fresh_name)
    with pytest.raises(ClientError) as excinfo:
        lam.publish_version(FunctionName=fresh_name, CodeSha256="bm90IHRoZSBjb2Rl")
    code_, status, message = error_of(excinfo)
    assert (code_, status) == ("PreconditionFailedException", 412) and "CodeSHA256" in message
    with pytest.raises(ClientError) as excinfo:
        lam.publish_version(FunctionName=fresh_name, RevisionId="00000000-0000-0000-0000-000000000000")
    assert error_of(excinfo)[:2] == ("PreconditionFailedException", 412)
    ok = lam.publish_version(FunctionName=fresh_name, CodeSha256=latest["CodeSha256"], RevisionId=latest["RevisionId"])
    assert ok["Version"] == "1"
    with pytest.raises(ClientError) as excinfo:
        lam.publish_version(FunctionName="no-such-function")
    assert error_of(excinfo)[:2] == ("ResourceNotFoundException", 404)


def test_publish_flags_on_create_and_update_code(lam, fresh_name):
    created = create(lam, fresh_name, "", ZipFile=code("one"), Publish=True)
    assert created["Version"] == "1" and created["FunctionArn"].endswith(":1")
    updated = lam.update_function_code(FunctionName=fresh_name, ZipFile=code("two"), Publish=True)
    assert updated["Version"] == "2"
    assert invoke_json(lam, fresh_name, Qualifier="1")[1]["code"] == "one"
    assert invoke_json(lam, fresh_name, Qualifier="2")[1]["code"] == "two"


def test_versions_keep_their_code_and_warm_environments_after_latest_changes(lam, fresh_name):
    assert deploy_versions(lam, fresh_name, ["one", "two"]) == ["1"]
    response, first = invoke_json(lam, fresh_name, Qualifier="1")
    assert response["ExecutedVersion"] == "1"
    assert first["code"] == "one" and first["version"] == "1" and first["arn"].endswith(f"{fresh_name}:1")
    response, latest = invoke_json(lam, fresh_name)
    assert response["ExecutedVersion"] == "$LATEST" and latest["code"] == "two"
    # Updating $LATEST twice must not disturb version 1's warm environment.
    lam.update_function_code(FunctionName=fresh_name, ZipFile=code("three"))
    lam.update_function_configuration(FunctionName=fresh_name, Environment={"Variables": {"XY": "1"}})
    _, again = invoke_json(lam, fresh_name, Qualifier="1")
    assert again["code"] == "one" and again["pid"] == first["pid"] and again["count"] == first["count"] + 1
    _, latest = invoke_json(lam, fresh_name)
    assert latest["code"] == "three" and latest["count"] == 1  # $LATEST cold-started
    with pytest.raises(ClientError) as excinfo:
        lam.invoke(FunctionName=fresh_name, Qualifier="7")
    code_, status, message = error_of(excinfo)
    assert (code_, status) == ("ResourceNotFoundException", 404) and message.endswith(f"function:{fresh_name}:7")


def test_alias_lifecycle_and_moving_traffic(lam, fresh_name):
    deploy_versions(lam, fresh_name, ["one", "two", "three"])
    alias = lam.create_alias(FunctionName=fresh_name, Name="live", FunctionVersion="1", Description="prod")
    assert alias["AliasArn"].endswith(f":function:{fresh_name}:live") and alias["FunctionVersion"] == "1"
    assert "RoutingConfig" not in alias
    response, body = invoke_json(lam, fresh_name, Qualifier="live")
    assert response["ExecutedVersion"] == "1" and body["code"] == "one"
    assert body["arn"].endswith(f"{fresh_name}:live") and body["version"] == "1"
    # The alias as part of the name, and its configuration through the alias.
    _, body = invoke_json(lam, f"{fresh_name}:live")
    assert body["code"] == "one"
    conf = lam.get_function_configuration(FunctionName=fresh_name, Qualifier="live")
    assert conf["Version"] == "1" and conf["FunctionArn"].endswith(":live")

    moved = lam.update_alias(FunctionName=fresh_name, Name="live", FunctionVersion="2")
    assert moved["RevisionId"] != alias["RevisionId"] and moved["Description"] == "prod"
    response, body = invoke_json(lam, fresh_name, Qualifier="live")
    assert response["ExecutedVersion"] == "2" and body["code"] == "two"

    with pytest.raises(ClientError) as excinfo:
        lam.update_alias(FunctionName=fresh_name, Name="live", FunctionVersion="1", RevisionId=alias["RevisionId"])
    assert error_of(excinfo)[:2] == ("PreconditionFailedException", 412)

    lam.create_alias(FunctionName=fresh_name, Name="beta", FunctionVersion="$LATEST")
    listed = lam.list_aliases(FunctionName=fresh_name)["Aliases"]
    assert [(a["Name"], a["FunctionVersion"]) for a in listed] == [("beta", "$LATEST"), ("live", "2")]
    assert [a["Name"] for a in lam.list_aliases(FunctionName=fresh_name, FunctionVersion="2")["Aliases"]] == ["live"]
    page = lam.list_aliases(FunctionName=fresh_name, MaxItems=1)
    assert [a["Name"] for a in page["Aliases"]] == ["beta"]
    assert [a["Name"] for a in lam.list_aliases(FunctionName=fresh_name, Marker=page["NextMarker"])["Aliases"]] == [
        "live"
    ]
    assert invoke_json(lam, fresh_name, Qualifier="beta")[1]["code"] == "three"

    lam.delete_alias(FunctionName=fresh_name, Name="beta")
    with pytest.raises(ClientError) as excinfo:
        lam.get_alias(FunctionName=fresh_name, Name="beta")
    code_, status, message = error_of(excinfo)
    assert (code_, status) == ("ResourceNotFoundException", 404) and message.endswith(f"{fresh_name}:beta")
    with pytest.raises(ClientError) as excinfo:
        lam.invoke(FunctionName=fresh_name, Qualifier="beta")
    assert error_of(excinfo)[:2] == ("ResourceNotFoundException", 404)


def test_alias_validation(lam, fresh_name):
    deploy_versions(lam, fresh_name, ["one", "two", "three"])
    lam.create_alias(FunctionName=fresh_name, Name="live", FunctionVersion="1")
    cases = [
        (dict(Name="live", FunctionVersion="1"), "ResourceConflictException", 409),
        (dict(Name="123", FunctionVersion="1"), None, 400),  # all digits: the name of a version
        (dict(Name="ghost", FunctionVersion="9"), "ResourceNotFoundException", 404),
        (
            dict(Name="w1", FunctionVersion="$LATEST", RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}}),
            "InvalidParameterValueException",
            400,
        ),
        (
            dict(Name="w2", FunctionVersion="1", RoutingConfig={"AdditionalVersionWeights": {"2": 0.1, "3": 0.1}}),
            "InvalidParameterValueException",
            400,
        ),
        (
            dict(Name="w3", FunctionVersion="1", RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}}),
            "InvalidParameterValueException",
            400,
        ),
        (
            dict(Name="w4", FunctionVersion="1", RoutingConfig={"AdditionalVersionWeights": {"8": 0.5}}),
            "ResourceNotFoundException",
            404,
        ),
        (
            dict(Name="w5", FunctionVersion="1", RoutingConfig={"AdditionalVersionWeights": {"2": 1.5}}),
            None,
            400,
        ),
    ]
    for kwargs, expected_code, expected_status in cases:
        with pytest.raises(ClientError) as excinfo:
            lam.create_alias(FunctionName=fresh_name, **kwargs)
        code_, status, _ = error_of(excinfo)
        assert status == expected_status, (kwargs, code_)
        if expected_code:
            assert code_ == expected_code, kwargs
    assert [a["Name"] for a in lam.list_aliases(FunctionName=fresh_name)["Aliases"]] == ["live"]
    with pytest.raises(ClientError) as excinfo:
        lam.get_alias(FunctionName="no-such-function", Name="live")
    assert error_of(excinfo)[:2] == ("ResourceNotFoundException", 404)


def test_weighted_alias_routes_in_proportion(lam, fresh_name):
    deploy_versions(lam, fresh_name, ["one", "two", "three"])
    alias = lam.create_alias(
        FunctionName=fresh_name,
        Name="canary",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.3}},
    )
    assert alias["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.3}}
    n = 600
    counts = {"1": 0, "2": 0}
    for _ in range(n):
        response, body = invoke_json(lam, fresh_name, Qualifier="canary")
        assert body["code"] == {"1": "one", "2": "two"}[response["ExecutedVersion"]]
        counts[response["ExecutedVersion"]] += 1
    # Binomial(600, 0.3): mean 180, sd 11.2; ±5 sd is a bound a correct router misses once in ~1.7M runs.
    assert 124 <= counts["2"] <= 236, counts
    # Clearing the weights sends everything to the primary version.
    lam.update_alias(FunctionName=fresh_name, Name="canary", RoutingConfig={"AdditionalVersionWeights": {}})
    assert "RoutingConfig" not in lam.get_alias(FunctionName=fresh_name, Name="canary")
    assert {invoke_json(lam, fresh_name, Qualifier="canary")[0]["ExecutedVersion"] for _ in range(30)} == {"1"}


def test_deleting_versions(lam, fresh_name):
    deploy_versions(lam, fresh_name, ["one", "two", "three"])
    lam.create_alias(FunctionName=fresh_name, Name="live", FunctionVersion="1")
    lam.update_alias(FunctionName=fresh_name, Name="live", RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
    for version in ("1", "2"):
        with pytest.raises(ClientError) as excinfo:
            lam.delete_function(FunctionName=fresh_name, Qualifier=version)
        code_, status, message = error_of(excinfo)
        assert (code_, status) == ("ResourceConflictException", 409) and "live" in message
    lam.delete_alias(FunctionName=fresh_name, Name="live")
    lam.delete_function(FunctionName=fresh_name, Qualifier="2")
    assert [v["Version"] for v in lam.list_versions_by_function(FunctionName=fresh_name)["Versions"]] == [
        "$LATEST",
        "1",
    ]
    with pytest.raises(ClientError) as excinfo:
        lam.invoke(FunctionName=fresh_name, Qualifier="2")
    assert error_of(excinfo)[:2] == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as excinfo:
        lam.delete_function(FunctionName=fresh_name, Qualifier="2")
    assert error_of(excinfo)[:2] == ("ResourceNotFoundException", 404)
    # Numbers are never reused: the next version after a deleted 2 is 3.
    lam.update_function_code(FunctionName=fresh_name, ZipFile=code("four"))
    assert lam.publish_version(FunctionName=fresh_name)["Version"] == "3"
    assert invoke_json(lam, fresh_name, Qualifier="1")[1]["code"] == "one"
    # Deleting the function removes versions and aliases with it.
    lam.create_alias(FunctionName=fresh_name, Name="keep", FunctionVersion="3")
    lam.delete_function(FunctionName=fresh_name)
    create(lam, fresh_name, "", ZipFile=code("reborn"))
    assert [v["Version"] for v in lam.list_versions_by_function(FunctionName=fresh_name)["Versions"]] == ["$LATEST"]
    assert lam.list_aliases(FunctionName=fresh_name)["Aliases"] == []
    assert lam.publish_version(FunctionName=fresh_name)["Version"] == "1"


def test_aws_cli_publish_alias_and_qualified_invoke(server, lam, fresh_name, tmp_path):
    create(lam, fresh_name, "", ZipFile=code("one"))
    published = json.loads(server.aws_cli("lambda", "publish-version", "--function-name", fresh_name).stdout)
    assert published["Version"] == "1"
    server.aws_cli("lambda", "create-alias", "--function-name", fresh_name, "--name", "live", "--function-version", "1")
    out = tmp_path / "out.json"
    result = json.loads(
        server.aws_cli("lambda", "invoke", "--function-name", fresh_name, "--qualifier", "live", str(out)).stdout
    )
    assert result["ExecutedVersion"] == "1" and json.loads(out.read_text())["code"] == "one"


def test_versions_and_aliases_survive_kill_9(tmp_path):
    server = LaminaServer(tmp_path / "data").start()
    try:
        lam = server.client("lambda")
        deploy_versions(lam, "durable", ["one", "two"])
        lam.create_alias(FunctionName="durable", Name="live", FunctionVersion="1")
        server.kill9()
        server.restart()
        lam = server.client("lambda")
        assert lam.get_alias(FunctionName="durable", Name="live")["FunctionVersion"] == "1"
        response, body = invoke_json(lam, "durable", Qualifier="live")
        assert response["ExecutedVersion"] == "1" and body["code"] == "one"
        assert invoke_json(lam, "durable")[1]["code"] == "two"
        lam.update_function_code(FunctionName="durable", ZipFile=code("three"))
        assert lam.publish_version(FunctionName="durable")["Version"] == "2"
    finally:
        server.stop()
