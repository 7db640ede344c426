"""Concurrency through unmodified boto3: reserved pools and their throttles, the account's
unreserved minimum, the scaling rate, provisioned concurrency (no cold start)."""

from __future__ import annotations

import base64
import json
import threading
import time

import pytest
from botocore.exceptions import ClientError

from .conftest import LaminaServer, create, handler_zip, invoke_json
from .test_cli import lamina

SLEEPER = """
import os, time
def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {"pid": os.getpid(), "init_type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE")}
"""


def throttle_of(call) -> dict:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert response["Error"]["Code"] == "TooManyRequestsException"
    return response


def started_in_background(call, count: int) -> tuple[list[threading.Thread], list]:
    results: list = []

    def run() -> None:
        try:
            results.append(call())
        except ClientError as exc:
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads, results


def wait_running(server: LaminaServer, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while server.health().get("concurrent_invocations", 0) < count:
        assert time.monotonic() < deadline, f"{count} invocations never ran at once: {server.health()}"
        time.sleep(0.02)


def test_reserved_zero_throttles_every_invoke(lam, fresh_name):
    create(lam, fresh_name, SLEEPER)
    assert (
        lam.put_function_concurrency(FunctionName=fresh_name, ReservedConcurrentExecutions=0)[
            "ReservedConcurrentExecutions"
        ]
        == 0
    )
    response = throttle_of(lambda: lam.invoke(FunctionName=fresh_name, Payload=b"{}"))
    assert response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert response["Error"]["Message"] == "Rate Exceeded."
    assert lam.get_function_concurrency(FunctionName=fresh_name)["ReservedConcurrentExecutions"] == 0

    lam.delete_function_concurrency(FunctionName=fresh_name)
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=fresh_name)
    response, body = invoke_json(lam, fresh_name)
    assert response["StatusCode"] == 200 and body["init_type"] == "on-demand"


def test_reservation_caps_the_function_and_leaves_others_alone(server, lam, fresh_name):
    other = fresh_name + "-other"
    create(lam, fresh_name, SLEEPER)
    create(lam, other, SLEEPER)
    lam.put_function_concurrency(FunctionName=fresh_name, ReservedConcurrentExecutions=2)
    slow = json.dumps({"sleep": 1.5}).encode()
    threads, results = started_in_background(lambda: lam.invoke(FunctionName=fresh_name, Payload=slow), 2)
    wait_running(server, 2)
    response = throttle_of(lambda: lam.invoke(FunctionName=fresh_name, Payload=b"{}"))
    assert response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert invoke_json(lam, other)[0]["StatusCode"] == 200  # another function is not throttled
    for thread in threads:
        thread.join()
    assert [r["StatusCode"] for r in results] == [200, 200]
    assert invoke_json(lam, fresh_name)[0]["StatusCode"] == 200  # the pool is free again


def test_reservations_keep_the_unreserved_minimum(lam, fresh_name):
    create(lam, fresh_name, SLEEPER)
    account = lam.get_account_settings()["AccountLimit"]
    total = account["ConcurrentExecutions"]
    floor = min(100, total // 10)  # Settings.min_unreserved_concurrency's default
    with pytest.raises(ClientError) as caught:
        lam.put_function_concurrency(FunctionName=fresh_name, ReservedConcurrentExecutions=total - floor + 1)
    error = caught.value.response["Error"]
    assert error["Code"] == "InvalidParameterValueException"
    assert error["Message"] == (
        "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution "
        f"below its minimum value of [{floor}]."
    )
    with pytest.raises(ClientError) as caught:
        lam.put_function_concurrency(FunctionName=fresh_name + "-missing", ReservedConcurrentExecutions=1)
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_reservations_show_in_get_function_and_account_settings(lam, fresh_name):
    create(lam, fresh_name, SLEEPER)
    assert "Concurrency" not in lam.get_function(FunctionName=fresh_name)
    before = lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]
    lam.put_function_concurrency(FunctionName=fresh_name, ReservedConcurrentExecutions=3)
    assert lam.get_function(FunctionName=fresh_name)["Concurrency"] == {"ReservedConcurrentExecutions": 3}
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == before - 3
    lam.delete_function_concurrency(FunctionName=fresh_name)
    assert "Concurrency" not in lam.get_function(FunctionName=fresh_name)
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == before


