"""IamService: roles, policies, users and access keys, with IAM's rules and errors.

Everything is kept and handed back as given (policy documents verbatim); nothing is enforced,
except what strict mode asks (`check_role`). Thread-safe: state lives in the store; methods block
on its commits, so async callers run them in a worker thread.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TypeVar

from lamina.errors import (
    IamLimitExceeded,
    InvalidParameterValue,
    NoSuchEntity,
    ValidationError,
)
from lamina.iam import ids
from lamina.iam.policies import (
    ACCESS_KEYS_PER_USER,
    AWS_MANAGED,
    INLINE_ROLE_POLICY_SIZE,
    MANAGED_POLICIES_PER_ROLE,
    MANAGED_POLICY_SIZE,
    TRUST_POLICY_SIZE,
    allows_service,
    aws_managed,
    parse_policy,
    policy_size,
)
from lamina.model.iam import AccessKey, ManagedPolicy, Role, Tags, User
from lamina.store.iam import (
    IamStore,
    policy_exists,
    policy_not_attachable,
    policy_not_found,
    role_not_found,
    user_not_found,
)

T = TypeVar("T")
LAMBDA_PRINCIPAL = "lambda.amazonaws.com"
CANNOT_ASSUME = "The role defined for the function cannot be assumed by Lambda."
_POLICY_ARN = re.compile(r"arn:aws[a-zA-Z-]*:iam::(aws|\d{12}):policy(/(?:[^/]+/)*)([^/]+)")
_ROLE_ARN = re.compile(r"arn:aws[a-zA-Z-]*:iam::(\d{12}):role(/(?:.+/)?)([^/]+)")


def page(
    items: Sequence[T], key: Callable[[T], str], marker: str | None, max_items: int | None
) -> tuple[list[T], str | None]:
    """IAM pagination: items from `marker` (the key of the first item of this page) on, at most
    `max_items` (default 100); the next page's marker, or None when this one is the last."""
    start = 0
    if marker is not None:
        start = next((i for i, item in enumerate(items) if key(item) == marker), None)  # type: ignore[assignment]
        if start is None:
            raise ValidationError("Invalid Marker.")
    limit = max_items or 100
    chunk = list(items[start : start + limit])
    following = start + limit
    return chunk, key(items[following]) if following < len(items) else None


