"""SigV4 verification: recompute the signature of the request as received and compare.

The canonicalisation is botocore's own (`botocore.auth.SigV4Auth`): path normalisation and
quoting, canonical headers, string to sign and key derivation, so Lamina and boto3 cannot drift.
The path is the raw path exactly as the client sent it: botocore signs the *encoded* path and
quotes it once more (S3 excepted), so decoding it first would break every URL-encoded ARN. The
query is decoded and re-encoded per the SigV4 rules, which is what botocore sends and what other
SDKs sign.

Rules (AWS's messages; docs "Signature Version 4 errors" and the SigV4 troubleshooting guide):
- with a credential lookup configured, every request must be signed (403
  `MissingAuthenticationTokenException` "Missing Authentication Token"), with a known key (403
  `UnrecognizedClientException`), within 15 minutes of now (403 `InvalidSignatureException`
  "Signature expired: ..."), and with the right signature (403 `InvalidSignatureException`);
- presigned URLs (`X-Amz-Signature` in the query) must also be used before `X-Amz-Expires`;
- a hex `x-amz-content-sha256` must be the body's hash (it is what was signed);
- temporary keys (STS) must come with their session token (`X-Amz-Security-Token`), else 403
  `UnrecognizedClientException`;
- with no lookup, any request is accepted and the scope only tells region and caller.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import unquote

from botocore.auth import EMPTY_SHA256_HASH, SIGV4_TIMESTAMP, S3SigV4Auth, SigV4Auth
from botocore.credentials import Credentials

from lamina.api.wire import HttpRequest
from lamina.errors import IncompleteSignature, InvalidSignature, MissingAuthentication, UnrecognizedClient


@dataclass(frozen=True, slots=True)
class Secret:
    """A key's secret and, for temporary credentials, the session token that must come with it
    (`X-Amz-Security-Token`)."""

    secret: str
    session_token: str | None = None


# (access key id) -> its secret (a str, or a Secret for temporary keys), or None when the key is
# unknown. A lookup may raise an AuthError itself (an expired session's ExpiredTokenException).
# IAM's access keys and STS sessions plug in here.
CredentialLookup = Callable[[str], str | Secret | None]

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = timedelta(minutes=15)
MAX_PRESIGN_EXPIRES = 604800  # 7 days, SigV4's ceiling
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS "
    "Secret Access Key and signing method. Consult the service documentation for details."
)
_HEX64 = re.compile(r"[0-9a-f]{64}")
_S3_SIGNING_NAMES = frozenset({"s3", "s3-object-lambda", "s3express"})


def static_credentials(keys: Mapping[str, str]) -> CredentialLookup:
    table = dict(keys)
    return table.get


def chain_credentials(*lookups: CredentialLookup) -> CredentialLookup:
    """The first lookup that knows the key answers."""

    def lookup(access_key: str) -> str | Secret | None:
        for candidate in lookups:
            found = candidate(access_key)
            if found is not None:
                return found
        return None

    return lookup


@dataclass(frozen=True, slots=True)
class Signature:
    """The SigV4 parameters a request carries, from its Authorization header or its query."""

    access_key: str
    date: str  # the scope's yyyymmdd
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    timestamp: str | None  # X-Amz-Date (or Date) as yyyymmddThhmmssZ
    presigned: bool = False
    expires: int | None = None


def parse_signature(request: HttpRequest) -> Signature | None:
    """The request's SigV4 parameters; None when it is unsigned. Raises IncompleteSignature for
    an Authorization header that is present but malformed."""
    header = request.headers.get("authorization")
    if header is not None:
        return _from_header(header, request.headers)
    if "X-Amz-Signature=" in request.query:
        return _from_query(request)
    return None


def _from_header(header: str, headers: Mapping[str, str]) -> Signature:
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise IncompleteSignature(f"Unsupported Authorization Type; Lamina accepts {ALGORITHM} (Signature Version 4)")
    fields = {}
    for part in rest.split(","):
        key, sep, value = part.strip().partition("=")
        if sep:
            fields[key] = value
    problems = [
        f"Authorization header requires '{name}' parameter."
        for name in ("Credential", "Signature", "SignedHeaders")
        if not fields.get(name)
    ]
    timestamp = _header_timestamp(headers)
    if timestamp is None:
        problems.append("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    scope = fields.get("Credential", "").split("/")
    if not problems and (len(scope) != 5 or scope[4] != "aws4_request"):
        problems.append(f"Credential should be scoped to a valid region, not '{fields['Credential']}'.")
    if problems:
        raise IncompleteSignature(" ".join(problems) + f" Authorization={header}")
    return Signature(
        access_key=scope[0],
        date=scope[1],
        region=scope[2],
        service=scope[3],
        signed_headers=tuple(fields["SignedHeaders"].split(";")),
        signature=fields["Signature"],
        timestamp=timestamp,
    )


def _from_query(request: HttpRequest) -> Signature:
    params = {k: v for k, v in request.query_pairs}
    missing = [
        name
        for name in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature")
        if not params.get(name)
    ]
    if missing:
        raise IncompleteSignature(f"Query-string authentication requires the {', '.join(missing)} parameters.")
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise IncompleteSignature(f"X-Amz-Algorithm only supports {ALGORITHM}.")
    scope = params["X-Amz-Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise IncompleteSignature(f"Credential should be scoped to a valid region, not '{params['X-Amz-Credential']}'.")
    try:
        expires = int(params.get("X-Amz-Expires", "900"))
    except ValueError:
        raise IncompleteSignature("X-Amz-Expires should be a number.") from None
    return Signature(
        access_key=scope[0],
        date=scope[1],
        region=scope[2],
        service=scope[3],
        signed_headers=tuple(params["X-Amz-SignedHeaders"].split(";")),
        signature=params["X-Amz-Signature"],
        timestamp=params["X-Amz-Date"],
        presigned=True,
        expires=expires,
    )


def _header_timestamp(headers: Mapping[str, str]) -> str | None:
    amz = headers.get("x-amz-date")
    if amz:
        return amz
    date = headers.get("date")
    if date:
        try:
            return parsedate_to_datetime(date).astimezone(UTC).strftime(SIGV4_TIMESTAMP)
        except (TypeError, ValueError):
            return None
    return None


def _session_token(request: HttpRequest) -> str | None:
    token = request.headers.get("x-amz-security-token")
    if token is None:
        token = next((v for k, v in request.query_pairs if k == "X-Amz-Security-Token"), None)
    return token


def payload_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256_HASH


def _as_sent(value: str) -> str:
    """Header bytes arrive as latin-1 text; clients sign the UTF-8 text they meant."""
    if value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


class _SignedHeaders(dict):
    """The shape botocore's `canonical_headers` expects of its header map."""

    def get_all(self, name: str) -> list[str]:
        return [self[name]]


