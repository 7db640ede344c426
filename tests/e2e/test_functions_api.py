"""The Lambda control plane through unmodified boto3: shapes, pagination, errors, waiters."""

from __future__ import annotations

import base64
import hashlib
import urllib.request

import pytest
from botocore.exceptions import ClientError

from .conftest import HOST_RUNTIME, ROLE, create, handler_zip, invoke_json, make_zip

ECHO = "def handler(event, context):\n    return event\n"


def error_of(exc_info) -> tuple[str, str, int]:
    err = exc_info.value.response
    return err["Error"]["Code"], err["Error"]["Message"], err["ResponseMetadata"]["HTTPStatusCode"]


def test_create_get_and_configuration_shape(lam, fresh_name):
    code = handler_zip(ECHO)
    out = create(lam, fresh_name, ECHO, ZipFile=code, Timeout=7, MemorySize=256, Description="d",
                 Environment={"Variables": {"GREETING": "hi"}}, Tags={"team": "data"})  # fmt: skip
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert out["FunctionName"] == fresh_name
    assert out["FunctionArn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{fresh_name}"
    assert out["CodeSha256"] == base64.b64encode(hashlib.sha256(code).digest()).decode()
    assert out["CodeSize"] == len(code)
    assert (out["Runtime"], out["Handler"], out["Role"]) == (HOST_RUNTIME, "app.handler", ROLE)
    assert (out["Timeout"], out["MemorySize"], out["Description"]) == (7, 256, "d")
    assert out["Environment"] == {"Variables": {"GREETING": "hi"}}
    assert (out["State"], out["LastUpdateStatus"], out["Version"]) == ("Active", "Successful", "$LATEST")
    assert out["PackageType"] == "Zip" and out["Architectures"] == ["x86_64"]
    assert out["EphemeralStorage"] == {"Size": 512}
    assert out["LoggingConfig"]["LogGroup"] == f"/aws/lambda/{fresh_name}"
    assert len(out["RevisionId"]) == 36
    assert out["LastModified"].endswith("+0000") and "T" in out["LastModified"]

    got = lam.get_function(FunctionName=fresh_name)
    assert got["Configuration"]["CodeSha256"] == out["CodeSha256"]
    assert got["Tags"] == {"team": "data"}
    assert got["Code"]["RepositoryType"] == "S3"
    with urllib.request.urlopen(got["Code"]["Location"], timeout=10) as response:
        assert response.read() == code
    config = lam.get_function_configuration(FunctionName=out["FunctionArn"])
    assert config["RevisionId"] == out["RevisionId"]
    assert lam.get_function_configuration(FunctionName=fresh_name, Qualifier="$LATEST")["Version"] == "$LATEST"


def test_code_location_rejects_tampered_signature(lam, fresh_name):
    create(lam, fresh_name, ECHO)
    location = lam.get_function(FunctionName=fresh_name)["Code"]["Location"]
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(location[:-4] + "0000", timeout=10)
    assert exc.value.code in (403, 404)


def test_waiters_see_active_and_successful(lam, fresh_name):
    create(lam, fresh_name, ECHO)
    lam.get_waiter("function_exists").wait(FunctionName=fresh_name)
    lam.get_waiter("function_active_v2").wait(FunctionName=fresh_name)
    lam.update_function_configuration(FunctionName=fresh_name, Timeout=5)
    lam.get_waiter("function_updated_v2").wait(FunctionName=fresh_name)


def test_errors_carry_aws_codes_statuses_and_messages(lam, fresh_name):
    with pytest.raises(ClientError) as exc:
        lam.get_function(FunctionName="does-not-exist")
    assert error_of(exc) == (
        "ResourceNotFoundException",
        "Function not found: arn:aws:lambda:us-east-1:000000000000:function:does-not-exist",
        404,
    )
    create(lam, fresh_name, ECHO)
    with pytest.raises(ClientError) as exc:
        create(lam, fresh_name, ECHO)
    assert error_of(exc) == ("ResourceConflictException", f"Function already exist: {fresh_name}", 409)
    with pytest.raises(ClientError) as exc:
        lam.update_function_configuration(FunctionName=fresh_name, Timeout=901)
    code, message, status = error_of(exc)
    assert (code, status) == ("InvalidParameterValueException", 400) and "900" in message
    with pytest.raises(ClientError) as exc:
        lam.update_function_configuration(FunctionName=fresh_name, MemorySize=10241)
    assert error_of(exc)[0] == "InvalidParameterValueException"
    with pytest.raises(ClientError) as exc:
        lam.update_function_configuration(FunctionName=fresh_name, Environment={"Variables": {"AWS_REGION": "x"}})
    assert "Reserved keys used in this request: AWS_REGION" in error_of(exc)[1]
    with pytest.raises(ClientError) as exc:
        lam.create_function(FunctionName="bad-zip", Runtime=HOST_RUNTIME, Role=ROLE, Handler="app.handler",
                            Code={"ZipFile": b"this is not a zip"})  # fmt: skip
    assert error_of(exc) == (
        "InvalidParameterValueException",
        "Could not unzip uploaded file. Please check your file, then try to upload again.",
        400,
    )
    with pytest.raises(ClientError) as exc:
        lam.create_function(FunctionName="bad name!", Runtime=HOST_RUNTIME, Role=ROLE, Handler="app.handler",
                            Code={"ZipFile": handler_zip(ECHO)})  # fmt: skip
    assert error_of(exc)[2] == 400
    with pytest.raises(ClientError) as exc:
        lam.update_function_configuration(FunctionName=fresh_name, RevisionId="00000000-0000-0000-0000-000000000000")
    assert error_of(exc)[:1] == ("PreconditionFailedException",) and error_of(exc)[2] == 412


def test_list_functions_paginates_with_marker(lam):
    names = [f"page-{i:02d}" for i in range(7)]
    for name in names:
        create(lam, name, ECHO)
    seen, marker, pages = [], None, 0
    while True:
        kwargs = {"MaxItems": 3, **({"Marker": marker} if marker else {})}
        page = lam.list_functions(**kwargs)
        pages += 1
        assert len(page["Functions"]) <= 3
        seen += [f["FunctionName"] for f in page["Functions"]]
        marker = page.get("NextMarker")
        if not marker:
            break
    assert [n for n in seen if n.startswith("page-")] == names
    assert seen == sorted(seen) and pages >= 3
    listed = lam.list_functions(MaxItems=1)["Functions"][0]
    assert "State" not in listed and "LastUpdateStatus" not in listed and listed["Runtime"]
    everything = [f["FunctionName"] for p in lam.get_paginator("list_functions").paginate() for f in p["Functions"]]
    assert set(names) <= set(everything)


def test_update_code_and_configuration(lam, fresh_name):
    first = create(lam, fresh_name, "def handler(e, c):\n    return 1\n")
    new_code = handler_zip("def handler(e, c):\n    return 2\n")
    updated = lam.update_function_code(FunctionName=fresh_name, ZipFile=new_code)
    assert updated["CodeSha256"] != first["CodeSha256"] and updated["RevisionId"] != first["RevisionId"]
    assert invoke_json(lam, fresh_name)[1] == 2
    dry = lam.update_function_code(FunctionName=fresh_name, ZipFile=handler_zip("x = 1\n"), DryRun=True)
    assert dry["CodeSha256"] != updated["CodeSha256"]
    assert lam.get_function_configuration(FunctionName=fresh_name)["CodeSha256"] == updated["CodeSha256"]

    lam.update_function_configuration(FunctionName=fresh_name, Environment={"Variables": {"AA": "1", "BB": "2"}})
    out = lam.update_function_configuration(FunctionName=fresh_name, Environment={"Variables": {"CC": "3"}})
    assert out["Environment"] == {"Variables": {"CC": "3"}}  # replaces the whole map, as Lambda does
    out = lam.update_function_configuration(FunctionName=fresh_name, Handler="app.other", Description="x")
    assert (out["Handler"], out["Description"], out["Environment"]) == (
        "app.other",
        "x",
        {"Variables": {"CC": "3"}},
    )


def test_delete_function(lam, fresh_name):
    create(lam, fresh_name, ECHO)
    out = lam.delete_function(FunctionName=fresh_name)
    assert out["ResponseMetadata"]["HTTPStatusCode"] in (200, 204)
    with pytest.raises(ClientError) as exc:
        lam.get_function(FunctionName=fresh_name)
    assert error_of(exc)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        lam.delete_function(FunctionName=fresh_name)
    assert error_of(exc)[2] == 404


def test_tags(lam, fresh_name):
    arn = create(lam, fresh_name, ECHO)["FunctionArn"]
    lam.tag_resource(Resource=arn, Tags={"a": "1", "b": "2"})
    lam.untag_resource(Resource=arn, TagKeys=["a"])
    assert lam.list_tags(Resource=arn)["Tags"] == {"b": "2"}
    with pytest.raises(ClientError) as exc:
        lam.list_tags(Resource=arn.replace(fresh_name, "nope"))
    assert error_of(exc)[0] == "ResourceNotFoundException"


def test_account_settings(lam, fresh_name):
    create(lam, fresh_name, ECHO)
    out = lam.get_account_settings()
    listed = [f for page in lam.get_paginator("list_functions").paginate() for f in page["Functions"]]
    assert out["AccountUsage"]["FunctionCount"] == len(listed)
    assert out["AccountUsage"]["TotalCodeSize"] == sum(f["CodeSize"] for f in listed)
    assert out["AccountLimit"]["CodeSizeZipped"] == 52428800
    assert out["AccountLimit"]["CodeSizeUnzipped"] == 262144000
    assert out["AccountLimit"]["ConcurrentExecutions"] >= 4
    assert out["AccountUsage"]["FunctionCount"] >= 0


def test_unzipped_size_limit(lam):
    big = make_zip({"app.py": ECHO, "blob.bin": b"\0" * 300_000_000})
    with pytest.raises(ClientError) as exc:
        lam.create_function(FunctionName="too-big", Runtime=HOST_RUNTIME, Role=ROLE, Handler="app.handler",
                            Code={"ZipFile": big})  # fmt: skip
    code, message, status = error_of(exc)
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert "Unzipped size must be smaller than 262144000 bytes" in message