def test_deleting_the_function_drops_its_reservation(lam, fresh_name):
    create(lam, fresh_name, SLEEPER)
    lam.put_function_concurrency(FunctionName=fresh_name, ReservedConcurrentExecutions=0)
    lam.delete_function(FunctionName=fresh_name)
    create(lam, fresh_name, SLEEPER)
    got = lam.get_function_concurrency(FunctionName=fresh_name)
    assert set(got) == {"ResponseMetadata"}  # `{}`: no reservation
    assert invoke_json(lam, fresh_name)[0]["StatusCode"] == 200


def test_provisioned_concurrency_on_latest_is_refused(lam, fresh_name):
    create(lam, fresh_name, SLEEPER)
    for qualifier in ("$LATEST",):
        with pytest.raises(ClientError) as caught:
            lam.put_provisioned_concurrency_config(
                FunctionName=fresh_name, Qualifier=qualifier, ProvisionedConcurrentExecutions=1
            )
        assert caught.value.response["Error"]["Code"] == "InvalidParameterValueException"
        assert caught.value.response["Error"]["Message"] == (
            "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
        )
    with pytest.raises(ClientError) as caught:
        lam.get_provisioned_concurrency_config(FunctionName=fresh_name, Qualifier="1")
    assert caught.value.response["Error"]["Code"] == "ProvisionedConcurrencyConfigNotFoundException"


def wait_status(lam, name: str, qualifier: str, status: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        config = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)
        if config["Status"] == status:
            return config
        assert time.monotonic() < deadline, f"never {status}: {config}"
        time.sleep(0.05)


def report_of(response) -> str:
    return next(line for line in base64.b64decode(response["LogResult"]).decode().splitlines() if "REPORT" in line)


def test_provisioned_environments_serve_without_a_cold_start(server, lam, fresh_name):
    create(lam, fresh_name, "print('initialising')\n" + SLEEPER)
    version = lam.publish_version(FunctionName=fresh_name)["Version"]
    put = lam.put_provisioned_concurrency_config(
        FunctionName=fresh_name, Qualifier=version, ProvisionedConcurrentExecutions=2
    )
    assert put["RequestedProvisionedConcurrentExecutions"] == 2
    assert put["Status"] in ("IN_PROGRESS", "READY")
    ready = wait_status(lam, fresh_name, version, "READY")
    assert ready["AllocatedProvisionedConcurrentExecutions"] == 2
    assert ready["AvailableProvisionedConcurrentExecutions"] == 2
    assert server.health()["provisioned"] >= 2
    # The init output is logged when the environments are allocated, once per environment.
    deadline = time.monotonic() + 5
    while True:
        messages = [e["message"] for e in server.get_json(f"/_lamina/logs/{fresh_name}")["events"]]
        if messages.count("initialising") == 2:
            break
        assert time.monotonic() < deadline, messages
        time.sleep(0.05)
    assert sum(m.startswith("INIT_START") for m in messages) == 2

    response, body = invoke_json(lam, fresh_name, Qualifier=version, LogType="Tail")
    assert body["init_type"] == "provisioned-concurrency"
    report = report_of(response)
    assert "Init Duration" not in report, report
    assert "initialising" not in base64.b64decode(response["LogResult"]).decode()
    # $LATEST is not provisioned: its first invoke is a cold start in an on-demand environment.
    response, body = invoke_json(lam, fresh_name, LogType="Tail")
    assert body["init_type"] == "on-demand" and "Init Duration" in report_of(response)

    listed = lam.list_provisioned_concurrency_configs(FunctionName=fresh_name)["ProvisionedConcurrencyConfigs"]
    assert [c["FunctionArn"].rsplit(":", 1)[1] for c in listed] == [version]
    lam.delete_provisioned_concurrency_config(FunctionName=fresh_name, Qualifier=version)
    assert lam.list_provisioned_concurrency_configs(FunctionName=fresh_name)["ProvisionedConcurrencyConfigs"] == []
    deadline = time.monotonic() + 5
    while server.health()["provisioned"] != 0:
        assert time.monotonic() < deadline, server.health()
        time.sleep(0.05)


