"""STS and IAM through real boto3 and the AWS CLI: who am I, roles for functions, strict mode,
access keys and temporary credentials as SigV4 credentials, and persistence across a restart."""

from __future__ import annotations

import json
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from .conftest import HOST_RUNTIME, LaminaServer, handler_zip
from .test_cli import lamina

BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
ROOT_KEY, ROOT_SECRET = "AKIDLAMINAROOT", "root-s3cr3t"
ACCOUNT = "111122223333"


def trust(service: str = "lambda.amazonaws.com") -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]})  # fmt: skip


def code(error: ClientError) -> tuple[str, int]:
    return error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"]


def client(server: LaminaServer, service: str, key: str, secret: str, token: str | None = None):
    return boto3.client(service, endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret, aws_session_token=token,
                        config=Config(retries={"max_attempts": 1}))  # fmt: skip


def create_function(lam, name: str, role: str, source: str = "def handler(e, c):\n    return {'ok': e['n'] + 1}\n"):
    return lam.create_function(FunctionName=name, Runtime=HOST_RUNTIME, Role=role, Handler="app.handler",
                               Code={"ZipFile": handler_zip(source)}, Timeout=30)  # fmt: skip


# --- the default server: auth off, account 000000000000 -----------------------------------------


def test_caller_identity_is_the_default_account(server):
    identity = server.client("sts").get_caller_identity()
    assert (identity["Account"], identity["Arn"], identity["UserId"]) == (
        "000000000000", "arn:aws:iam::000000000000:root", "000000000000",
    )  # fmt: skip
    cli = json.loads(server.aws_cli("sts", "get-caller-identity", "--output", "json").stdout)
    assert cli["Account"] == "000000000000" and cli["Arn"] == "arn:aws:iam::000000000000:root"


def test_role_then_function_then_invoke(server, lam, fresh_name):
    """What SAM and Terraform do: an execution role, the basic policy, a function using it."""
    iam = server.client("iam")
    role = iam.create_role(RoleName=fresh_name, AssumeRolePolicyDocument=trust(), Description="exec")["Role"]
    assert role["Arn"] == f"arn:aws:iam::000000000000:role/{fresh_name}"
    assert role["RoleId"].startswith("AROA") and role["AssumeRolePolicyDocument"] == json.loads(trust())
    iam.attach_role_policy(RoleName=fresh_name, PolicyArn=BASIC)
    attached = iam.list_attached_role_policies(RoleName=fresh_name)["AttachedPolicies"]
    assert attached == [{"PolicyName": "AWSLambdaBasicExecutionRole", "PolicyArn": BASIC}]
    source = ("import boto3\ndef handler(e, c):\n"
              "    return {'ok': e['n'] + 1, 'account': boto3.client('sts').get_caller_identity()['Account']}\n")  # fmt: skip
    create_function(lam, fresh_name, role["Arn"], source)
    assert lam.get_function(FunctionName=fresh_name)["Configuration"]["Role"] == role["Arn"]
    response = lam.invoke(FunctionName=fresh_name, Payload=json.dumps({"n": 41}))
    assert json.loads(response["Payload"].read()) == {"ok": 42, "account": "000000000000"}  # STS from inside


def test_the_aws_cli_manages_roles_and_inline_policies(server, fresh_name):
    created = json.loads(server.aws_cli("iam", "create-role", "--role-name", fresh_name, "--path", "/cli/",
                                        "--assume-role-policy-document", trust(), "--output", "json").stdout)  # fmt: skip
    assert created["Role"]["Arn"] == f"arn:aws:iam::000000000000:role/cli/{fresh_name}"
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                         "Resource": "arn:aws:s3:::b/*"}]}  # fmt: skip
    server.aws_cli("iam", "put-role-policy", "--role-name", fresh_name, "--policy-name", "read",
                   "--policy-document", json.dumps(document))  # fmt: skip
    got = json.loads(server.aws_cli("iam", "get-role-policy", "--role-name", fresh_name, "--policy-name", "read",
                                    "--output", "json").stdout)  # fmt: skip
    assert got["PolicyDocument"] == document  # URL-encoded on the wire, decoded by the CLI
    server.aws_cli("iam", "attach-role-policy", "--role-name", fresh_name, "--policy-arn", BASIC)
    refused = server.aws_cli("iam", "delete-role", "--role-name", fresh_name, check=False)
    assert refused.returncode != 0 and "DeleteConflict" in refused.stderr
    listed = json.loads(server.aws_cli("iam", "list-roles", "--path-prefix", "/cli/", "--output", "json").stdout)
    assert [r["RoleName"] for r in listed["Roles"]] == [fresh_name]


