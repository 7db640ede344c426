"""IamStore on SQLite: the `iam_*` and `sts_sessions` tables (migration 6). Every conditional write
checks its condition inside its own transaction (see store/iam.py)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from lamina.model.iam import AccessKey, ManagedPolicy, Role, Session, Tags, User
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
from lamina.store.sqlite.database import Database

_ROLE = "SELECT name, id, path, trust_policy, created, description, max_session, tags FROM iam_roles"
_POLICY = "SELECT arn, name, id, path, document, created, updated, description, tags FROM iam_policies"
_USER = "SELECT name, id, path, created, tags FROM iam_users"
_KEY = "SELECT id, user, secret, status, created FROM iam_access_keys"
_SESSION = "SELECT id, secret, token, arn, user_id, expires FROM sts_sessions"


def _tags(tags: Tags) -> str:
    return json.dumps([list(t) for t in tags])


def _untags(text: str) -> Tags:
    return tuple((k, v) for k, v in json.loads(text))


def _role(row: Any) -> Role:
    name, id_, path, trust, created, description, max_session, tags = row
    return Role(name, id_, path, trust, created, description, max_session, _untags(tags))


def _policy(row: Any) -> tuple[str, ManagedPolicy]:
    arn, name, id_, path, document, created, updated, description, tags = row
    return arn, ManagedPolicy(name, id_, path, document, created, updated, description, _untags(tags))


def _user(row: Any) -> User:
    name, id_, path, created, tags = row
    return User(name, id_, path, created, _untags(tags))


def _role_exists(conn: sqlite3.Connection, name: str) -> None:
    if conn.execute("SELECT 1 FROM iam_roles WHERE name = ?", (name,)).fetchone() is None:
        raise role_not_found(name)


class SqliteIamStore:
    """Implements `lamina.store.iam.IamStore` over the platform's one database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # --- roles ---------------------------------------------------------------------------------
    def create_role(self, role: Role) -> None:
        def create(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO iam_roles (name, id, path, trust_policy, description, max_session, tags, created)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (role.name, role.id, role.path, role.trust_policy, role.description,
                     role.max_session_duration, _tags(role.tags), role.created),
                )  # fmt: skip
            except sqlite3.IntegrityError:
                raise role_exists(role.name) from None

        self._db.write(create)

    def get_role(self, name: str) -> Role | None:
        rows = self._db.query(_ROLE + " WHERE name = ?", (name,))
        return _role(rows[0]) if rows else None

    def list_roles(self) -> list[Role]:
        return [_role(row) for row in self._db.query(_ROLE + " ORDER BY name", ())]

    def update_role(self, role: Role) -> None:
        def update(conn: sqlite3.Connection) -> None:
            cursor = conn.execute(
                "UPDATE iam_roles SET trust_policy = ?, description = ?, max_session = ?, tags = ? WHERE name = ?",
                (role.trust_policy, role.description, role.max_session_duration, _tags(role.tags), role.name),
            )
            if cursor.rowcount == 0:
                raise role_not_found(role.name)

        self._db.write(update)

    def delete_role(self, name: str) -> None:
        def delete(conn: sqlite3.Connection) -> None:
            _role_exists(conn, name)
            if conn.execute("SELECT 1 FROM iam_role_policies WHERE role = ?", (name,)).fetchone():
                raise ROLE_HAS_INLINE
            if conn.execute("SELECT 1 FROM iam_role_attachments WHERE role = ?", (name,)).fetchone():
                raise ROLE_HAS_ATTACHED
            conn.execute("DELETE FROM iam_roles WHERE name = ?", (name,))

        self._db.write(delete)

    def put_role_policy(self, role: str, name: str, document: str) -> None:
        def put(conn: sqlite3.Connection) -> None:
            _role_exists(conn, role)
            # REPLACE would keep the old spelling of the name: delete, then insert as given.
            conn.execute("DELETE FROM iam_role_policies WHERE role = ? AND name = ?", (role, name))
            conn.execute(
                "INSERT INTO iam_role_policies (role, name, document) VALUES (?, ?, ?)", (role, name, document)
            )

        self._db.write(put)

    def get_role_policy(self, role: str, name: str) -> tuple[str, str] | None:
        rows = self._db.query("SELECT name, document FROM iam_role_policies WHERE role = ? AND name = ?", (role, name))
        return (rows[0][0], rows[0][1]) if rows else None

    def delete_role_policy(self, role: str, name: str) -> bool:
        def delete(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute("DELETE FROM iam_role_policies WHERE role = ? AND name = ?", (role, name))
            return cursor.rowcount > 0

        return bool(self._db.write(delete))

    def list_role_policies(self, role: str) -> list[tuple[str, str]]:
        rows = self._db.query("SELECT name, document FROM iam_role_policies WHERE role = ? ORDER BY name", (role,))
        return [(name, document) for name, document in rows]

    def attach_role_policy(self, role: str, policy_arn: str, *, customer: bool) -> None:
        def attach(conn: sqlite3.Connection) -> None:
            _role_exists(conn, role)
            if customer and conn.execute("SELECT 1 FROM iam_policies WHERE arn = ?", (policy_arn,)).fetchone() is None:
                raise policy_not_attachable(policy_arn)
            (order,) = conn.execute("SELECT coalesce(max(attached), 0) + 1 FROM iam_role_attachments").fetchone()
            conn.execute(
                "INSERT OR IGNORE INTO iam_role_attachments (role, policy_arn, attached) VALUES (?, ?, ?)",
                (role, policy_arn, order),
            )

        self._db.write(attach)

    def detach_role_policy(self, role: str, policy_arn: str) -> bool:
        def detach(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "DELETE FROM iam_role_attachments WHERE role = ? AND policy_arn = ?", (role, policy_arn)
            )
            return cursor.rowcount > 0

        return bool(self._db.write(detach))

    def list_attached_role_policies(self, role: str) -> list[str]:
        rows = self._db.query("SELECT policy_arn FROM iam_role_attachments WHERE role = ? ORDER BY attached", (role,))
        return [arn for (arn,) in rows]

    # --- customer managed policies -------------------------------------------------------------
    def create_policy(self, arn: str, policy: ManagedPolicy) -> None:
        def create(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO iam_policies (arn, name, id, path, document, description, tags, created, updated)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (arn, policy.name, policy.id, policy.path, policy.document, policy.description,
                     _tags(policy.tags), policy.created, policy.updated),
                )  # fmt: skip
            except sqlite3.IntegrityError:
                raise policy_exists(policy.name) from None

        self._db.write(create)

    def get_policy(self, arn: str) -> ManagedPolicy | None:
        rows = self._db.query(_POLICY + " WHERE arn = ?", (arn,))
        return _policy(rows[0])[1] if rows else None

    def list_policies(self) -> list[tuple[str, ManagedPolicy]]:
        return [_policy(row) for row in self._db.query(_POLICY + " ORDER BY name COLLATE NOCASE, arn", ())]

    def delete_policy(self, arn: str) -> None:
        def delete(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT 1 FROM iam_policies WHERE arn = ?", (arn,)).fetchone() is None:
                raise policy_not_found(arn)
            if conn.execute("SELECT 1 FROM iam_role_attachments WHERE policy_arn = ?", (arn,)).fetchone():
                raise POLICY_ATTACHED
            conn.execute("DELETE FROM iam_policies WHERE arn = ?", (arn,))

        self._db.write(delete)

    def attachment_counts(self) -> dict[str, int]:
        rows = self._db.query("SELECT policy_arn, count(*) FROM iam_role_attachments GROUP BY policy_arn", ())
        return {arn: int(n) for arn, n in rows}

    # --- users and access keys -----------------------------------------------------------------
    def create_user(self, user: User) -> None:
        def create(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO iam_users (name, id, path, tags, created) VALUES (?, ?, ?, ?, ?)",
                    (user.name, user.id, user.path, _tags(user.tags), user.created),
                )
            except sqlite3.IntegrityError:
                raise user_exists(user.name) from None

        self._db.write(create)

    def get_user(self, name: str) -> User | None:
        rows = self._db.query(_USER + " WHERE name = ?", (name,))
        return _user(rows[0]) if rows else None

    def list_users(self) -> list[User]:
        return [_user(row) for row in self._db.query(_USER + " ORDER BY name", ())]

    def delete_user(self, name: str) -> None:
        def delete(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT 1 FROM iam_users WHERE name = ?", (name,)).fetchone() is None:
                raise user_not_found(name)
            if conn.execute("SELECT 1 FROM iam_access_keys WHERE user = ?", (name,)).fetchone():
                raise USER_HAS_KEYS
            conn.execute("DELETE FROM iam_users WHERE name = ?", (name,))

        self._db.write(delete)

    def create_access_key(self, key: AccessKey, limit: int) -> None:
        def create(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT 1 FROM iam_users WHERE name = ?", (key.user,)).fetchone() is None:
                raise user_not_found(key.user)
            (count,) = conn.execute("SELECT count(*) FROM iam_access_keys WHERE user = ?", (key.user,)).fetchone()
            if count >= limit:
                raise too_many_keys(limit)
            conn.execute(
                "INSERT INTO iam_access_keys (id, user, secret, status, created) VALUES (?, ?, ?, ?, ?)",
                (key.id, key.user, key.secret, key.status, key.created),
            )

        self._db.write(create)

    def get_access_key(self, key_id: str) -> AccessKey | None:
        rows = self._db.query(_KEY + " WHERE id = ?", (key_id,))
        return AccessKey(*rows[0]) if rows else None

    def list_access_keys(self, user: str) -> list[AccessKey]:
        return [AccessKey(*row) for row in self._db.query(_KEY + " WHERE user = ? ORDER BY created, id", (user,))]

    def update_access_key(self, key_id: str, status: str) -> None:
        def update(conn: sqlite3.Connection) -> None:
            if conn.execute("UPDATE iam_access_keys SET status = ? WHERE id = ?", (status, key_id)).rowcount == 0:
                raise access_key_not_found(key_id)

        self._db.write(update)

    def delete_access_key(self, key_id: str) -> None:
        def delete(conn: sqlite3.Connection) -> None:
            if conn.execute("DELETE FROM iam_access_keys WHERE id = ?", (key_id,)).rowcount == 0:
                raise access_key_not_found(key_id)

        self._db.write(delete)

    # --- STS sessions --------------------------------------------------------------------------
    def put_session(self, session: Session) -> None:
        def put(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO sts_sessions (id, secret, token, arn, user_id, expires)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (session.access_key_id, session.secret, session.token, session.arn, session.user_id, session.expires),
            )

        self._db.write(put)

    def get_session(self, access_key_id: str) -> Session | None:
        rows = self._db.query(_SESSION + " WHERE id = ?", (access_key_id,))
        return Session(*rows[0]) if rows else None

    def purge_sessions(self, expired_before: float) -> int:
        def purge(conn: sqlite3.Connection) -> int:
            return conn.execute("DELETE FROM sts_sessions WHERE expires < ?", (expired_before,)).rowcount

        return int(self._db.write(purge))