def test_deleting_the_version_deletes_its_configuration(server, lam, fresh_name):
    create(lam, fresh_name, SLEEPER)
    version = lam.publish_version(FunctionName=fresh_name)["Version"]
    lam.put_provisioned_concurrency_config(
        FunctionName=fresh_name, Qualifier=version, ProvisionedConcurrentExecutions=1
    )
    wait_status(lam, fresh_name, version, "READY")
    lam.delete_function(FunctionName=fresh_name, Qualifier=version)
    deadline = time.monotonic() + 5
    while lam.list_provisioned_concurrency_configs(FunctionName=fresh_name)["ProvisionedConcurrencyConfigs"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    while server.health()["provisioned"] != 0:
        assert time.monotonic() < deadline, server.health()
        time.sleep(0.05)


def test_provisioned_init_failure_is_reported(lam, fresh_name):
    create(lam, fresh_name, "raise RuntimeError('no init for you')\ndef handler(event, context):\n    return 1\n")
    version = lam.publish_version(FunctionName=fresh_name)["Version"]
    lam.put_provisioned_concurrency_config(
        FunctionName=fresh_name, Qualifier=version, ProvisionedConcurrentExecutions=1
    )
    failed = wait_status(lam, fresh_name, version, "FAILED")
    assert failed["StatusReason"] == "FUNCTION_ERROR_INIT_FAILURE"
    assert failed["AllocatedProvisionedConcurrentExecutions"] == 0


def test_scaling_rate_throttles_cold_starts_not_warm_reuse(tmp_path):
    # One new environment per 10 s: the bucket refills a token in 10 s, far longer than the few
    # hundred milliseconds between the two calls below even on a loaded machine, and the first
    # invocation holds its environment for 2.5 s so the second cannot reuse it.
    with LaminaServer(tmp_path / "data", env={"LAMINA_SCALING_RATE_PER_10S": "1"}) as server:
        lam = server.client("lambda")
        create(lam, "burst", SLEEPER)
        slow = json.dumps({"sleep": 2.5}).encode()  # under the 3 s timeout
        threads, results = started_in_background(lambda: lam.invoke(FunctionName="burst", Payload=slow), 1)
        wait_running(server, 1)
        # Its environment is starting (it has taken the token): a lease alone comes before that.
        deadline = time.monotonic() + 10
        while server.health()["starting"] + server.health()["busy"] < 1:
            assert time.monotonic() < deadline, server.health()
            time.sleep(0.01)
        response = throttle_of(lambda: lam.invoke(FunctionName="burst", Payload=b"{}"))
        assert response["Reason"] == "FunctionInvocationRateLimitExceeded"
        for thread in threads:
            thread.join()
        assert [r["StatusCode"] for r in results] == [200]
        # The warm environment is reused without a token, again and again.
        pids = {invoke_json(lam, "burst")[1]["pid"] for _ in range(3)}
        assert len(pids) == 1


VERSIONED = """
import os
def handler(event, context):
    return {"version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"],
            "init_type": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"], "mark": MARK}
"""


def test_provisioned_alias_follows_the_alias(server, lam, fresh_name):
    create(lam, fresh_name, "MARK = 1\n" + VERSIONED)
    one = lam.publish_version(FunctionName=fresh_name)["Version"]
    lam.update_function_code(FunctionName=fresh_name, ZipFile=handler_zip("MARK = 2\n" + VERSIONED))
    two = lam.publish_version(FunctionName=fresh_name)["Version"]
    lam.create_alias(FunctionName=fresh_name, Name="live", FunctionVersion=one)
    lam.put_provisioned_concurrency_config(FunctionName=fresh_name, Qualifier="live", ProvisionedConcurrentExecutions=1)
    wait_status(lam, fresh_name, "live", "READY")
    response, body = invoke_json(lam, fresh_name, Qualifier="live", LogType="Tail")
    assert body == {"version": one, "init_type": "provisioned-concurrency", "mark": 1}
    assert "Init Duration" not in report_of(response)

    lam.update_alias(FunctionName=fresh_name, Name="live", FunctionVersion=two)
    # The configuration follows the alias: version 2's environment is provisioned (version 1's goes).
    deadline = time.monotonic() + 20
    while True:
        response, body = invoke_json(lam, fresh_name, Qualifier="live", LogType="Tail")
        if body["init_type"] == "provisioned-concurrency" and body["mark"] == 2:
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.1)
    assert body["version"] == two
    assert wait_status(lam, fresh_name, "live", "READY")["AllocatedProvisionedConcurrentExecutions"] == 1
    lam.delete_function(FunctionName=fresh_name)
    deadline = time.monotonic() + 5
    while server.health()["provisioned"] != 0:
        assert time.monotonic() < deadline, server.health()
        time.sleep(0.05)


