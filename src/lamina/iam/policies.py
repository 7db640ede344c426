"""Policy documents: validated on the way in (as IAM rejects them: MalformedPolicyDocument), kept
verbatim, never enforced. Also the built-in catalogue of AWS managed policies that roles attach by
ARN, and the one question strict mode asks of a trust policy: may Lambda assume this role?

IAM does not count whitespace towards a policy's size quota; neither does `policy_size`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from lamina.errors import MalformedPolicyDocument
from lamina.iam.ids import POLICY, stable_id
from lamina.model.iam import ManagedPolicy

VERSIONS = ("2008-10-17", "2012-10-17")
SYNTAX = "Syntax errors in policy."
_WHITESPACE = re.compile(r"\s+")

# AWS quotas (IAM and STS quotas page): characters, whitespace excluded.
TRUST_POLICY_SIZE = 2048  # ACLSizePerRole (default)
MANAGED_POLICY_SIZE = 6144  # PolicySize
INLINE_ROLE_POLICY_SIZE = 10240  # aggregate of a role's inline policies
MANAGED_POLICIES_PER_ROLE = 10  # PoliciesPerRole (default)
ACCESS_KEYS_PER_USER = 2


def policy_size(document: str) -> int:
    return len(_WHITESPACE.sub("", document))


def parse_policy(document: str, *, trust: bool = False) -> dict[str, Any]:
    """The document as JSON, or MalformedPolicyDocument with IAM's wording.

    Identity policies need Action and Resource in each statement; trust policies need a
    Principal and may not name a Resource."""
    try:
        policy = json.loads(document)
    except ValueError:
        raise MalformedPolicyDocument("This policy contains invalid Json") from None
    if not isinstance(policy, dict):
        raise MalformedPolicyDocument("This policy contains invalid Json")
    version = policy.get("Version")
    if version is not None and version not in VERSIONS:
        raise MalformedPolicyDocument("The policy failed legacy parsing")
    unknown = set(policy) - {"Version", "Id", "Statement"}
    if unknown:
        raise MalformedPolicyDocument(f"Syntax errors in policy. Unknown field {sorted(unknown)[0]}")
    statements = policy.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        raise MalformedPolicyDocument(SYNTAX)
    for statement in statements:
        _check_statement(statement, trust)
    return policy


def _check_statement(statement: Any, trust: bool) -> None:
    if not isinstance(statement, dict):
        raise MalformedPolicyDocument(SYNTAX)
    allowed = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Principal", "NotPrincipal",
               "Condition"}  # fmt: skip
    unknown = set(statement) - allowed
    if unknown:
        raise MalformedPolicyDocument(f"Syntax errors in policy. Unknown field {sorted(unknown)[0]}")
    if statement.get("Effect") not in ("Allow", "Deny"):
        raise MalformedPolicyDocument("Invalid effect: " + str(statement.get("Effect")))
    if "Action" not in statement and "NotAction" not in statement:
        raise MalformedPolicyDocument("Policy statement must contain actions.")
    for key in ("Action", "NotAction", "Resource", "NotResource"):
        value = statement.get(key)
        if value is not None and not _strings(value):
            raise MalformedPolicyDocument(SYNTAX)
    if trust:
        for field in ("Resource", "NotResource"):
            if field in statement:
                raise MalformedPolicyDocument(f"Has prohibited field {field}")
        if "Principal" not in statement and "NotPrincipal" not in statement:
            raise MalformedPolicyDocument("Missing required field Principal")
    else:
        if "Principal" in statement or "NotPrincipal" in statement:
            raise MalformedPolicyDocument("Policy document should not specify a principal.")
        if "Resource" not in statement and "NotResource" not in statement:
            raise MalformedPolicyDocument("Policy statement must contain resources.")


def _strings(value: Any) -> bool:
    if isinstance(value, str):
        return True
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def allows_service(trust_policy: str, service: str, action: str = "sts:AssumeRole") -> bool:
    """Whether a trust policy lets `service` (a service principal) perform `action`.

    A statement counts when it allows the action (or `sts:*`, `*`) to the service principal or to
    everyone (`"*"`, `{"AWS": "*"}`), and no Deny names it. Conditions are not evaluated."""
    try:
        policy = json.loads(trust_policy)
    except ValueError:
        return False
    statements = _as_list(policy.get("Statement", [])) if isinstance(policy, dict) else []
    allowed = False
    for statement in statements:
        if not isinstance(statement, dict):
            continue
        if not _matches_action(statement.get("Action"), action) or not _names_service(
            statement.get("Principal"), service
        ):
            continue
        if statement.get("Effect") == "Deny":
            return False
        if statement.get("Effect") == "Allow":
            allowed = True
    return allowed


def _matches_action(actions: Any, action: str) -> bool:
    prefix = action.split(":", 1)[0]
    wanted = {action.lower(), "*", f"{prefix}:*".lower()}
    return any(isinstance(a, str) and a.lower() in wanted for a in _as_list(actions))


def _names_service(principal: Any, service: str) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    if "*" in _as_list(principal.get("AWS", [])):
        return True
    return service in _as_list(principal.get("Service", []))


# --- AWS managed policies -------------------------------------------------------------------------

_LOGS = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]


def _allow(actions: list[str] | str, resource: str | list[str] = "*") -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resource}


# name -> (path, description, statements). Documents follow AWS's current versions in spirit;
# they are returned as stored and never evaluated.
_CATALOGUE: dict[str, tuple[str, str, list[dict[str, Any]]]] = {
    "AWSLambdaBasicExecutionRole": (
        "/service-role/", "Provides write permissions to CloudWatch Logs.", [_allow(_LOGS)],
    ),
    "AWSLambdaKinesisExecutionRole": (
        "/service-role/",
        "Provides list and read access to Kinesis streams and write permissions to CloudWatch Logs.",
        [_allow(["kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords",
                 "kinesis:GetShardIterator", "kinesis:ListShards", "kinesis:ListStreams",
                 "kinesis:SubscribeToShard", *_LOGS])],
    ),
    "AWSLambdaSQSQueueExecutionRole": (
        "/service-role/",
        "Provides receive message, delete message, and read attribute access to SQS queues, and "
        "write permissions to CloudWatch logs.",
        [_allow(["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", *_LOGS])],
    ),
    "AWSLambdaDynamoDBExecutionRole": (
        "/service-role/",
        "Provides list and read access to DynamoDB streams and write permissions to CloudWatch logs.",
        [_allow(["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
                 "dynamodb:ListStreams", *_LOGS])],
    ),
    "AWSLambdaVPCAccessExecutionRole": (
        "/service-role/",
        "Provides minimum permissions for a Lambda function to execute while accessing a resource "
        "within a VPC",
        [_allow([*_LOGS, "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces",
                 "ec2:DescribeSubnets", "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses",
                 "ec2:UnassignPrivateIpAddresses"])],
    ),
    "AWSLambdaRole": (
        "/service-role/", "Default policy for AWS Lambda service role.", [_allow(["lambda:InvokeFunction"])],
    ),
    "AWSLambdaExecute": (
        "/", "Provides Put, Get access to S3 and full access to CloudWatch Logs.",
        [_allow(["logs:*"], "arn:aws:logs:*:*:*"), _allow(["s3:GetObject", "s3:PutObject"], "arn:aws:s3:::*")],
    ),
    "AWSLambda_FullAccess": (
        "/", "Grants full access to AWS Lambda service, AWS Lambda console features, and other "
        "related AWS services.", [_allow(["lambda:*", "logs:*", "iam:PassRole", "iam:GetRole"])],
    ),
    "AWSLambda_ReadOnlyAccess": (
        "/", "Grants read-only access to AWS Lambda service, AWS Lambda console features, and other "
        "related AWS services.", [_allow(["lambda:Get*", "lambda:List*", "logs:Describe*", "logs:Get*"])],
    ),
    "AdministratorAccess": ("/", "Provides full access to AWS services and resources.", [_allow("*")]),
    "ReadOnlyAccess": (
        "/", "Provides read-only access to AWS services and resources.",
        [_allow(["lambda:Get*", "lambda:List*", "logs:Describe*", "logs:Get*", "logs:FilterLogEvents",
                 "iam:Get*", "iam:List*", "s3:Get*", "s3:List*", "dynamodb:Describe*", "dynamodb:Get*",
                 "dynamodb:List*", "dynamodb:Query", "dynamodb:Scan", "kinesis:Describe*", "kinesis:Get*",
                 "kinesis:List*", "sqs:Get*", "sqs:List*", "sts:GetCallerIdentity"])],
    ),
    "AmazonS3FullAccess": ("/", "Provides full access to all buckets via the AWS Management Console.",
                           [_allow(["s3:*", "s3-object-lambda:*"])]),
    "AmazonS3ReadOnlyAccess": ("/", "Provides read only access to all buckets via the AWS Management Console.",
                               [_allow(["s3:Get*", "s3:List*", "s3:Describe*", "s3-object-lambda:Get*",
                                        "s3-object-lambda:List*"])]),
    "AmazonDynamoDBFullAccess": ("/", "Provides full access to Amazon DynamoDB via the AWS Management Console.",
                                 [_allow(["dynamodb:*"])]),
    "AmazonSQSFullAccess": ("/", "Provides full access to Amazon SQS via the AWS Management Console.",
                            [_allow(["sqs:*"])]),
    "AmazonKinesisFullAccess": ("/", "Provides full access to all streams via the AWS Management Console.",
                                [_allow("kinesis:*")]),
    "CloudWatchLogsFullAccess": ("/", "Provides full access to CloudWatch Logs", [_allow(["logs:*"])]),
    "AWSXRayDaemonWriteAccess": (
        "/", "Allow the AWS X-Ray Daemon to relay raw trace segments data to the service's API and "
        "retrieve sampling data (rules, targets, etc.) to be used by the X-Ray SDK.",
        [_allow(["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
                 "xray:GetSamplingTargets", "xray:GetSamplingStatisticSummaries"])],
    ),
}  # fmt: skip

_CREATED = 1428591823.0  # 2015-04-09T15:03:43Z, when AWS published the Lambda policies


def _managed(name: str) -> ManagedPolicy:
    path, description, statements = _CATALOGUE[name]
    document = json.dumps({"Version": "2012-10-17", "Statement": statements}, indent=4)
    return ManagedPolicy(
        name=name,
        id=stable_id(POLICY, f"aws-managed:{name}"),
        path=path,
        document=document,
        created=_CREATED,
        updated=_CREATED,
        description=description,
        aws_managed=True,
    )


AWS_MANAGED: dict[str, ManagedPolicy] = {}
for _name in _CATALOGUE:
    _policy = _managed(_name)
    AWS_MANAGED[_policy.arn("aws")] = _policy


def aws_managed(arn: str) -> ManagedPolicy | None:
    """The AWS managed policy with this ARN (`arn:aws:iam::aws:policy/...`), if Lamina knows it."""
    return AWS_MANAGED.get(arn)