def test_the_aws_cli_assumes_roles(server, fresh_name):
    server.aws_cli("iam", "create-role", "--role-name", fresh_name, "--assume-role-policy-document", trust())
    out = json.loads(server.aws_cli("sts", "assume-role", "--role-arn", f"arn:aws:iam::000000000000:role/{fresh_name}",
                                    "--role-session-name", "cli", "--duration-seconds", "900", "--output", "json").stdout)  # fmt: skip
    assert out["Credentials"]["AccessKeyId"].startswith("ASIA")
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::000000000000:assumed-role/{fresh_name}/cli"


def test_iam_errors_are_aws_errors(server, fresh_name):
    iam = server.client("iam")
    with pytest.raises(ClientError) as exc:
        iam.get_role(RoleName="no-such-role")
    assert code(exc.value) == ("NoSuchEntity", 404)
    assert exc.value.response["Error"]["Message"] == "The role with name no-such-role cannot be found."
    with pytest.raises(ClientError) as exc:
        iam.create_role(RoleName=fresh_name, AssumeRolePolicyDocument="{not json")
    assert code(exc.value) == ("MalformedPolicyDocument", 400)
    iam.create_role(RoleName=fresh_name, AssumeRolePolicyDocument=trust())
    with pytest.raises(ClientError) as exc:
        iam.create_role(RoleName=fresh_name.upper(), AssumeRolePolicyDocument=trust())
    assert code(exc.value) == ("EntityAlreadyExists", 409)
    with pytest.raises(ClientError) as exc:
        iam.create_role(RoleName="bad name!", AssumeRolePolicyDocument=trust())
    assert code(exc.value) == ("ValidationError", 400)
    policy = iam.create_policy(PolicyName=fresh_name, PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]}))["Policy"]  # fmt: skip
    iam.attach_role_policy(RoleName=fresh_name, PolicyArn=policy["Arn"])
    assert iam.get_policy(PolicyArn=policy["Arn"])["Policy"]["AttachmentCount"] == 1
    with pytest.raises(ClientError) as exc:
        iam.delete_policy(PolicyArn=policy["Arn"])
    assert code(exc.value) == ("DeleteConflict", 409)
    assert iam.list_policy_versions(PolicyArn=policy["Arn"])["Versions"][0]["VersionId"] == "v1"
    iam.detach_role_policy(RoleName=fresh_name, PolicyArn=policy["Arn"])
    iam.delete_policy(PolicyArn=policy["Arn"])
    iam.tag_role(RoleName=fresh_name, Tags=[{"Key": "team", "Value": "core"}])
    assert iam.get_role(RoleName=fresh_name)["Role"]["Tags"] == [{"Key": "team", "Value": "core"}]
    iam.delete_role(RoleName=fresh_name)
    with pytest.raises(ClientError) as exc:
        iam.delete_role(RoleName=fresh_name)
    assert code(exc.value) == ("NoSuchEntity", 404)


