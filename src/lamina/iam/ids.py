"""Identifiers and secrets in AWS's formats: unique ids are a four-letter kind prefix and 16
characters of uppercase letters and digits (AROA roles, AIDA users, ANPA policies, AKIA access
keys, ASIA temporary keys); secrets are 40 base64-ish characters."""

from __future__ import annotations

import base64
import hashlib
import secrets
import string

_ID_ALPHABET = string.ascii_uppercase + "234567"
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"

ROLE, USER, POLICY, ACCESS_KEY, TEMPORARY_KEY = "AROA", "AIDA", "ANPA", "AKIA", "ASIA"


def unique_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))


def stable_id(prefix: str, seed: str) -> str:
    """The same id for the same seed (AWS managed policies have fixed ids)."""
    digest = base64.b32encode(hashlib.sha256(seed.encode()).digest()).decode()
    return prefix + digest[:16]


def secret_key() -> str:
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))


def session_token() -> str:
    return "IQoJb3JpZ2luX2VjE" + base64.b64encode(secrets.token_bytes(180)).decode()
