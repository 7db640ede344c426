"""What an invoke's result decides for a batch (ReportBatchItemFailures and tumbling windows)."""

from __future__ import annotations

import json

import pytest

from lamina.model.invocation import InvokeResult
from lamina.sources.mappings.outcome import Kind, judge

SEQS = ["101", "102", "103"]


def result(body, error: str | None = None) -> InvokeResult:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return InvokeResult("r", 200, payload, "$LATEST", function_error=error)


def test_a_function_error_fails_the_batch():
    assert judge(result({"errorMessage": "x"}, "Unhandled"), SEQS, True).kind is Kind.FAILURE


@pytest.mark.parametrize("body", [b"", b"null", None, {}, {"batchItemFailures": []}, {"batchItemFailures": None},
                                  "ok", {"other": 1}])  # fmt: skip
def test_empty_or_null_responses_are_full_success(body):
    assert judge(result(body), SEQS, True).kind is Kind.SUCCESS


def test_the_lowest_reported_identifier_is_where_processing_resumes():
    verdict = judge(result({"batchItemFailures": [{"itemIdentifier": "103"}, {"itemIdentifier": "102"}]}), SEQS, True)
    assert (verdict.kind, verdict.failed_at) == (Kind.PARTIAL, 1)


@pytest.mark.parametrize(
    "failures",
    [[{"itemIdentifier": ""}], [{"itemIdentifier": None}], [{"id": "102"}], [{"itemIdentifier": "999"}], ["102"],
     "102"],
)  # fmt: skip
def test_malformed_identifiers_fail_the_whole_batch(failures):
    assert judge(result({"batchItemFailures": failures}), SEQS, True).kind is Kind.FAILURE


def test_without_report_batch_item_failures_a_response_is_just_success():
    assert judge(result({"batchItemFailures": [{"itemIdentifier": "102"}]}), SEQS, False).kind is Kind.SUCCESS


def test_a_tumbling_window_response_must_carry_state():
    assert judge(result({"nope": 1}), SEQS, False, window=True).kind is Kind.FAILURE
    verdict = judge(result({"state": {"sum": 3}}), SEQS, False, window=True)
    assert (verdict.kind, verdict.state) == (Kind.SUCCESS, {"sum": 3})