def test_assume_role_answers_as_the_role(server, fresh_name):
    iam, sts = server.client("iam"), server.client("sts")
    arn = iam.create_role(RoleName=fresh_name, AssumeRolePolicyDocument=trust())["Role"]["Arn"]
    assumed = sts.assume_role(RoleArn=arn, RoleSessionName="ci", DurationSeconds=900)
    creds = assumed["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and creds["SessionToken"]
    assert assumed["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::000000000000:assumed-role/{fresh_name}/ci"
    as_role = client(server, "sts", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    assert as_role.get_caller_identity()["Arn"] == assumed["AssumedRoleUser"]["Arn"]
    with pytest.raises(ClientError) as exc:
        sts.assume_role(RoleArn="arn:aws:iam::000000000000:role/nobody", RoleSessionName="ci")
    assert code(exc.value) == ("AccessDenied", 403)


# --- a secured, strict server in another account ------------------------------------------------


@pytest.fixture(scope="module")
def strict(tmp_path_factory):
    env = {"LAMINA_ACCESS_KEY_ID": ROOT_KEY, "LAMINA_SECRET_ACCESS_KEY": ROOT_SECRET, "LAMINA_ACCOUNT_ID": ACCOUNT,
           "LAMINA_STRICT_ROLES": "1"}  # fmt: skip
    instance = LaminaServer(tmp_path_factory.mktemp("strict") / "data", env=env).start()
    yield instance
    instance.stop()


def test_caller_identity_names_the_configured_account(strict):
    identity = client(strict, "sts", ROOT_KEY, ROOT_SECRET).get_caller_identity()
    assert (identity["Account"], identity["Arn"]) == (ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root")


def test_strict_mode_checks_the_role(strict, fresh_name):
    iam, lam = client(strict, "iam", ROOT_KEY, ROOT_SECRET), client(strict, "lambda", ROOT_KEY, ROOT_SECRET)
    ec2 = iam.create_role(RoleName=f"{fresh_name}-ec2", AssumeRolePolicyDocument=trust("ec2.amazonaws.com"))
    good = iam.create_role(RoleName=fresh_name, AssumeRolePolicyDocument=trust())
    for role in (f"arn:aws:iam::{ACCOUNT}:role/missing", ec2["Role"]["Arn"]):
        with pytest.raises(ClientError) as exc:
            create_function(lam, fresh_name, role)
        assert code(exc.value) == ("InvalidParameterValueException", 400)
        assert (
            exc.value.response["Error"]["Message"] == "The role defined for the function cannot be assumed by Lambda."
        )
    create_function(lam, fresh_name, good["Role"]["Arn"])
    with pytest.raises(ClientError) as exc:
        lam.update_function_configuration(FunctionName=fresh_name, Role=ec2["Role"]["Arn"])
    assert code(exc.value) == ("InvalidParameterValueException", 400)


def test_access_keys_are_sigv4_credentials(strict, fresh_name):
    iam = client(strict, "iam", ROOT_KEY, ROOT_SECRET)
    user = iam.create_user(UserName=fresh_name)["User"]
    key = iam.create_access_key(UserName=fresh_name)["AccessKey"]
    assert key["AccessKeyId"].startswith("AKIA") and key["Status"] == "Active"
    assert iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])["UserName"] == fresh_name
    listed = iam.list_access_keys(UserName=fresh_name)["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in listed] == [key["AccessKeyId"]] and "SecretAccessKey" not in listed[0]
    as_user = client(strict, "sts", key["AccessKeyId"], key["SecretAccessKey"])
    identity = as_user.get_caller_identity()
    assert (identity["Arn"], identity["UserId"]) == (f"arn:aws:iam::{ACCOUNT}:user/{fresh_name}", user["UserId"])
    client(strict, "lambda", key["AccessKeyId"], key["SecretAccessKey"]).list_functions()
    with pytest.raises(ClientError) as exc:
        client(strict, "sts", key["AccessKeyId"], "not-the-secret").get_caller_identity()
    assert code(exc.value) == ("SignatureDoesNotMatch", 403)
    with pytest.raises(ClientError) as exc:
        client(strict, "lambda", key["AccessKeyId"], "not-the-secret").list_functions()
    assert code(exc.value) == ("InvalidSignatureException", 403)
    iam.update_access_key(UserName=fresh_name, AccessKeyId=key["AccessKeyId"], Status="Inactive")
    with pytest.raises(ClientError) as exc:
        as_user.get_caller_identity()
    assert code(exc.value) == ("InvalidClientTokenId", 403)
    iam.update_access_key(UserName=fresh_name, AccessKeyId=key["AccessKeyId"], Status="Active")
    assert as_user.get_caller_identity()["Arn"].endswith(f":user/{fresh_name}")
    iam.delete_access_key(UserName=fresh_name, AccessKeyId=key["AccessKeyId"])
    with pytest.raises(ClientError) as exc:
        client(strict, "lambda", key["AccessKeyId"], key["SecretAccessKey"]).list_functions()
    assert code(exc.value) == ("UnrecognizedClientException", 403)


def test_temporary_credentials_need_their_token(strict, fresh_name):
    iam, sts = client(strict, "iam", ROOT_KEY, ROOT_SECRET), client(strict, "sts", ROOT_KEY, ROOT_SECRET)
    arn = iam.create_role(RoleName=fresh_name, AssumeRolePolicyDocument=trust())["Role"]["Arn"]
    creds = sts.assume_role(RoleArn=arn, RoleSessionName="deploy")["Credentials"]
    lam = client(strict, "lambda", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    lam.list_functions()
    with pytest.raises(ClientError) as exc:  # the same key without its session token
        client(strict, "lambda", creds["AccessKeyId"], creds["SecretAccessKey"]).list_functions()
    assert code(exc.value) == ("UnrecognizedClientException", 403)
    session = sts.get_session_token()["Credentials"]
    root_again = client(strict, "sts", session["AccessKeyId"], session["SecretAccessKey"], session["SessionToken"])
    assert root_again.get_caller_identity()["Arn"] == f"arn:aws:iam::{ACCOUNT}:root"


def test_everything_survives_a_restart(strict, fresh_name):
    iam, sts = client(strict, "iam", ROOT_KEY, ROOT_SECRET), client(strict, "sts", ROOT_KEY, ROOT_SECRET)
    arn = iam.create_role(RoleName=fresh_name, AssumeRolePolicyDocument=trust())["Role"]["Arn"]
    iam.attach_role_policy(RoleName=fresh_name, PolicyArn=BASIC)
    iam.create_user(UserName=fresh_name)
    key = iam.create_access_key(UserName=fresh_name)["AccessKey"]
    creds = sts.assume_role(RoleArn=arn, RoleSessionName="s1")["Credentials"]
    strict.kill9()
    strict.start()
    iam = client(strict, "iam", ROOT_KEY, ROOT_SECRET)
    assert iam.get_role(RoleName=fresh_name)["Role"]["Arn"] == arn
    assert iam.list_attached_role_policies(RoleName=fresh_name)["AttachedPolicies"][0]["PolicyArn"] == BASIC
    as_user = client(strict, "sts", key["AccessKeyId"], key["SecretAccessKey"])
    assert as_user.get_caller_identity()["Arn"].endswith(f":user/{fresh_name}")
    as_role = client(strict, "sts", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    assert as_role.get_caller_identity()["Arn"].endswith(f":assumed-role/{fresh_name}/s1")


def test_lamina_iam_roles_lists_trust_and_policies(server, fresh_name):
    iam = server.client("iam")
    iam.create_role(RoleName=fresh_name, AssumeRolePolicyDocument=trust(), Path="/listed/")
    iam.attach_role_policy(RoleName=fresh_name, PolicyArn=BASIC)
    iam.put_role_policy(RoleName=fresh_name, PolicyName="extra", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))  # fmt: skip
    out = lamina(server, "iam", "roles", "--path-prefix", "/listed/").stdout.splitlines()
    assert out[0].split() == ["NAME", "TRUSTS", "POLICIES"]
    assert len(out) == 2 and out[1].split()[:2] == [fresh_name, "lambda.amazonaws.com"]
    assert "AWSLambdaBasicExecutionRole, extra (inline)" in out[1]
    assert lamina(server, "iam", "roles", "--path-prefix", "/nothing-here/").stdout.strip() == "no roles"


def test_unsigned_form_posts_are_served(server):
    """`curl -d Action=GetCallerIdentity`: no signature, so the Action alone finds STS."""
    request = urllib.request.Request(server.endpoint + "/", data=b"Action=GetCallerIdentity&Version=2011-06-15",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read().decode()
    assert "<Arn>arn:aws:iam::000000000000:root</Arn>" in body and body.startswith("<GetCallerIdentityResponse")


WHO_AM_I = """
import os, boto3
def handler(e, c):
    identity = boto3.client('sts').get_caller_identity()
    return {'arn': identity['Arn'], 'key': os.environ['AWS_ACCESS_KEY_ID'],
            'token': bool(os.environ.get('AWS_SESSION_TOKEN'))}
"""


def test_functions_run_with_their_execution_roles_credentials(strict, fresh_name):
    """As on AWS, an environment holds the role's temporary credentials (session = function name);
    on a secured server they are valid SigV4 credentials, so boto3 inside the handler is accepted."""
    iam, lam = client(strict, "iam", ROOT_KEY, ROOT_SECRET), client(strict, "lambda", ROOT_KEY, ROOT_SECRET)
    role = iam.create_role(RoleName=fresh_name, AssumeRolePolicyDocument=trust())["Role"]
    create_function(lam, fresh_name, role["Arn"], WHO_AM_I)
    response = lam.invoke(FunctionName=fresh_name, Payload=b"{}")
    assert "FunctionError" not in response, response["Payload"].read()
    body = json.loads(response["Payload"].read())
    assert body["arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{fresh_name}/{fresh_name}"
    assert body["key"].startswith("ASIA") and body["key"] != ROOT_KEY and body["token"]
