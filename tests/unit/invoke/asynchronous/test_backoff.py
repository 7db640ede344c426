"""The retry arithmetic: AWS's delays for function errors, and the throttle backoff."""

from __future__ import annotations

from lamina.invoke.asynchronous.backoff import expired, requeue_delay, retry_delay


def test_function_errors_are_retried_after_base_then_twice_base():
    assert retry_delay(1, 60.0) == 60.0  # AWS: about 1 minute before the 2nd attempt
    assert retry_delay(2, 60.0) == 120.0  # about 2 minutes before the 3rd
    assert retry_delay(1, 0.2) == 0.2


def test_throttles_back_off_exponentially_from_one_second_to_the_cap():
    assert [requeue_delay(n, 300.0) for n in range(1, 11)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]
    assert requeue_delay(500, 300.0) == 300.0  # no overflow for a long-throttled event
    assert requeue_delay(3, 5.0, first=0.5) == 2.0


def test_an_event_expires_strictly_after_its_max_age():
    assert not expired(100.0, 60.0, 160.0)
    assert expired(100.0, 60.0, 160.001)