def test_a_weighted_alias_spreads_its_provisioned_environments_over_both_versions(server, lam, fresh_name):
    create(lam, fresh_name, "MARK = 1\n" + VERSIONED)
    one = lam.publish_version(FunctionName=fresh_name)["Version"]
    lam.update_function_code(FunctionName=fresh_name, ZipFile=handler_zip("MARK = 2\n" + VERSIONED))
    two = lam.publish_version(FunctionName=fresh_name)["Version"]
    lam.create_alias(FunctionName=fresh_name, Name="canary", FunctionVersion=one,
                     RoutingConfig={"AdditionalVersionWeights": {two: 0.5}})  # fmt: skip
    before = server.health()["provisioned"]
    lam.put_provisioned_concurrency_config(
        FunctionName=fresh_name, Qualifier="canary", ProvisionedConcurrentExecutions=2
    )
    ready = wait_status(lam, fresh_name, "canary", "READY")
    assert ready["AllocatedProvisionedConcurrentExecutions"] == 2
    assert server.health()["provisioned"] == before + 2
    seen = {}
    for _ in range(60):  # both versions answer, each from its provisioned environment
        response, body = invoke_json(lam, fresh_name, Qualifier="canary", LogType="Tail")
        assert body["init_type"] == "provisioned-concurrency" and "Init Duration" not in report_of(response), body
        assert response["ExecutedVersion"] == body["version"]
        seen[body["version"]] = body["mark"]
        if len(seen) == 2:
            break
    assert seen == {one: 1, two: 2}

    # Routing removed: version 2's provisioned environment goes (the change is applied in the
    # background, so wait for it), and both environments belong to the primary version.
    lam.update_alias(FunctionName=fresh_name, Name="canary", RoutingConfig={"AdditionalVersionWeights": {}})
    deadline = time.monotonic() + 20
    while invoke_json(lam, fresh_name, Qualifier=two)[1]["init_type"] != "on-demand":
        assert time.monotonic() < deadline, "version 2 kept its provisioned environment"
        time.sleep(0.1)
    assert wait_status(lam, fresh_name, "canary", "READY")["AllocatedProvisionedConcurrentExecutions"] == 2
    while server.health()["provisioned"] != before + 2:
        assert time.monotonic() < deadline, server.health()
        time.sleep(0.05)
    assert invoke_json(lam, fresh_name, Qualifier=one)[1]["init_type"] == "provisioned-concurrency"
    lam.delete_function(FunctionName=fresh_name)
    deadline = time.monotonic() + 5
    while server.health()["provisioned"] != before:
        assert time.monotonic() < deadline, server.health()
        time.sleep(0.05)