class _Context:
    __slots__ = ("context",)

    def __init__(self, timestamp: str) -> None:
        self.context = {"timestamp": timestamp}


class Authenticator:
    """Verifies SigV4 signatures against a credential lookup; None lookup = open access."""

    def __init__(self, lookup: CredentialLookup | None, *, clock: Callable[[], float] = time.time) -> None:
        self.lookup = lookup
        self.clock = clock

    @property
    def required(self) -> bool:
        return self.lookup is not None

    def authenticate(
        self, request: HttpRequest, signature: Signature | None, body_hash: str | None = None
    ) -> str | None:
        """The caller's access key id (None for an unsigned request when that is allowed).

        `body_hash` is the body's SHA-256 hex when the caller computed it already (off the event
        loop, for large bodies)."""
        if self.lookup is None:
            return signature.access_key if signature is not None else None
        if signature is None:
            raise MissingAuthentication("Missing Authentication Token")
        secret = self.lookup(signature.access_key)
        if secret is None:
            raise UnrecognizedClient("The security token included in the request is invalid.")
        if isinstance(secret, Secret):
            token = (_session_token(request) or "").encode()
            if secret.session_token is not None and not hmac.compare_digest(token, secret.session_token.encode()):
                raise UnrecognizedClient("The security token included in the request is invalid.")
            secret = secret.secret
        self._check_time(signature)
        declared = request.headers.get("x-amz-content-sha256")
        if declared is not None and _HEX64.fullmatch(declared):
            if declared != (body_hash or payload_hash(request.body)):
                raise InvalidSignature(MISMATCH)
            content_hash = declared
        elif declared is not None:
            content_hash = declared  # UNSIGNED-PAYLOAD and friends: what was signed is the literal
        elif signature.presigned and signature.service in _S3_SIGNING_NAMES:
            content_hash = "UNSIGNED-PAYLOAD"
        else:
            content_hash = body_hash or payload_hash(request.body)
        expected = self.compute(request, signature, secret, content_hash)
        if not hmac.compare_digest(expected, signature.signature):
            raise InvalidSignature(MISMATCH)
        return signature.access_key

    def _check_time(self, signature: Signature) -> None:
        stamp = signature.timestamp or ""
        try:  # strptime costs more than the rest of the check together
            if len(stamp) != 16 or stamp[8] != "T" or stamp[15] != "Z":
                raise ValueError(stamp)
            signed_at = datetime(
                int(stamp[0:4]), int(stamp[4:6]), int(stamp[6:8]),
                int(stamp[9:11]), int(stamp[11:13]), int(stamp[13:15]), tzinfo=UTC,
            )  # fmt: skip
        except ValueError:
            raise IncompleteSignature(f"Date must be in ISO-8601 'basic format'. Got '{stamp}'.") from None
        if stamp[:8] != signature.date:
            raise InvalidSignature(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
                f"'{signature.date}' != '{stamp[:8]}', from '{stamp}'."
            )
        now = datetime.fromtimestamp(self.clock(), UTC)
        fmt = SIGV4_TIMESTAMP
        if signature.presigned:
            expires = signature.expires or 0
            if not 1 <= expires <= MAX_PRESIGN_EXPIRES:
                raise IncompleteSignature(
                    f"X-Amz-Expires must be between 1 and {MAX_PRESIGN_EXPIRES} seconds, not {expires}."
                )
            if now > signed_at + timedelta(seconds=expires):
                raise InvalidSignature(
                    f"Signature expired: {stamp} is now earlier than "
                    f"{(now - timedelta(seconds=expires)).strftime(fmt)} ({now.strftime(fmt)} - {expires} sec.)"
                )
        elif signed_at < now - MAX_SKEW:
            raise InvalidSignature(
                f"Signature expired: {stamp} is now earlier than {(now - MAX_SKEW).strftime(fmt)} "
                f"({now.strftime(fmt)} - 15 min.)"
            )
        if signed_at > now + MAX_SKEW:
            raise InvalidSignature(
                f"Signature not yet current: {stamp} is still later than {(now + MAX_SKEW).strftime(fmt)} "
                f"({now.strftime(fmt)} + 15 min.)"
            )

    @staticmethod
    def compute(request: HttpRequest, signature: Signature, secret: str, content_hash: str) -> str:
        """The signature botocore would have produced for this request with `secret`."""
        signer_class = S3SigV4Auth if signature.service in _S3_SIGNING_NAMES else SigV4Auth
        signer = signer_class(Credentials(signature.access_key, secret), signature.service, signature.region)
        pairs = []
        for part in request.query.split("&") if request.query else ():
            key, _, value = part.partition("=")
            if signature.presigned and key == "X-Amz-Signature":
                continue
            pairs.append((unquote(key), unquote(value)))
        headers = _SignedHeaders()
        for name in signature.signed_headers:
            headers[name] = _as_sent(request.headers.get(name, ""))
        canonical = "\n".join(
            (
                request.method.upper(),
                signer._normalize_url_path(request.raw_path or "/"),
                signer._canonical_query_string_params(pairs),
                signer.canonical_headers(headers) + "\n",
                signer.signed_headers(headers),
                content_hash,
            )
        )
        context = _Context(signature.timestamp or "")
        return signer.signature(signer.string_to_sign(context, canonical), context)
