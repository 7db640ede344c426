"""TokenService: who a caller is (GetCallerIdentity), temporary credentials (AssumeRole,
GetSessionToken), and the secrets behind every key Lamina issued, for SigV4 verification.

A caller is known by the access key id of its signature. The configured root key (and, when
auth is off, any key Lamina did not issue) is the account's root; a key from CreateAccessKey is its
IAM user; a temporary key is whoever its session was issued to. Sessions are stored, so they
outlive a restart until they expire; expired ones answer ExpiredToken for a day, then go.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from lamina.errors import AccessDenied, ExpiredToken, ValidationError
from lamina.iam import ids
from lamina.iam.service import IamService
from lamina.model.iam import Identity, Role, Session
from lamina.store.iam import IamStore

EXPIRED = "The security token included in the request is expired"
KEEP_EXPIRED_S = 86400.0
ROOT_SESSION_MAX_S = 3600
_ROLE_ARN = re.compile(r"arn:aws[a-zA-Z-]*:iam::\d{12}:role/.+")


@dataclass(frozen=True, slots=True)
class AssumedRole:
    session: Session
    role: Role
    assumed_role_id: str  # "AROA...:session-name"


class TokenService:
    def __init__(
        self, iam: IamService, store: IamStore, root_key: str | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.iam = iam
        self.store = store
        self.root_key = root_key
        self.clock = clock

    @property
    def account_id(self) -> str:
        return self.iam.account_id

    def root(self) -> Identity:
        return Identity(self.account_id, self.account_id, f"arn:aws:iam::{self.account_id}:root")

    def identity(self, access_key_id: str | None) -> Identity:
        """GetCallerIdentity for a caller's key (None: an unsigned request, taken as root)."""
        if not access_key_id or access_key_id == self.root_key:
            return self.root()
        if access_key_id.startswith(ids.TEMPORARY_KEY):
            session = self.store.get_session(access_key_id)
            if session is not None:
                if session.expires <= self.clock():
                    raise ExpiredToken(EXPIRED)
                return Identity(session.user_id, self.account_id, session.arn)
        key = self.store.get_access_key(access_key_id)
        if key is not None:
            user = self.store.get_user(key.user)
            if user is not None:
                return Identity(user.id, self.account_id, self.iam.user_arn(user))
        return self.root()

    def assume_role(
        self, caller_key: str | None, role_arn: str, session_name: str, duration: int | None = None
    ) -> AssumedRole:
        caller = self.identity(caller_key)
        role = self.iam.role_for_arn(role_arn) if _ROLE_ARN.fullmatch(role_arn) else None
        if role is None:
            raise AccessDenied(
                f"User: {caller.arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
            )
        seconds = 3600 if duration is None else duration
        if seconds > role.max_session_duration:
            raise ValidationError("The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
        assumed_id = f"{role.id}:{session_name}"
        arn = f"arn:aws:sts::{self.account_id}:assumed-role/{role.name}/{session_name}"
        return AssumedRole(self._issue(arn, assumed_id, seconds), role, assumed_id)

    def function_session(self, role_arn: str, function_name: str, seconds: int = 43200) -> Session | None:
        """Credentials an execution environment could run with, as Lambda gives each one its
        role's (session name = the function's name); None when the role is not one of this
        account's, so the caller falls back to the server's own keys."""
        role = self.iam.role_for_arn(role_arn) if _ROLE_ARN.fullmatch(role_arn) else None
        if role is None:
            return None
        arn = f"arn:aws:sts::{self.account_id}:assumed-role/{role.name}/{function_name}"
        return self._issue(arn, f"{role.id}:{function_name}", seconds)

    def get_session_token(self, caller_key: str | None, duration: int | None = None) -> Session:
        if caller_key and caller_key.startswith(ids.TEMPORARY_KEY) and self.store.get_session(caller_key):
            raise AccessDenied("Cannot call GetSessionToken with session credentials")
        caller = self.identity(caller_key)
        seconds = 43200 if duration is None else duration
        if caller.arn.endswith(":root"):
            seconds = min(seconds, ROOT_SESSION_MAX_S)  # AWS: account owners get at most an hour
        return self._issue(caller.arn, caller.user_id, seconds)

    def _issue(self, arn: str, user_id: str, seconds: int) -> Session:
        now = self.clock()
        self.store.purge_sessions(now - KEEP_EXPIRED_S)
        session = Session(
            access_key_id=ids.unique_id(ids.TEMPORARY_KEY),
            secret=ids.secret_key(),
            token=ids.session_token(),
            arn=arn,
            user_id=user_id,
            expires=float(int(now) + seconds),  # whole seconds, as the wire carries them
        )
        self.store.put_session(session)
        return session

    def secret_for(self, access_key_id: str) -> tuple[str, str | None] | None:
        """(secret, session token or None) of a key Lamina issued and that is usable now; None for
        a key it does not know or that is inactive. Raises ExpiredToken for an expired session."""
        if access_key_id.startswith(ids.TEMPORARY_KEY):
            session = self.store.get_session(access_key_id)
            if session is None:
                return None
            if session.expires <= self.clock():
                raise ExpiredToken(EXPIRED)
            return session.secret, session.token
        key = self.store.get_access_key(access_key_id)
        if key is None or key.status != "Active":
            return None
        return key.secret, None
