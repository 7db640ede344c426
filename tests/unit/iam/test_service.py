"""IamService and TokenService over the in-memory store: IAM's rules, STS's identities."""

from __future__ import annotations

import json

import pytest

from lamina.errors import (
    AccessDenied,
    DeleteConflict,
    ExpiredToken,
    IamLimitExceeded,
    InvalidParameterValue,
    MalformedPolicyDocument,
    NoSuchEntity,
    ValidationError,
)
from lamina.iam import IamService, TokenService
from lamina.store.memory_iam import MemoryIamStore

ACCOUNT = "123456789012"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})  # fmt: skip
EC2_TRUST = TRUST.replace("lambda.amazonaws.com", "ec2.amazonaws.com")
S3_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})
BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def iam(clock) -> IamService:
    return IamService(MemoryIamStore(), ACCOUNT, clock=clock)


@pytest.fixture
def tokens(iam, clock) -> TokenService:
    return TokenService(iam, iam.store, "AKIDROOT", clock=clock)


def test_create_role_keeps_the_trust_policy_verbatim(iam):
    role = iam.create_role("exec", TRUST, path="/service-role/", description="d")
    assert role.id.startswith("AROA") and len(role.id) == 20
    assert iam.role_arn(role) == f"arn:aws:iam::{ACCOUNT}:role/service-role/exec"
    assert iam.get_role("EXEC").trust_policy == TRUST
    with pytest.raises(MalformedPolicyDocument):
        iam.create_role("bad", "{")
    with pytest.raises(MalformedPolicyDocument):
        iam.update_assume_role_policy("exec", S3_POLICY)  # no principal: not a trust policy
    assert iam.update_assume_role_policy("exec", EC2_TRUST).trust_policy == EC2_TRUST


def test_trust_policy_size_quota(iam):
    big = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "x" * 2100, "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
         "Action": "sts:AssumeRole"}]})  # fmt: skip
    with pytest.raises(IamLimitExceeded, match="ACLSizePerRole: 2048"):
        iam.create_role("big", big)


def test_list_roles_pages_and_filters_by_path(iam):
    for n in range(5):
        iam.create_role(f"role-{n}", TRUST, path="/a/" if n % 2 else "/")
    first, marker = iam.list_roles(max_items=2)
    assert [r.name for r in first] == ["role-0", "role-1"] and marker == "role-2"
    rest, marker = iam.list_roles(marker=marker, max_items=10)
    assert [r.name for r in rest] == ["role-2", "role-3", "role-4"] and marker is None
    assert [r.name for r in iam.list_roles(path_prefix="/a/")[0]] == ["role-1", "role-3"]
    with pytest.raises(ValidationError):
        iam.list_roles(marker="nope")


