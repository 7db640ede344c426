"""The records IAM and STS keep. ARNs are derived (`arn(account)`), not stored, so a changed
LAMINA_ACCOUNT_ID renames everything consistently."""

from __future__ import annotations

from dataclasses import dataclass

Tags = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    id: str  # AROA + 16
    path: str  # "/" or "/a/b/"
    trust_policy: str  # AssumeRolePolicyDocument, verbatim
    created: float  # epoch seconds
    description: str | None = None
    max_session_duration: int = 3600
    tags: Tags = ()

    def arn(self, account: str) -> str:
        return f"arn:aws:iam::{account}:role{self.path}{self.name}"


@dataclass(frozen=True, slots=True)
class ManagedPolicy:
    """A customer managed policy (stored), or an AWS managed one (the built-in catalogue)."""

    name: str
    id: str  # ANPA + 16
    path: str
    document: str
    created: float
    updated: float
    description: str | None = None
    tags: Tags = ()
    aws_managed: bool = False

    def arn(self, account: str) -> str:
        owner = "aws" if self.aws_managed else account
        return f"arn:aws:iam::{owner}:policy{self.path}{self.name}"


@dataclass(frozen=True, slots=True)
class User:
    name: str
    id: str  # AIDA + 16
    path: str
    created: float
    tags: Tags = ()

    def arn(self, account: str) -> str:
        return f"arn:aws:iam::{account}:user{self.path}{self.name}"


@dataclass(frozen=True, slots=True)
class AccessKey:
    id: str  # AKIA + 16
    user: str
    secret: str
    status: str  # Active | Inactive
    created: float


@dataclass(frozen=True, slots=True)
class Session:
    """Temporary credentials from AssumeRole or GetSessionToken, valid until `expires`."""

    access_key_id: str  # ASIA + 16
    secret: str
    token: str
    arn: str  # who the holder is: the assumed-role ARN, or the caller of GetSessionToken
    user_id: str  # GetCallerIdentity's UserId: "AROA...:session-name", or the caller's
    expires: float  # epoch seconds


@dataclass(frozen=True, slots=True)
class Identity:
    """What GetCallerIdentity answers."""

    user_id: str
    account: str
    arn: str
