"""The contract of the IAM store: roles with their inline policies and managed-policy attachments,
customer managed policies, users with their access keys, and STS sessions. Implemented by
store/sqlite/iam.py and its in-memory twin store/memory_iam.py (tests/unit/store/test_iam_store.py
runs one suite against both).

Same rules as every store (store/base.py): thread-safe, synchronous, durable once a write returns.
Names of roles, users and inline policies are unique regardless of case, as in IAM; they are
returned as created. Conditions that must hold at the moment of a write (the role still exists,
a user has fewer than two keys, nothing is attached to a policy being deleted) are checked in the
write's own transaction and raised with IAM's errors, built by the helpers below.
"""

from __future__ import annotations

from typing import Protocol

from lamina.errors import DeleteConflict, EntityAlreadyExists, IamLimitExceeded, NoSuchEntity
from lamina.model.iam import AccessKey, ManagedPolicy, Role, Session, User


def role_not_found(name: str) -> NoSuchEntity:
    return NoSuchEntity(f"The role with name {name} cannot be found.")


def user_not_found(name: str) -> NoSuchEntity:
    return NoSuchEntity(f"The user with name {name} cannot be found.")


def policy_not_found(arn: str) -> NoSuchEntity:
    return NoSuchEntity(f"Policy {arn} was not found.")


def policy_not_attachable(arn: str) -> NoSuchEntity:
    return NoSuchEntity(f"Policy {arn} does not exist or is not attachable.")


def access_key_not_found(key_id: str) -> NoSuchEntity:
    return NoSuchEntity(f"The Access Key with id {key_id} cannot be found.")


def role_exists(name: str) -> EntityAlreadyExists:
    return EntityAlreadyExists(f"Role with name {name} already exists.")


def user_exists(name: str) -> EntityAlreadyExists:
    return EntityAlreadyExists(f"User with name {name} already exists.")


def policy_exists(name: str) -> EntityAlreadyExists:
    return EntityAlreadyExists(f"A policy called {name} already exists. Duplicate names are not allowed.")


ROLE_HAS_INLINE = DeleteConflict("Cannot delete entity, must delete policies first.")
ROLE_HAS_ATTACHED = DeleteConflict("Cannot delete entity, must detach all policies first.")
POLICY_ATTACHED = DeleteConflict("Cannot delete a policy attached to entities.")
USER_HAS_KEYS = DeleteConflict("Cannot delete entity, must delete access keys first.")


def too_many_keys(limit: int) -> IamLimitExceeded:
    return IamLimitExceeded(f"Cannot exceed quota for AccessKeysPerUser: {limit}")


class IamStore(Protocol):
    # --- roles ---------------------------------------------------------------------------------
    def create_role(self, role: Role) -> None:
        """Raises EntityAlreadyExists when a role of that name (any case) exists."""

    def get_role(self, name: str) -> Role | None: ...

    def list_roles(self) -> list[Role]:
        """Every role, ordered by name (case-insensitively)."""

    def update_role(self, role: Role) -> None:
        """Replace the stored role of that name; raises NoSuchEntity if it is gone."""

    def delete_role(self, name: str) -> None:
        """Raises NoSuchEntity, or DeleteConflict while inline policies or attachments remain."""

    def put_role_policy(self, role: str, name: str, document: str) -> None:
        """Insert or replace an inline policy; raises NoSuchEntity if the role does not exist."""

    def get_role_policy(self, role: str, name: str) -> tuple[str, str] | None:
        """(the policy's name as stored, its document)."""

    def delete_role_policy(self, role: str, name: str) -> bool: ...

    def list_role_policies(self, role: str) -> list[tuple[str, str]]:
        """(name, document) of the role's inline policies, by name."""

    def attach_role_policy(self, role: str, policy_arn: str, *, customer: bool) -> None:
        """Idempotent. Raises NoSuchEntity if the role, or (`customer`) the managed policy, is gone."""

    def detach_role_policy(self, role: str, policy_arn: str) -> bool: ...

    def list_attached_role_policies(self, role: str) -> list[str]:
        """Policy ARNs, in attachment order."""

    # --- customer managed policies -------------------------------------------------------------
    def create_policy(self, arn: str, policy: ManagedPolicy) -> None:
        """Raises EntityAlreadyExists if the ARN is taken."""

    def get_policy(self, arn: str) -> ManagedPolicy | None: ...

    def list_policies(self) -> list[tuple[str, ManagedPolicy]]:
        """(arn, policy), by name."""

    def delete_policy(self, arn: str) -> None:
        """Raises NoSuchEntity, or DeleteConflict while any role has it attached."""

    def attachment_counts(self) -> dict[str, int]:
        """Policy ARN -> how many roles have it attached."""

    # --- users and access keys -----------------------------------------------------------------
    def create_user(self, user: User) -> None: ...

    def get_user(self, name: str) -> User | None: ...

    def list_users(self) -> list[User]: ...

    def delete_user(self, name: str) -> None:
        """Raises NoSuchEntity, or DeleteConflict while the user has access keys."""

    def create_access_key(self, key: AccessKey, limit: int) -> None:
        """Raises NoSuchEntity if the user is gone, LimitExceeded if it has `limit` keys already."""

    def get_access_key(self, key_id: str) -> AccessKey | None: ...

    def list_access_keys(self, user: str) -> list[AccessKey]:
        """Oldest first."""

    def update_access_key(self, key_id: str, status: str) -> None:
        """Raises NoSuchEntity if the key is gone."""

    def delete_access_key(self, key_id: str) -> None:
        """Raises NoSuchEntity if the key is gone."""

    # --- STS sessions --------------------------------------------------------------------------
    def put_session(self, session: Session) -> None: ...

    def get_session(self, access_key_id: str) -> Session | None: ...

    def purge_sessions(self, expired_before: float) -> int:
        """Delete sessions that expired before the given time; returns how many."""
