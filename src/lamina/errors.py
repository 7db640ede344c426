"""One error hierarchy for all of Lamina.

Each class knows the AWS error code and HTTP status it becomes at the edge, so the mapping lives
here and nowhere else. The core raises these; `api/` only serialises them.
"""

from __future__ import annotations


class LaminaError(Exception):
    """Root of every error Lamina raises on purpose."""

    code = "ServiceException"
    status = 500
    sender_fault = False  # AWS `Type`: "User" for client faults, "Service" otherwise

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    def extra(self) -> dict[str, object]:
        """Modeled members beyond the message (e.g. TooManyRequestsException.Reason)."""
        return {}


class ConfigError(LaminaError):
    """Raised when settings are invalid; a start-up error, never sent on the wire."""


class ClientError(LaminaError):
    """Raised for anything the caller did wrong."""

    status = 400
    sender_fault = True


class ValidationError(ClientError):
    """Raised when a request does not satisfy the service model's constraints."""

    code = "ValidationException"


class InvalidParameterValue(ClientError):
    """Raised when a parameter is out of range or malformed (Lambda's catch-all 400)."""

    code = "InvalidParameterValueException"


class InvalidRequestContent(ClientError):
    """Raised when a request body is not the JSON it must be."""

    code = "InvalidRequestContentException"


class UnsupportedMediaType(ClientError):
    """Raised when a request body has a content type the operation cannot take."""

    code = "UnsupportedMediaTypeException"
    status = 415


class RequestTooLarge(ClientError):
    """Raised when a request body exceeds the operation's size limit."""

    code = "RequestEntityTooLargeException"
    status = 413


class ResourceNotFound(ClientError):
    """Raised when the named function, version or resource does not exist."""

    code = "ResourceNotFoundException"
    status = 404


class ProvisionedConfigNotFound(ResourceNotFound):
    """Raised when a version or alias has no provisioned concurrency configuration."""

    code = "ProvisionedConcurrencyConfigNotFoundException"


class ResourceConflict(ClientError):
    """Raised when the resource already exists or is being changed."""

    code = "ResourceConflictException"
    status = 409


class ResourceInUse(ClientError):
    """Raised when an event source mapping is in a transitional state (Creating, Updating, ...)."""

    code = "ResourceInUseException"


class PreconditionFailed(ClientError):
    """Raised when a RevisionId or CodeSha256 precondition does not hold."""

    code = "PreconditionFailedException"
    status = 412


class CodeStorageExceeded(ClientError):
    """Raised when the account's total code storage would exceed its quota."""

    code = "CodeStorageExceededException"


class TooManyRequests(ClientError):
    """Raised when a concurrency or rate limit throttles the call."""

    code = "TooManyRequestsException"
    status = 429

    def __init__(self, message: str = "Rate Exceeded.", reason: str = "ConcurrentInvocationLimitExceeded"):
        super().__init__(message)
        self.reason = reason

    def extra(self) -> dict[str, object]:
        return {"Reason": self.reason}


class UnknownOperation(ClientError):
    """Raised when no operation of any service matches the request."""

    code = "UnknownOperationException"
    status = 404


class SerializationError(ClientError):
    """Raised when a request cannot be parsed as its protocol requires."""

    code = "SerializationException"


class AuthError(ClientError):
    """Raised when a request's credentials are missing or wrong."""

    status = 403


class MissingAuthentication(AuthError):
    """Raised when credentials are configured and the request is not signed."""

    code = "MissingAuthenticationTokenException"


class UnrecognizedClient(AuthError):
    """Raised when the access key id is not one Lamina knows."""

    code = "UnrecognizedClientException"


class InvalidSignature(AuthError):
    """Raised when a SigV4 signature does not match the request."""

    code = "InvalidSignatureException"


class IncompleteSignature(AuthError):
    """Raised when an Authorization header or presigned query is present but malformed."""

    code = "IncompleteSignatureException"


class NotImplementedOperation(LaminaError):
    """Raised when a request names a modeled AWS operation (or service) Lamina does not serve yet.

    501 `NotImplemented` is the code and status AWS itself uses for unimplemented functionality
    (S3); botocore does not retry a 501.
    """

    code = "NotImplemented"
    status = 501


class ServiceError(LaminaError):
    """Raised when Lamina itself failed; the caller may retry."""

    code = "ServiceException"
    status = 500


# --- streams (Kinesis Data Streams): every client error is a 400, as Kinesis answers -----------


class StreamNotFound(ClientError):
    """Raised when the named stream (or its shard, or an iterator's stream) does not exist.

    Kinesis answers 400, not Lambda's 404."""

    code = "ResourceNotFoundException"


class StreamInUse(ClientError):
    """Raised when a stream name is taken, or the stream is not ACTIVE for the change asked."""

    code = "ResourceInUseException"


class InvalidArgument(ClientError):
    """Raised when an argument is out of range or malformed (Kinesis's catch-all 400)."""

    code = "InvalidArgumentException"


class ExpiredIterator(ClientError):
    """Raised when a shard iterator is older than its time to live (5 minutes on AWS)."""

    code = "ExpiredIteratorException"


class LimitExceeded(ClientError):
    """Raised when an account or stream limit (shard count, tags, concurrent changes) is reached."""

    code = "LimitExceededException"


class ProvisionedThroughputExceeded(ClientError):
    """Raised when a shard's read or write quota is exceeded (only when quotas are switched on)."""

    code = "ProvisionedThroughputExceededException"


# --- CloudWatch Logs: every client error is a 400, as the Logs API answers -----------------------


class LogsInvalidParameter(ClientError):
    """Raised when a Logs parameter is out of range or malformed (the Logs API's catch-all 400)."""

    code = "InvalidParameterException"


class LogResourceNotFound(ClientError):
    """Raised when the named log group or log stream does not exist (400, as Logs answers)."""

    code = "ResourceNotFoundException"


class LogResourceExists(ClientError):
    """Raised when CreateLogGroup or CreateLogStream names one that already exists."""

    code = "ResourceAlreadyExistsException"


# --- IAM and STS (query protocol): AWS's own codes and statuses --------------------------------


class NoSuchEntity(ClientError):
    """Raised when the named role, policy, user or access key does not exist."""

    code = "NoSuchEntity"
    status = 404


class EntityAlreadyExists(ClientError):
    """Raised when a role, policy or user of that name already exists."""

    code = "EntityAlreadyExists"
    status = 409


class MalformedPolicyDocument(ClientError):
    """Raised when a policy document is not JSON, or not shaped as a policy."""

    code = "MalformedPolicyDocument"


class DeleteConflict(ClientError):
    """Raised when an entity still has policies, attachments or keys that must go first."""

    code = "DeleteConflict"
    status = 409


class IamLimitExceeded(ClientError):
    """Raised when an IAM quota is reached (two access keys per user)."""

    code = "LimitExceeded"
    status = 409


class AccessDenied(AuthError):
    """Raised when the caller may not do what it asked (assuming a role that does not exist)."""

    code = "AccessDenied"


class ExpiredToken(AuthError):
    """Raised when temporary credentials are used after their expiration."""

    code = "ExpiredTokenException"
