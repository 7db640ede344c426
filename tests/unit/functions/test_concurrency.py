"""The concurrency control plane: AWS's validation rules, persistence, and the limiter kept current."""

from __future__ import annotations

import dataclasses

import pytest

from lamina.config import Settings
from lamina.errors import InvalidParameterValue, ProvisionedConfigNotFound, ResourceConflict, ResourceNotFound
from lamina.functions.concurrency import ConcurrencyService, min_unreserved
from lamina.functions.service import FunctionService
from lamina.invoke.concurrency import ConcurrencyLimiter
from lamina.store.code import FileCodeStore
from lamina.store.memory import MemoryStore

from .test_service import draft


@pytest.fixture
def concurrency(tmp_path):
    settings = Settings(interpreters={}, max_concurrency=50, min_unreserved_concurrency=10)
    store = MemoryStore()
    functions = FunctionService(settings, store, FileCodeStore(tmp_path / "code", 10_000, 100_000))
    functions.create(draft("f"))
    functions.create(draft("g"))
    return ConcurrencyService(settings, functions, store, ConcurrencyLimiter(settings.max_concurrency))


def test_the_default_minimum_is_a_tenth_capped_at_aws_100():
    assert min_unreserved(Settings(interpreters={}, max_concurrency=1000)) == 100
    assert min_unreserved(Settings(interpreters={}, max_concurrency=3000)) == 100
    assert min_unreserved(Settings(interpreters={}, max_concurrency=40)) == 4
    assert min_unreserved(Settings(interpreters={}, max_concurrency=40, min_unreserved_concurrency=0)) == 0


def test_reserve_read_and_clear(concurrency):
    assert concurrency.get_reserved("f") is None
    assert concurrency.put_reserved("f", 30) == 30
    assert concurrency.get_reserved("f") == concurrency.reserved_for("f") == 30
    assert concurrency.limiter.reserved("f") == 30
    assert concurrency.unreserved_for_account() == 20
    concurrency.delete_reserved("f")
    assert concurrency.get_reserved("f") is None and concurrency.limiter.reserved("f") is None
    assert concurrency.unreserved_for_account() == 50
    with pytest.raises(ResourceNotFound, match="Function not found: arn:aws:lambda:us-east-1:000000000000:function:h"):
        concurrency.put_reserved("h", 1)


def test_reservations_leave_the_minimum_unreserved(concurrency):
    concurrency.put_reserved("f", 30)
    with pytest.raises(InvalidParameterValue) as caught:
        concurrency.put_reserved("g", 11)
    assert caught.value.message == (
        "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution "
        "below its minimum value of [10]."
    )
    concurrency.put_reserved("g", 10)  # 50 - 30 - 10 = 10 left: exactly the minimum
    with pytest.raises(InvalidParameterValue):
        concurrency.put_reserved("f", 31)  # its own 30 are not counted twice: 50 - 10 - 31 < 10
    assert concurrency.get_reserved("f") == 30 and concurrency.limiter.reserved("f") == 30


def test_lowering_a_reservation_is_always_allowed(concurrency):
    relaxed = dataclasses.replace(concurrency.settings, min_unreserved_concurrency=0)
    strict, concurrency.settings = concurrency.settings, relaxed
    concurrency.put_reserved("f", 50)
    concurrency.settings = strict  # now the account is over-committed
    concurrency.put_reserved("f", 45)
    assert concurrency.get_reserved("f") == 45
    with pytest.raises(InvalidParameterValue):
        concurrency.put_reserved("f", 46)
    with pytest.raises(InvalidParameterValue):
        concurrency.put_reserved("g", 0)  # a new reservation, even of 0, must fit


def test_provisioned_needs_a_published_version_or_an_alias(concurrency):
    functions = concurrency.functions
    with pytest.raises(InvalidParameterValue, match="cannot be applied to unpublished function versions"):
        concurrency.put_provisioned("f", "$LATEST", 1)
    with pytest.raises(ResourceNotFound):
        concurrency.put_provisioned("f", "1", 1)
    version = functions.publish("f").version
    config = concurrency.put_provisioned("f", version, 2)
    assert (config.function, config.qualifier, config.requested) == ("f", version, 2)
    assert concurrency.get_provisioned("f", version) == config
    assert concurrency.list_provisioned("f") == [config]
    functions.create_alias("f", "live", version)
    with pytest.raises(ResourceConflict, match="already Provisioned version"):
        concurrency.put_provisioned("f", "live", 1)
    concurrency.delete_provisioned("f", version)
    with pytest.raises(ProvisionedConfigNotFound, match="No Provisioned Concurrency Config found"):
        concurrency.get_provisioned("f", version)
    concurrency.put_provisioned("f", "live", 1)
    with pytest.raises(ResourceConflict, match="pointed by a Provisioned Concurrency alias"):
        concurrency.put_provisioned("f", version, 1)


def test_provisioned_counts_against_the_reservation_or_the_unreserved_pool(concurrency):
    functions = concurrency.functions
    v = functions.publish("f").version
    concurrency.put_reserved("f", 5)
    with pytest.raises(InvalidParameterValue, match="should not be greater than the reservedConcurrentExecution"):
        concurrency.put_provisioned("f", v, 6)
    concurrency.put_provisioned("f", v, 5)
    with pytest.raises(InvalidParameterValue, match="less than the function's provisioned concurrency"):
        concurrency.put_reserved("f", 4)
    assert concurrency.limiter.available("g") == 45  # inside f's reservation: nothing more set aside

    w = functions.publish("g").version
    with pytest.raises(InvalidParameterValue, match=r"Specified ConcurrentExecutions .* minimum value of \[10\]"):
        concurrency.put_provisioned("g", w, 36)  # 50 - 5 - 36 < 10
    concurrency.put_provisioned("g", w, 35)
    assert concurrency.limiter.available("f") == 5  # f's own pool
    assert concurrency.limiter.available("x") == 10  # 50 - 5 reserved - 35 set aside for g
    with pytest.raises(InvalidParameterValue):
        concurrency.put_reserved("f", 6)  # 50 - 35 set aside for g - 6 < 10


def test_load_gives_a_new_limiter_the_stored_view(concurrency):
    v = concurrency.functions.publish("g").version
    concurrency.put_reserved("f", 7)
    concurrency.put_provisioned("g", v, 3)
    fresh = ConcurrencyService(concurrency.settings, concurrency.functions, concurrency.store, ConcurrencyLimiter(50))
    fresh.load()
    assert fresh.limiter.reserved("f") == 7
    assert fresh.limiter.available("x") == 50 - 7 - 3
    concurrency.functions.delete("g")
    fresh.function_deleted("g")
    assert fresh.limiter.available("x") == 50 - 7
