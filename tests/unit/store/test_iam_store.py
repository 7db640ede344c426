"""The IAM store contract, run against SQLite and the in-memory twin."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lamina.errors import DeleteConflict, EntityAlreadyExists, IamLimitExceeded, NoSuchEntity
from lamina.model.iam import AccessKey, ManagedPolicy, Role, Session, User
from lamina.store.iam import IamStore
from lamina.store.memory_iam import MemoryIamStore
from lamina.store.sqlite.database import Database
from lamina.store.sqlite.iam import SqliteIamStore

TRUST = (
    '{"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}'
)
ARN = "arn:aws:iam::000000000000:policy/mine"


@pytest.fixture(params=["sqlite", "memory"])
def iam(request: pytest.FixtureRequest, tmp_path) -> Iterator[IamStore]:
    if request.param == "memory":
        yield MemoryIamStore()
        return
    db = Database(tmp_path / "lamina.db")
    yield SqliteIamStore(db)
    db.close()


def role(name: str = "Exec", **changes) -> Role:
    fields = {"id": "AROAAAAAAAAAAAAAAAAA", "path": "/", "trust_policy": TRUST, "created": 1000.0,
              "tags": (("team", "a"),)}  # fmt: skip
    fields.update(changes)
    return Role(name, **fields)


def policy(name: str = "mine") -> ManagedPolicy:
    return ManagedPolicy(name, "ANPAAAAAAAAAAAAAAAAA", "/", '{"Statement": []}', 1000.0, 1000.0, "d")


def test_roles_round_trip_and_names_ignore_case(iam):
    iam.create_role(role(description="x"))
    assert iam.get_role("exec") == role(description="x")
    with pytest.raises(EntityAlreadyExists, match="Role with name EXEC already exists"):
        iam.create_role(role("EXEC"))
    iam.create_role(role("alpha"))
    assert [r.name for r in iam.list_roles()] == ["alpha", "Exec"]
    iam.update_role(role(trust_policy="{}", max_session_duration=7200))
    assert iam.get_role("Exec").trust_policy == "{}" and iam.get_role("Exec").max_session_duration == 7200
    with pytest.raises(NoSuchEntity):
        iam.update_role(role("ghost"))
    iam.delete_role("EXEC")
    assert iam.get_role("Exec") is None
    with pytest.raises(NoSuchEntity, match="The role with name Exec cannot be found"):
        iam.delete_role("Exec")


def test_inline_policies_block_deleting_their_role(iam):
    iam.create_role(role())
    iam.put_role_policy("Exec", "Logs", "doc-1")
    iam.put_role_policy("exec", "logs", "doc-2")  # same policy, renamed as given
    assert iam.list_role_policies("Exec") == [("logs", "doc-2")]
    assert iam.get_role_policy("EXEC", "LOGS") == ("logs", "doc-2")
    with pytest.raises(DeleteConflict, match="must delete policies first"):
        iam.delete_role("Exec")
    assert iam.delete_role_policy("Exec", "Logs") and not iam.delete_role_policy("Exec", "Logs")
    iam.delete_role("Exec")
    with pytest.raises(NoSuchEntity):
        iam.put_role_policy("Exec", "p", "d")


def test_attachments(iam):
    iam.create_role(role())
    aws = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    iam.attach_role_policy("Exec", aws, customer=False)
    iam.attach_role_policy("Exec", aws, customer=False)  # idempotent
    with pytest.raises(NoSuchEntity, match="does not exist or is not attachable"):
        iam.attach_role_policy("Exec", ARN, customer=True)
    iam.create_policy(ARN, policy())
    iam.attach_role_policy("Exec", ARN, customer=True)
    assert iam.list_attached_role_policies("exec") == [aws, ARN]
    assert iam.attachment_counts() == {aws: 1, ARN: 1}
    with pytest.raises(DeleteConflict, match="must detach all policies first"):
        iam.delete_role("Exec")
    with pytest.raises(DeleteConflict, match="attached to entities"):
        iam.delete_policy(ARN)
    assert iam.detach_role_policy("Exec", ARN) and iam.detach_role_policy("Exec", aws)
    assert not iam.detach_role_policy("Exec", aws)
    iam.delete_policy(ARN)
    iam.delete_role("Exec")
    with pytest.raises(NoSuchEntity):
        iam.attach_role_policy("Exec", aws, customer=False)


def test_managed_policies(iam):
    iam.create_policy(ARN, policy())
    with pytest.raises(EntityAlreadyExists):
        iam.create_policy(ARN, policy())
    assert iam.get_policy(ARN) == policy()
    assert iam.list_policies() == [(ARN, policy())]
    iam.delete_policy(ARN)
    assert iam.get_policy(ARN) is None
    with pytest.raises(NoSuchEntity, match=f"Policy {ARN} was not found"):
        iam.delete_policy(ARN)


def test_users_and_access_keys(iam):
    user = User("dev", "AIDAAAAAAAAAAAAAAAAA", "/", 1000.0)
    iam.create_user(user)
    with pytest.raises(EntityAlreadyExists):
        iam.create_user(User("DEV", "AIDAAAAAAAAAAAAAAAAB", "/", 1000.0))
    assert iam.get_user("Dev") == user and iam.list_users() == [user]
    with pytest.raises(NoSuchEntity):
        iam.create_access_key(AccessKey("AKIA1", "ghost", "s", "Active", 1.0), 2)
    iam.create_access_key(AccessKey("AKIA1", "dev", "s1", "Active", 1.0), 2)
    iam.create_access_key(AccessKey("AKIA2", "dev", "s2", "Active", 2.0), 2)
    with pytest.raises(IamLimitExceeded, match="AccessKeysPerUser: 2"):
        iam.create_access_key(AccessKey("AKIA3", "dev", "s3", "Active", 3.0), 2)
    iam.update_access_key("AKIA1", "Inactive")
    assert [(k.id, k.status) for k in iam.list_access_keys("DEV")] == [("AKIA1", "Inactive"), ("AKIA2", "Active")]
    assert iam.get_access_key("AKIA2") == AccessKey("AKIA2", "dev", "s2", "Active", 2.0)
    with pytest.raises(DeleteConflict, match="must delete access keys first"):
        iam.delete_user("dev")
    iam.delete_access_key("AKIA1")
    iam.delete_access_key("AKIA2")
    with pytest.raises(NoSuchEntity, match="The Access Key with id AKIA2 cannot be found"):
        iam.delete_access_key("AKIA2")
    with pytest.raises(NoSuchEntity):
        iam.update_access_key("AKIA2", "Active")
    iam.delete_user("dev")
    assert iam.get_user("dev") is None


def test_sessions_and_their_purge(iam):
    old = Session("ASIA1", "s", "t", "arn:aws:sts::000000000000:assumed-role/r/s", "AROA:s", 100.0)
    new = Session("ASIA2", "s", "t", "arn:aws:iam::000000000000:root", "000000000000", 300.0)
    iam.put_session(old)
    iam.put_session(new)
    assert iam.get_session("ASIA1") == old
    assert iam.purge_sessions(200.0) == 1
    assert iam.get_session("ASIA1") is None and iam.get_session("ASIA2") == new


def test_sqlite_keeps_everything_across_a_reopen(tmp_path):
    db = Database(tmp_path / "lamina.db")
    store = SqliteIamStore(db)
    store.create_role(role())
    store.put_role_policy("Exec", "p", "d")
    store.create_user(User("dev", "AIDAAAAAAAAAAAAAAAAA", "/", 1.0))
    store.create_access_key(AccessKey("AKIA1", "dev", "s1", "Active", 1.0), 2)
    db.close()
    db = Database(tmp_path / "lamina.db")
    store = SqliteIamStore(db)
    assert store.get_role("Exec") == role()
    assert store.get_role_policy("Exec", "p") == ("p", "d")
    assert store.get_access_key("AKIA1").secret == "s1"
    db.close()
