import pytest

from lamina.errors import InvalidParameterValue
from lamina.functions.names import Arns, parse_function_ref


@pytest.mark.parametrize(
    ("text", "name", "qualifier", "account"),
    [
        ("my-function", "my-function", None, None),
        ("my-function:v1", "my-function", "v1", None),
        ("my-function:$LATEST", "my-function", "$LATEST", None),
        ("123456789012:function:my-function", "my-function", None, "123456789012"),
        ("arn:aws:lambda:us-west-2:123456789012:function:my-function", "my-function", None, "123456789012"),
        ("arn:aws:lambda:us-west-2:123456789012:function:my-function:7", "my-function", "7", "123456789012"),
    ],
)
def test_every_form_lambda_accepts(text, name, qualifier, account):
    ref = parse_function_ref(text)
    assert (ref.name, ref.qualifier, ref.account) == (name, qualifier, account)


def test_qualifier_parameter_must_agree_with_the_arn():
    assert parse_function_ref("f", "$LATEST").qualifier == "$LATEST"
    assert parse_function_ref("f:1", "1").qualifier == "1"
    with pytest.raises(InvalidParameterValue, match="derived qualifier"):
        parse_function_ref("f:1", "2")


@pytest.mark.parametrize("bad", ["", "has space", "a" * 65, "arn:aws:s3:::bucket", "f:1:2"])
def test_bad_names_are_rejected(bad):
    with pytest.raises(InvalidParameterValue):
        parse_function_ref(bad)


def test_arns():
    arns = Arns("eu-west-1", "111122223333")
    assert arns.function("f") == "arn:aws:lambda:eu-west-1:111122223333:function:f"
    assert arns.function("f", "$LATEST") == "arn:aws:lambda:eu-west-1:111122223333:function:f:$LATEST"
