from __future__ import annotations

import json
from types import MappingProxyType

from lamina.model.function import FunctionConfig, FunctionState
from lamina.store.codec import from_json, to_json

from .conftest import config


def test_round_trip_is_exact():
    original = config(environment=MappingProxyType({"K": "v"}), architectures=("arm64",), state=FunctionState.FAILED)
    text = to_json(original)
    assert json.loads(text)["state"] == "Failed" and json.loads(text)["environment"] == {"K": "v"}
    back = from_json(FunctionConfig, text)
    assert back == original
    assert type(back.state) is FunctionState and type(back.environment) is MappingProxyType
    assert type(back.architectures) is tuple


def test_unknown_keys_are_ignored_and_missing_ones_defaulted():
    values = json.loads(to_json(config()))
    values["field_from_the_future"] = 1
    del values["tracing_mode"], values["logging"]
    back = from_json(FunctionConfig, json.dumps(values))
    assert back == config()
