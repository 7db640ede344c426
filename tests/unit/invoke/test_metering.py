from lamina.invoke import metering
from lamina.model.invocation import Outcome
from tests.unit.records import invocation


def record(**changes):
    defaults = dict(request_id="r-1", function="f", duration_ms=15.74, billed_ms=16, max_memory_used_mb=56)
    return invocation(**{**defaults, **changes})


def test_billed_duration_is_the_ceiling_and_includes_init():
    assert metering.billed_ms(15.01) == 16
    assert metering.billed_ms(15.0) == 15
    assert metering.billed_ms(0.2) == 1
    assert metering.billed_ms(10.2, 130.49) == 141


def test_gb_seconds():
    assert metering.gb_seconds(1024, 1000) == 1.0
    assert record(memory_size=512, billed_ms=200).gb_seconds == 0.1


def test_report_line_matches_lambda_byte_for_byte():
    assert metering.report_line(record()) == (
        "REPORT RequestId: r-1\tDuration: 15.74 ms\tBilled Duration: 16 ms\tMemory Size: 128 MB\t"
        "Max Memory Used: 56 MB\t"
    )
    cold = record(init_duration_ms=130.494, cold=True, billed_ms=147)
    assert metering.report_line(cold).endswith("Max Memory Used: 56 MB\tInit Duration: 130.49 ms\t")
    failed = record(outcome=Outcome.CRASH, error_type="Runtime.ExitError")
    assert metering.report_line(failed).endswith("\tStatus: error\tError Type: Runtime.ExitError\t")
    assert metering.start_line("r-1", "$LATEST") == "START RequestId: r-1 Version: $LATEST"
    assert metering.end_line("r-1") == "END RequestId: r-1"
