import pytest

from lamina.config import Settings
from lamina.errors import InvalidParameterValue
from lamina.functions import validation as check

SETTINGS = Settings(interpreters={})


def test_limits_are_lambdas_not_the_models():
    assert check.check_timeout(900, SETTINGS) == 900
    with pytest.raises(InvalidParameterValue, match="less than or equal to 900"):
        check.check_timeout(901, SETTINGS)
    with pytest.raises(InvalidParameterValue, match="greater than or equal to 1"):
        check.check_timeout(0, SETTINGS)
    assert check.check_memory(10240, SETTINGS) == 10240
    with pytest.raises(InvalidParameterValue, match="less than or equal to 10240"):
        check.check_memory(10241, SETTINGS)
    with pytest.raises(InvalidParameterValue, match="greater than or equal to 128"):
        check.check_memory(127, SETTINGS)


def test_environment_rules():
    assert check.check_environment({"A1": "x", "b_2": ""}) == {"A1": "x", "b_2": ""}
    with pytest.raises(InvalidParameterValue, match="Reserved keys used in this request: AWS_REGION"):
        check.check_environment({"AWS_REGION": "x"})
    with pytest.raises(InvalidParameterValue, match="regular expression"):
        check.check_environment({"1BAD": "x"})
    with pytest.raises(InvalidParameterValue, match="exceeded the 4KB limit"):
        check.check_environment({"BIG": "x" * 4090})
    # 4 KB measured on the JSON form, as Lambda does: just under passes
    check.check_environment({"KK": "x" * (4096 - len('{"KK":""}'))})


def test_runtimes():
    assert check.check_runtime("python3.12") == "python3.12"
    with pytest.raises(InvalidParameterValue, match="no longer supported"):
        check.check_runtime("python2.7")
    with pytest.raises(InvalidParameterValue, match="not supported by Lamina yet"):
        check.check_runtime("dotnet8")  # Node.js, Ruby, Java and provided* are (tests/unit/runtime/test_runtimes.py)
    with pytest.raises(InvalidParameterValue, match="mandatory"):
        check.check_runtime(None)


def test_architectures_storage_and_package_type():
    assert check.check_architectures(None) == ("x86_64",)
    assert check.check_architectures(["arm64"]) == ("arm64",)
    with pytest.raises(InvalidParameterValue):
        check.check_architectures(["x86_64", "arm64"])
    with pytest.raises(InvalidParameterValue):
        check.check_ephemeral_storage(511)
    with pytest.raises(InvalidParameterValue, match="container images"):
        check.check_package_type("Image")