def test_inline_policies(iam):
    iam.create_role("exec", TRUST)
    iam.put_role_policy("exec", "s3", S3_POLICY)
    assert iam.get_role_policy("exec", "S3") == ("s3", S3_POLICY)
    assert iam.list_role_policies("exec") == (["s3"], None)
    with pytest.raises(MalformedPolicyDocument, match="must contain resources"):
        iam.put_role_policy("exec", "bad", json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:*"}]}))
    with pytest.raises(NoSuchEntity, match="The role policy with name nope cannot be found"):
        iam.get_role_policy("exec", "nope")
    with pytest.raises(NoSuchEntity, match="The role with name ghost cannot be found"):
        iam.put_role_policy("ghost", "s3", S3_POLICY)
    with pytest.raises(DeleteConflict):
        iam.delete_role("exec")
    iam.delete_role_policy("exec", "s3")
    with pytest.raises(NoSuchEntity):
        iam.delete_role_policy("exec", "s3")
    iam.delete_role("exec")


def test_attaching_managed_policies(iam):
    iam.create_role("exec", TRUST)
    iam.attach_role_policy("exec", BASIC)
    with pytest.raises(NoSuchEntity, match="does not exist or is not attachable"):
        iam.attach_role_policy("exec", "arn:aws:iam::aws:policy/NotAPolicy")
    arn, policy = iam.create_policy("mine", S3_POLICY, path="/team/")
    assert arn == f"arn:aws:iam::{ACCOUNT}:policy/team/mine" and policy.id.startswith("ANPA")
    iam.attach_role_policy("exec", arn)
    assert iam.list_attached_role_policies("exec")[0] == [("AWSLambdaBasicExecutionRole", BASIC), ("mine", arn)]
    assert iam.list_attached_role_policies("exec", path_prefix="/team/")[0] == [("mine", arn)]
    assert iam.get_policy(arn)[1] == 1 and iam.get_policy(BASIC)[1] == 1
    with pytest.raises(DeleteConflict):
        iam.delete_policy(arn)
    with pytest.raises(DeleteConflict, match="detach all policies"):
        iam.delete_role("exec")
    with pytest.raises(InvalidParameterValue):
        iam.delete_policy(BASIC)
    iam.detach_role_policy("exec", arn)
    with pytest.raises(NoSuchEntity):
        iam.detach_role_policy("exec", arn)
    iam.delete_policy(arn)
    with pytest.raises(NoSuchEntity, match="was not found"):
        iam.get_policy(arn)


def test_policies_per_role_quota(iam):
    iam.create_role("exec", TRUST)
    arns = [iam.create_policy(f"p{n}", S3_POLICY)[0] for n in range(11)]
    for arn in arns[:10]:
        iam.attach_role_policy("exec", arn)
    iam.attach_role_policy("exec", arns[0])  # already attached: not a new one
    with pytest.raises(IamLimitExceeded, match="PoliciesPerRole: 10"):
        iam.attach_role_policy("exec", arns[10])


def test_list_policies_by_scope(iam):
    arn, _ = iam.create_policy("mine", S3_POLICY)
    local = iam.list_policies(scope="Local")[0]
    assert [a for a, _, _ in local] == [arn]
    aws = iam.list_policies(scope="AWS", max_items=1000)[0]
    assert BASIC in [a for a, _, _ in aws] and arn not in [a for a, _, _ in aws]
    assert len(iam.list_policies(max_items=1000)[0]) == len(aws) + 1
    iam.create_role("exec", TRUST)
    iam.attach_role_policy("exec", BASIC)
    assert [(a, n) for a, _, n in iam.list_policies(only_attached=True)[0]] == [(BASIC, 1)]
    with pytest.raises(Exception, match="already exists"):
        iam.create_policy("MINE", S3_POLICY)


def test_users_and_keys(iam):
    user = iam.create_user("dev", path="/eng/")
    assert user.id.startswith("AIDA") and iam.user_arn(user) == f"arn:aws:iam::{ACCOUNT}:user/eng/dev"
    key = iam.create_access_key("dev")
    assert key.id.startswith("AKIA") and len(key.id) == 20 and len(key.secret) == 40 and key.status == "Active"
    assert iam.user_for_key(key.id) == "dev" and iam.user_for_key("AKIDROOT") is None
    iam.update_access_key("dev", key.id, "Inactive")
    assert iam.list_access_keys("dev")[0].status == "Inactive"
    iam.create_user("other")
    with pytest.raises(NoSuchEntity):
        iam.delete_access_key("other", key.id)  # not that user's key
    iam.delete_access_key("dev", key.id)
    iam.delete_user("dev")
    with pytest.raises(NoSuchEntity, match="The user with name dev cannot be found"):
        iam.create_access_key("dev")


def test_strict_mode_check(iam):
    iam.create_role("exec", TRUST)
    iam.create_role("ec2", EC2_TRUST)
    iam.create_role("nested", TRUST, path="/x/")
    iam.check_role(f"arn:aws:iam::{ACCOUNT}:role/exec")
    iam.check_role(f"arn:aws:iam::{ACCOUNT}:role/x/nested")
    for arn in (
        f"arn:aws:iam::{ACCOUNT}:role/missing",
        f"arn:aws:iam::{ACCOUNT}:role/ec2",
        f"arn:aws:iam::{ACCOUNT}:role/nested",  # wrong path
        "arn:aws:iam::000000000000:role/exec",  # another account
        "not-an-arn",
    ):
        with pytest.raises(
            InvalidParameterValue, match="The role defined for the function cannot be assumed by Lambda"
        ):
            iam.check_role(arn)


def test_caller_identity(iam, tokens):
    root = f"arn:aws:iam::{ACCOUNT}:root"
    assert tokens.identity(None).arn == root
    assert tokens.identity("AKIDROOT").arn == root
    assert tokens.identity("SOMEKEY").arn == root  # auth off: unknown keys are the account
    user = iam.create_user("dev")
    key = iam.create_access_key("dev")
    identity = tokens.identity(key.id)
    assert (identity.user_id, identity.account, identity.arn) == (user.id, ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/dev")


def test_assume_role(iam, tokens, clock):
    role = iam.create_role("exec", TRUST, path="/svc/")
    assumed = tokens.assume_role(None, iam.role_arn(role), "build-7", 900)
    session = assumed.session
    assert session.access_key_id.startswith("ASIA") and session.expires == clock.now + 900
    assert assumed.assumed_role_id == f"{role.id}:build-7"
    assert session.arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/exec/build-7"
    assert tokens.identity(session.access_key_id).arn == session.arn
    assert tokens.secret_for(session.access_key_id) == (session.secret, session.token)
    clock.now += 901
    with pytest.raises(ExpiredToken):
        tokens.secret_for(session.access_key_id)
    with pytest.raises(ExpiredToken):
        tokens.identity(session.access_key_id)
    with pytest.raises(
        AccessDenied,
        match=f"is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::{ACCOUNT}:role/nope",
    ):
        tokens.assume_role(None, f"arn:aws:iam::{ACCOUNT}:role/nope", "s")
    with pytest.raises(ValidationError, match="MaxSessionDuration"):
        tokens.assume_role(None, iam.role_arn(role), "s", 7200)


def test_expired_sessions_are_purged_after_a_day(iam, tokens, clock):
    role = iam.create_role("exec", TRUST)
    old = tokens.assume_role(None, iam.role_arn(role), "s", 900).session
    clock.now += 900 + 86400 + 1
    tokens.assume_role(None, iam.role_arn(role), "s", 900)
    assert tokens.secret_for(old.access_key_id) is None


def test_session_tokens(iam, tokens, clock):
    root = tokens.get_session_token("AKIDROOT", 7200)
    assert root.expires == clock.now + 3600  # account owners: an hour at most
    assert tokens.identity(root.access_key_id).arn == f"arn:aws:iam::{ACCOUNT}:root"
    iam.create_user("dev")
    key = iam.create_access_key("dev")
    session = tokens.get_session_token(key.id)
    assert session.expires == clock.now + 43200
    assert tokens.identity(session.access_key_id).arn.endswith(":user/dev")
    with pytest.raises(AccessDenied):
        tokens.get_session_token(session.access_key_id)


def test_inactive_and_unknown_keys_have_no_secret(iam, tokens):
    iam.create_user("dev")
    key = iam.create_access_key("dev")
    assert tokens.secret_for(key.id) == (key.secret, None)
    iam.update_access_key("dev", key.id, "Inactive")
    assert tokens.secret_for(key.id) is None
    assert tokens.secret_for("AKIAUNKNOWN") is None


def test_role_tags(iam):
    iam.create_role("exec", TRUST, tags=(("team", "a"),))
    iam.tag_role("exec", (("team", "b"), ("env", "dev")))
    assert iam.get_role("exec").tags == (("team", "b"), ("env", "dev"))
    iam.untag_role("exec", ["team"])
    assert iam.get_role("exec").tags == (("env", "dev"),)
    with pytest.raises(IamLimitExceeded):
        iam.tag_role("exec", tuple((f"k{n}", "v") for n in range(50)))


def test_function_sessions_run_as_the_role(iam, tokens, clock):
    role = iam.create_role("exec", TRUST)
    session = tokens.function_session(iam.role_arn(role), "orders")
    assert session is not None and session.expires == clock.now + 43200
    assert tokens.identity(session.access_key_id).arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/exec/orders"
    assert tokens.function_session(f"arn:aws:iam::{ACCOUNT}:role/unknown", "orders") is None