class IamService:
    def __init__(self, store: IamStore, account_id: str, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.account_id = account_id
        self.clock = clock

    # --- roles ---------------------------------------------------------------------------------
    def create_role(
        self,
        name: str,
        trust_policy: str,
        *,
        path: str = "/",
        description: str | None = None,
        max_session_duration: int | None = None,
        tags: Tags = (),
    ) -> Role:
        self._check_trust(trust_policy)
        duration = 3600 if max_session_duration is None else max_session_duration
        if not 3600 <= duration <= 43200:
            raise ValidationError(
                f"1 validation error detected: Value '{duration}' at 'maxSessionDuration' failed to satisfy "
                "constraint: Member must have value less than or equal to 43200"
            )
        role = Role(name, ids.unique_id(ids.ROLE), path, trust_policy, self.clock(), description, duration, tags)
        self.store.create_role(role)
        return role

    def get_role(self, name: str) -> Role:
        role = self.store.get_role(name)
        if role is None:
            raise role_not_found(name)
        return role

    def list_roles(
        self, path_prefix: str | None = None, marker: str | None = None, max_items: int | None = None
    ) -> tuple[list[Role], str | None]:
        roles = [r for r in self.store.list_roles() if r.path.startswith(path_prefix or "/")]
        return page(roles, lambda r: r.name, marker, max_items)

    def delete_role(self, name: str) -> None:
        self.store.delete_role(name)

    def update_assume_role_policy(self, name: str, trust_policy: str) -> Role:
        self._check_trust(trust_policy)
        role = replace(self.get_role(name), trust_policy=trust_policy)
        self.store.update_role(role)
        return role

    def update_role(self, name: str, description: str | None, max_session_duration: int | None) -> Role:
        role = self.get_role(name)
        if description is not None:
            role = replace(role, description=description)
        if max_session_duration is not None:
            role = replace(role, max_session_duration=max_session_duration)
        self.store.update_role(role)
        return role

    def tag_role(self, name: str, tags: Tags) -> None:
        """Add or overwrite tags (at most 50 per role, as IAM allows)."""
        role = self.get_role(name)
        merged = dict(role.tags)
        merged.update(tags)
        if len(merged) > 50:
            raise IamLimitExceeded("Cannot exceed quota for TagsPerRole: 50")
        self.store.update_role(replace(role, tags=tuple(merged.items())))

    def untag_role(self, name: str, keys: Sequence[str]) -> None:
        role = self.get_role(name)
        self.store.update_role(replace(role, tags=tuple((k, v) for k, v in role.tags if k not in keys)))

    def role_arn(self, role: Role) -> str:
        return role.arn(self.account_id)

    def role_for_arn(self, role_arn: str) -> Role | None:
        """The role an ARN names in this account (path included), if it exists."""
        m = _ROLE_ARN.fullmatch(role_arn)
        if m is None or m.group(1) != self.account_id:
            return None
        role = self.store.get_role(m.group(3))
        if role is None or role.path != m.group(2) or role.name != m.group(3):
            return None
        return role

    def _check_trust(self, document: str) -> None:
        parse_policy(document, trust=True)
        if policy_size(document) > TRUST_POLICY_SIZE:
            raise IamLimitExceeded(f"Cannot exceed quota for ACLSizePerRole: {TRUST_POLICY_SIZE}")

    # --- inline role policies ------------------------------------------------------------------
    def put_role_policy(self, role: str, name: str, document: str) -> None:
        parse_policy(document)
        others = sum(
            policy_size(doc) for other, doc in self.store.list_role_policies(role) if other.lower() != name.lower()
        )
        if others + policy_size(document) > INLINE_ROLE_POLICY_SIZE:
            raise IamLimitExceeded(f"Maximum policy size of {INLINE_ROLE_POLICY_SIZE} bytes exceeded for role {role}")
        self.store.put_role_policy(role, name, document)

    def get_role_policy(self, role: str, name: str) -> tuple[str, str]:
        self.get_role(role)
        found = self.store.get_role_policy(role, name)
        if found is None:
            raise NoSuchEntity(f"The role policy with name {name} cannot be found.")
        return found

    def delete_role_policy(self, role: str, name: str) -> None:
        self.get_role(role)
        if not self.store.delete_role_policy(role, name):
            raise NoSuchEntity(f"The role policy with name {name} cannot be found.")

    def list_role_policies(
        self, role: str, marker: str | None = None, max_items: int | None = None
    ) -> tuple[list[str], str | None]:
        self.get_role(role)
        names = [name for name, _ in self.store.list_role_policies(role)]
        return page(names, lambda n: n, marker, max_items)

    # --- attachments ---------------------------------------------------------------------------
    def attach_role_policy(self, role: str, policy_arn: str) -> None:
        self.get_role(role)
        customer = aws_managed(policy_arn) is None
        if customer and self._customer_arn(policy_arn) is None:
            raise policy_not_attachable(policy_arn)
        attached = self.store.list_attached_role_policies(role)
        if policy_arn not in attached and len(attached) >= MANAGED_POLICIES_PER_ROLE:
            raise IamLimitExceeded(f"Cannot exceed quota for PoliciesPerRole: {MANAGED_POLICIES_PER_ROLE}")
        self.store.attach_role_policy(role, policy_arn, customer=customer)

    def detach_role_policy(self, role: str, policy_arn: str) -> None:
        self.get_role(role)
        if not self.store.detach_role_policy(role, policy_arn):
            raise NoSuchEntity(f"Policy {policy_arn} was not found.")

    def list_attached_role_policies(
        self, role: str, path_prefix: str | None = None, marker: str | None = None, max_items: int | None = None
    ) -> tuple[list[tuple[str, str]], str | None]:
        """(policy name, policy ARN) pairs."""
        self.get_role(role)
        pairs = []
        for arn in self.store.list_attached_role_policies(role):
            m = _POLICY_ARN.fullmatch(arn)
            path, name = (m.group(2), m.group(3)) if m else ("/", arn.rsplit("/", 1)[-1])
            if path.startswith(path_prefix or "/"):
                pairs.append((name, arn))
        return page(pairs, lambda p: p[1], marker, max_items)

    # --- managed policies ----------------------------------------------------------------------
    def create_policy(
        self, name: str, document: str, *, path: str = "/", description: str | None = None, tags: Tags = ()
    ) -> tuple[str, ManagedPolicy]:
        parse_policy(document)
        if policy_size(document) > MANAGED_POLICY_SIZE:
            raise IamLimitExceeded(f"Cannot exceed quota for PolicySize: {MANAGED_POLICY_SIZE}")
        now = self.clock()
        policy = ManagedPolicy(name, ids.unique_id(ids.POLICY), path, document, now, now, description, tags)
        arn = policy.arn(self.account_id)
        if any(p.name.lower() == name.lower() for _, p in self.store.list_policies()):
            raise policy_exists(name)
        self.store.create_policy(arn, policy)
        return arn, policy

    def get_policy(self, arn: str) -> tuple[ManagedPolicy, int]:
        """The policy (AWS managed or the account's) and how many roles have it attached."""
        policy = aws_managed(arn) or self._customer_arn(arn)
        if policy is None:
            raise policy_not_found(arn)
        return policy, self.store.attachment_counts().get(arn, 0)

    def delete_policy(self, arn: str) -> None:
        if aws_managed(arn) is not None:
            raise InvalidParameterValue(f"Policy {arn} is an AWS managed policy and cannot be deleted.")
        self.store.delete_policy(arn)

    def list_policies(
        self,
        scope: str | None = None,
        only_attached: bool = False,
        path_prefix: str | None = None,
        marker: str | None = None,
        max_items: int | None = None,
    ) -> tuple[list[tuple[str, ManagedPolicy, int]], str | None]:
        """(arn, policy, attachment count) of AWS managed (`scope` AWS), the account's (Local) or
        both (All, the default)."""
        counts = self.store.attachment_counts()
        found: list[tuple[str, ManagedPolicy, int]] = []
        if scope in (None, "All", "AWS"):
            found += [(arn, p, counts.get(arn, 0)) for arn, p in sorted(AWS_MANAGED.items(), key=lambda i: i[1].name)]
        if scope in (None, "All", "Local"):
            found += [(arn, p, counts.get(arn, 0)) for arn, p in self.store.list_policies()]
        found = [f for f in found if f[1].path.startswith(path_prefix or "/") and (f[2] or not only_attached)]
        return page(found, lambda f: f[0], marker, max_items)

    def _customer_arn(self, arn: str) -> ManagedPolicy | None:
        return self.store.get_policy(arn)

    # --- users and access keys -----------------------------------------------------------------
    def create_user(self, name: str, *, path: str = "/", tags: Tags = ()) -> User:
        user = User(name, ids.unique_id(ids.USER), path, self.clock(), tags)
        self.store.create_user(user)
        return user

    def get_user(self, name: str) -> User:
        user = self.store.get_user(name)
        if user is None:
            raise user_not_found(name)
        return user

    def list_users(
        self, path_prefix: str | None = None, marker: str | None = None, max_items: int | None = None
    ) -> tuple[list[User], str | None]:
        users = [u for u in self.store.list_users() if u.path.startswith(path_prefix or "/")]
        return page(users, lambda u: u.name, marker, max_items)

    def delete_user(self, name: str) -> None:
        self.store.delete_user(name)

    def user_arn(self, user: User) -> str:
        return user.arn(self.account_id)

    def user_for_key(self, access_key_id: str | None) -> str | None:
        """The IAM user an access key belongs to (None for the root key and unknown keys)."""
        key = self.store.get_access_key(access_key_id) if access_key_id else None
        return key.user if key is not None else None

    def create_access_key(self, user: str) -> AccessKey:
        stored = self.get_user(user)
        key = AccessKey(ids.unique_id(ids.ACCESS_KEY), stored.name, ids.secret_key(), "Active", self.clock())
        self.store.create_access_key(key, ACCESS_KEYS_PER_USER)
        return key

    def get_access_key(self, key_id: str) -> AccessKey:
        key = self.store.get_access_key(key_id)
        if key is None:
            raise NoSuchEntity(f"The Access Key with id {key_id} cannot be found.")
        return key

    def list_access_keys(self, user: str) -> list[AccessKey]:
        self.get_user(user)
        return self.store.list_access_keys(user)

    def update_access_key(self, user: str, key_id: str, status: str) -> None:
        self._own_key(user, key_id)
        self.store.update_access_key(key_id, status)

    def delete_access_key(self, user: str, key_id: str) -> None:
        self._own_key(user, key_id)
        self.store.delete_access_key(key_id)

    def _own_key(self, user: str, key_id: str) -> AccessKey:
        self.get_user(user)
        key = self.store.get_access_key(key_id)
        if key is None or key.user.lower() != user.lower():
            raise NoSuchEntity(f"The Access Key with id {key_id} cannot be found.")
        return key

    # --- strict mode ---------------------------------------------------------------------------
    def check_role(self, role_arn: str) -> None:
        """Strict mode's question before CreateFunction / UpdateFunctionConfiguration: does the
        role exist here and does its trust policy let Lambda assume it? Lambda's error if not."""
        role = self.role_for_arn(role_arn)
        if role is None or not allows_service(role.trust_policy, LAMBDA_PRINCIPAL):
            raise InvalidParameterValue(CANNOT_ASSUME)