def test_settings_survive_a_restart_and_are_provisioned_again(tmp_path):
    with LaminaServer(tmp_path / "data") as server:
        lam = server.client("lambda")
        create(lam, "kept", SLEEPER)
        create(lam, "capped", SLEEPER)
        version = lam.publish_version(FunctionName="kept")["Version"]
        lam.put_provisioned_concurrency_config(
            FunctionName="kept", Qualifier=version, ProvisionedConcurrentExecutions=1
        )
        lam.put_function_concurrency(FunctionName="capped", ReservedConcurrentExecutions=0)
        wait_status(lam, "kept", version, "READY")
        server.restart()
        lam = server.client("lambda")
        assert wait_status(lam, "kept", version, "READY")["RequestedProvisionedConcurrentExecutions"] == 1
        response, body = invoke_json(lam, "kept", Qualifier=version, LogType="Tail")
        assert body["init_type"] == "provisioned-concurrency" and "Init Duration" not in report_of(response)
        reason = throttle_of(lambda: lam.invoke(FunctionName="capped", Payload=b"{}"))["Reason"]
        assert reason == "ReservedFunctionConcurrentInvocationLimitExceeded"


def test_lamina_concurrency_cli(server, lam, fresh_name):
    create(lam, fresh_name, SLEEPER)
    version = lam.publish_version(FunctionName=fresh_name)["Version"]
    shown = lamina(server, "concurrency", fresh_name).stdout
    assert "reserved: none" in shown and "provisioned: none" in shown
    assert "reserved: 3" in lamina(server, "concurrency", fresh_name, "--reserved", "3").stdout
    assert lam.get_function_concurrency(FunctionName=fresh_name)["ReservedConcurrentExecutions"] == 3
    out = lamina(server, "concurrency", fresh_name, "--provisioned", "2", "--qualifier", version).stdout
    assert version in out and "2" in out
    wait_status(lam, fresh_name, version, "READY")
    assert "READY" in lamina(server, "concurrency", fresh_name).stdout
    refused = lamina(server, "concurrency", fresh_name, "--reserved", "1", check=False)
    assert refused.returncode != 0 and "InvalidParameterValueException" in refused.stderr
    out = lamina(server, "concurrency", fresh_name, "--clear", "--provisioned", "0", "--qualifier", version).stdout
    assert "reserved: none" in out and "provisioned: none" in out


def test_provisioned_configs_list_in_pages(lam, fresh_name):
    create(lam, fresh_name, SLEEPER)
    versions = []
    for n in range(3):
        lam.update_function_configuration(FunctionName=fresh_name, Timeout=10 + n)  # a new version each time
        versions.append(lam.publish_version(FunctionName=fresh_name)["Version"])
        lam.put_provisioned_concurrency_config(
            FunctionName=fresh_name, Qualifier=versions[-1], ProvisionedConcurrentExecutions=1
        )
    first = lam.list_provisioned_concurrency_configs(FunctionName=fresh_name, MaxItems=2)
    rest = lam.list_provisioned_concurrency_configs(FunctionName=fresh_name, Marker=first["NextMarker"])
    pages = [*first["ProvisionedConcurrencyConfigs"], *rest["ProvisionedConcurrencyConfigs"]]
    assert len(first["ProvisionedConcurrencyConfigs"]) == 2 and "NextMarker" not in rest
    assert sorted(c["FunctionArn"].rsplit(":", 1)[1] for c in pages) == sorted(versions)
    with pytest.raises(ClientError) as caught:
        lam.list_provisioned_concurrency_configs(FunctionName=fresh_name, Marker="not a marker")
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValueException"
    for version in versions:
        lam.delete_provisioned_concurrency_config(FunctionName=fresh_name, Qualifier=version)
