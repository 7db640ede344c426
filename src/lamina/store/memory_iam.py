"""MemoryIamStore: the in-memory twin of SqliteIamStore (same contract, no durability)."""

from __future__ import annotations

import threading

from lamina.model.iam import AccessKey, ManagedPolicy, Role, Session, User
from lamina.store.iam import (
    POLICY_ATTACHED,
    ROLE_HAS_ATTACHED,
    ROLE_HAS_INLINE,
    USER_HAS_KEYS,
    access_key_not_found,
    policy_exists,
    policy_not_attachable,
    policy_not_found,
    role_exists,
    role_not_found,
    too_many_keys,
    user_exists,
    user_not_found,
)


class MemoryIamStore:
    """Implements `lamina.store.iam.IamStore`. Case-insensitive names are keyed by `casefold()`."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._roles: dict[str, Role] = {}
        self._inline: dict[str, dict[str, tuple[str, str]]] = {}  # role key -> name key -> (name, doc)
        self._attached: dict[str, list[str]] = {}  # role key -> policy ARNs
        self._policies: dict[str, ManagedPolicy] = {}  # arn -> policy
        self._users: dict[str, User] = {}
        self._keys: dict[str, AccessKey] = {}
        self._sessions: dict[str, Session] = {}

    # --- roles ---------------------------------------------------------------------------------
    def create_role(self, role: Role) -> None:
        with self._lock:
            key = role.name.casefold()
            if key in self._roles:
                raise role_exists(role.name)
            self._roles[key] = role
            self._inline[key] = {}
            self._attached[key] = []

    def get_role(self, name: str) -> Role | None:
        with self._lock:
            return self._roles.get(name.casefold())

    def list_roles(self) -> list[Role]:
        with self._lock:
            return [self._roles[k] for k in sorted(self._roles)]

    def update_role(self, role: Role) -> None:
        with self._lock:
            key = role.name.casefold()
            if key not in self._roles:
                raise role_not_found(role.name)
            self._roles[key] = role

    def delete_role(self, name: str) -> None:
        with self._lock:
            key = self._role_key(name)
            if self._inline[key]:
                raise ROLE_HAS_INLINE
            if self._attached[key]:
                raise ROLE_HAS_ATTACHED
            del self._roles[key], self._inline[key], self._attached[key]

    def put_role_policy(self, role: str, name: str, document: str) -> None:
        with self._lock:
            self._inline[self._role_key(role)][name.casefold()] = (name, document)

    def get_role_policy(self, role: str, name: str) -> tuple[str, str] | None:
        with self._lock:
            return self._inline.get(role.casefold(), {}).get(name.casefold())

    def delete_role_policy(self, role: str, name: str) -> bool:
        with self._lock:
            return self._inline.get(role.casefold(), {}).pop(name.casefold(), None) is not None

    def list_role_policies(self, role: str) -> list[tuple[str, str]]:
        with self._lock:
            policies = self._inline.get(role.casefold(), {})
            return [policies[k] for k in sorted(policies)]

    def attach_role_policy(self, role: str, policy_arn: str, *, customer: bool) -> None:
        with self._lock:
            key = self._role_key(role)
            if customer and policy_arn not in self._policies:
                raise policy_not_attachable(policy_arn)
            if policy_arn not in self._attached[key]:
                self._attached[key].append(policy_arn)

    def detach_role_policy(self, role: str, policy_arn: str) -> bool:
        with self._lock:
            attached = self._attached.get(role.casefold(), [])
            if policy_arn in attached:
                attached.remove(policy_arn)
                return True
            return False

    def list_attached_role_policies(self, role: str) -> list[str]:
        with self._lock:
            return list(self._attached.get(role.casefold(), []))

    def _role_key(self, name: str) -> str:
        key = name.casefold()
        if key not in self._roles:
            raise role_not_found(name)
        return key

    # --- customer managed policies -------------------------------------------------------------
    def create_policy(self, arn: str, policy: ManagedPolicy) -> None:
        with self._lock:
            if arn in self._policies:
                raise policy_exists(policy.name)
            self._policies[arn] = policy

    def get_policy(self, arn: str) -> ManagedPolicy | None:
        with self._lock:
            return self._policies.get(arn)

    def list_policies(self) -> list[tuple[str, ManagedPolicy]]:
        with self._lock:
            return sorted(self._policies.items(), key=lambda item: (item[1].name.casefold(), item[0]))

    def delete_policy(self, arn: str) -> None:
        with self._lock:
            if arn not in self._policies:
                raise policy_not_found(arn)
            if any(arn in attached for attached in self._attached.values()):
                raise POLICY_ATTACHED
            del self._policies[arn]

    def attachment_counts(self) -> dict[str, int]:
        with self._lock:
            counts: dict[str, int] = {}
            for attached in self._attached.values():
                for arn in attached:
                    counts[arn] = counts.get(arn, 0) + 1
            return counts

    # --- users and access keys -----------------------------------------------------------------
    def create_user(self, user: User) -> None:
        with self._lock:
            key = user.name.casefold()
            if key in self._users:
                raise user_exists(user.name)
            self._users[key] = user

    def get_user(self, name: str) -> User | None:
        with self._lock:
            return self._users.get(name.casefold())

    def list_users(self) -> list[User]:
        with self._lock:
            return [self._users[k] for k in sorted(self._users)]

    def delete_user(self, name: str) -> None:
        with self._lock:
            key = name.casefold()
            if key not in self._users:
                raise user_not_found(name)
            if any(k.user.casefold() == key for k in self._keys.values()):
                raise USER_HAS_KEYS
            del self._users[key]

    def create_access_key(self, key: AccessKey, limit: int) -> None:
        with self._lock:
            if key.user.casefold() not in self._users:
                raise user_not_found(key.user)
            if sum(1 for k in self._keys.values() if k.user.casefold() == key.user.casefold()) >= limit:
                raise too_many_keys(limit)
            self._keys[key.id] = key

    def get_access_key(self, key_id: str) -> AccessKey | None:
        with self._lock:
            return self._keys.get(key_id)

    def list_access_keys(self, user: str) -> list[AccessKey]:
        with self._lock:
            keys = [k for k in self._keys.values() if k.user.casefold() == user.casefold()]
            return sorted(keys, key=lambda k: (k.created, k.id))

    def update_access_key(self, key_id: str, status: str) -> None:
        with self._lock:
            key = self._keys.get(key_id)
            if key is None:
                raise access_key_not_found(key_id)
            self._keys[key_id] = AccessKey(key.id, key.user, key.secret, status, key.created)

    def delete_access_key(self, key_id: str) -> None:
        with self._lock:
            if self._keys.pop(key_id, None) is None:
                raise access_key_not_found(key_id)

    # --- STS sessions --------------------------------------------------------------------------
    def put_session(self, session: Session) -> None:
        with self._lock:
            self._sessions[session.access_key_id] = session

    def get_session(self, access_key_id: str) -> Session | None:
        with self._lock:
            return self._sessions.get(access_key_id)

    def purge_sessions(self, expired_before: float) -> int:
        with self._lock:
            gone = [k for k, s in self._sessions.items() if s.expires < expired_before]
            for key in gone:
                del self._sessions[key]
            return len(gone)
