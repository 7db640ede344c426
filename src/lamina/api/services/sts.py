"""The STS API (query protocol, botocore model `sts/2011-06-15`): params ↔ TokenService, and the
credential lookup that makes issued keys valid SigV4 credentials for the whole API."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from lamina.api.auth import CredentialLookup, Secret, chain_credentials, static_credentials
from lamina.api.context import Handler, RequestContext
from lamina.config import Settings
from lamina.iam.policies import parse_policy
from lamina.iam.tokens import TokenService
from lamina.model.iam import Session

Params = dict[str, Any]


def credential_lookup(tokens: TokenService) -> CredentialLookup:
    """Access keys from CreateAccessKey and AssumeRole/GetSessionToken sessions, for SigV4."""

    def lookup(access_key_id: str) -> str | Secret | None:
        found = tokens.secret_for(access_key_id)
        if found is None:
            return None
        secret, token = found
        return Secret(secret, token) if token is not None else secret

    return lookup


def credentials(session: Session) -> dict[str, Any]:
    return {
        "AccessKeyId": session.access_key_id,
        "SecretAccessKey": session.secret,
        "SessionToken": session.token,
        "Expiration": datetime.fromtimestamp(session.expires, UTC),
    }


class StsApi:
    def __init__(self, tokens: TokenService) -> None:
        self.tokens = tokens

    def handlers(self) -> dict[str, Handler]:
        return {
            "GetCallerIdentity": self.get_caller_identity,
            "AssumeRole": self.assume_role,
            "GetSessionToken": self.get_session_token,
        }

    async def get_caller_identity(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        identity = await asyncio.to_thread(self.tokens.identity, ctx.access_key_id)
        return {"UserId": identity.user_id, "Account": identity.account, "Arn": identity.arn}

    async def assume_role(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        if "Policy" in params:
            parse_policy(params["Policy"])  # a session policy: kept nowhere, but must be a policy
        assumed = await asyncio.to_thread(
            self.tokens.assume_role,
            ctx.access_key_id,
            params["RoleArn"],
            params["RoleSessionName"],
            params.get("DurationSeconds"),
        )
        return {
            "Credentials": credentials(assumed.session),
            "AssumedRoleUser": {"AssumedRoleId": assumed.assumed_role_id, "Arn": assumed.session.arn},
            "PackedPolicySize": 0 if "Policy" in params or "PolicyArns" in params else None,
        }

    async def get_session_token(self, ctx: RequestContext, params: Params) -> dict[str, Any]:
        session = await asyncio.to_thread(
            self.tokens.get_session_token, ctx.access_key_id, params.get("DurationSeconds")
        )
        return {"Credentials": credentials(session)}


def api_credentials(settings: Settings, tokens: TokenService) -> CredentialLookup | None:
    """What the edge verifies signatures against: with auth on, the configured key pair, then the
    keys IAM and STS issued; with auth off, nothing (open access)."""
    if not settings.auth_required:
        return None
    configured = static_credentials({settings.access_key_id: settings.secret_access_key})  # type: ignore[dict-item]
    return chain_credentials(configured, credential_lookup(tokens))
