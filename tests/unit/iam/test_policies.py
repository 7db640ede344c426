"""Policy documents: IAM's validation, the trust question strict mode asks, the managed catalogue."""

from __future__ import annotations

import json

import pytest

from lamina.errors import MalformedPolicyDocument
from lamina.iam.policies import AWS_MANAGED, allows_service, aws_managed, parse_policy, policy_size


def doc(*statements, version="2012-10-17") -> str:
    return json.dumps({"Version": version, "Statement": list(statements)})


ALLOW_S3 = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}
LAMBDA_TRUST = {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}


def test_valid_documents_parse():
    assert parse_policy(doc(ALLOW_S3))["Statement"] == [ALLOW_S3]
    assert parse_policy(json.dumps({"Statement": ALLOW_S3}))  # one statement, not a list; no Version
    parse_policy(doc(LAMBDA_TRUST), trust=True)


@pytest.mark.parametrize(
    ("document", "trust", "message"),
    [
        ("{not json", False, "This policy contains invalid Json"),
        ("[1, 2]", False, "This policy contains invalid Json"),
        (doc(ALLOW_S3, version="2020-01-01"), False, "The policy failed legacy parsing"),
        (json.dumps({"Version": "2012-10-17"}), False, "Syntax errors in policy."),
        (doc({**ALLOW_S3, "Effect": "Maybe"}), False, "Invalid effect: Maybe"),
        (doc({"Effect": "Allow", "Resource": "*"}), False, "Policy statement must contain actions."),
        (doc({"Effect": "Allow", "Action": "s3:*"}), False, "Policy statement must contain resources."),
        (doc({**ALLOW_S3, "Bogus": 1}), False, "Unknown field Bogus"),
        (doc({**ALLOW_S3, "Action": 5}), False, "Syntax errors in policy."),
        (doc({**LAMBDA_TRUST, "Resource": "*"}), True, "Has prohibited field Resource"),
        (doc({"Effect": "Allow", "Action": "sts:AssumeRole"}), True, "Missing required field Principal"),
        (doc(LAMBDA_TRUST), False, "should not specify a principal"),
    ],
)
def test_malformed_documents_are_refused_as_iam_words_it(document, trust, message):
    with pytest.raises(MalformedPolicyDocument, match=message):
        parse_policy(document, trust=trust)


def test_size_ignores_whitespace():
    assert policy_size('{ "a" :\n\t"b c" }') == len('{"a":"bc"}')


@pytest.mark.parametrize(
    ("statement", "allowed"),
    [
        (LAMBDA_TRUST, True),
        ({**LAMBDA_TRUST, "Principal": {"Service": ["edgelambda.amazonaws.com", "lambda.amazonaws.com"]}}, True),
        ({**LAMBDA_TRUST, "Action": ["sts:TagSession", "sts:*"]}, True),
        ({**LAMBDA_TRUST, "Principal": "*"}, True),
        ({**LAMBDA_TRUST, "Principal": {"AWS": "*"}}, True),
        ({**LAMBDA_TRUST, "Principal": {"Service": "ec2.amazonaws.com"}}, False),
        ({**LAMBDA_TRUST, "Action": "sts:AssumeRoleWithWebIdentity"}, False),
        ({**LAMBDA_TRUST, "Effect": "Deny"}, False),
    ],
)
def test_lambda_trust(statement, allowed):
    assert allows_service(doc(statement), "lambda.amazonaws.com") is allowed


def test_a_deny_beats_an_allow():
    assert not allows_service(doc(LAMBDA_TRUST, {**LAMBDA_TRUST, "Effect": "Deny"}), "lambda.amazonaws.com")
    assert not allows_service("not json", "lambda.amazonaws.com")


def test_the_catalogue_resolves_aws_managed_arns():
    basic = aws_managed("arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole")
    assert basic is not None and basic.path == "/service-role/" and basic.id.startswith("ANPA") and len(basic.id) == 20
    assert "logs:PutLogEvents" in basic.document
    for name in ("AdministratorAccess", "ReadOnlyAccess", "AmazonS3FullAccess", "AmazonDynamoDBFullAccess",
                 "AWSLambdaExecute"):  # fmt: skip
        assert aws_managed(f"arn:aws:iam::aws:policy/{name}") is not None
    assert aws_managed("arn:aws:iam::aws:policy/NoSuchThing") is None
    for arn, policy in AWS_MANAGED.items():
        assert policy.arn("000000000000") == arn
        parse_policy(policy.document)  # each one is a valid identity policy
