"""What the stage tasks record (gateway.runs): retries, starts and completions, and the states
each refuses, checked on the stored rows and the outbox. Starting and completing a stage are
checked on PostgreSQL (`gateway.fused`) and on SQLite (the portable path) with `any_session`."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import REGISTRY

from gateway import jobs, runs
from gateway.config import DEFAULT_INLINE_TEXT_LIMIT
from providers.base import Upload
from tests.factories import DOCUMENT, RESULTS, make_job, make_job_in
from tests.support import outbox_event_types, outbox_events


def test_a_retry_stores_its_error_counts_a_failure_and_reports_attempt_and_countdown(session):
    # Given an extraction running its first attempt
    job = make_job_in(session, "processing", at="extraction")

    # When its provider fails and the failure will be retried
    assert runs.record_retry(session, job.id, "extraction", "Provider timeout", 0.5)

    # Then the run keeps the error, one failure counts, and the event says which attempt failed
    run = jobs.get_job(session, job.id).runs[0]
    assert (run.status, run.error, run.failures, run.attempts) == (
        "started",
        "Provider timeout",
        1,
        1,
    )
    assert outbox_events(session, job.id)[-1] == (
        "job.stage_retrying",
        {"stage": "extraction", "attempt": 1, "error": "Provider timeout", "countdown": 0.5},
    )


def test_the_next_attempt_clears_the_error_of_the_one_before(any_session):
    session = any_session
    job = make_job_in(session, "processing", at="extraction")
    runs.record_retry(session, job.id, "extraction", "Provider timeout", 0.5)

    assert runs.start_stage(session, job.id, "extraction") is not None

    run = jobs.get_job(session, job.id).runs[0]
    assert (run.status, run.error, run.attempts, run.failures) == ("started", None, 2, 1)
    assert outbox_events(session, job.id)[-1] == (
        "job.stage_started",
        {"stage": "extraction", "attempt": 2},
    )


@pytest.mark.parametrize(
    ("status", "stage"),
    [
        ("pending", "extraction"),  # the job never started
        ("processing", "enrichment"),  # a stage that has not started, while another runs
        ("processing", "extraction"),  # a stage that already completed
        ("failed", "analysis"),
        ("cancelled", "analysis"),
        ("completed", "enrichment"),
    ],
)
def test_a_retry_is_refused_unless_its_stage_is_running_and_records_nothing(session, status, stage):
    # Given a job where `stage` is not running (at analysis: extraction completed before)
    job = make_job_in(session, status, at="analysis" if status != "pending" else None)
    before = jobs.get_job(session, job.id)
    events = outbox_event_types(session, job.id)

    # When a retry of that stage is reported
    assert not runs.record_retry(session, job.id, stage, "Provider timeout", 0.5)

    # Then nothing changed: no error, no failure counted, no event
    after = jobs.get_job(session, job.id)
    assert [(r.status, r.error, r.failures) for r in after.runs] == [
        (r.status, r.error, r.failures) for r in before.runs
    ]
    assert after.event_seq == before.event_seq
    assert outbox_event_types(session, job.id) == events


def test_a_stage_that_never_started_cannot_be_completed(any_session):
    session = any_session
    # Given extraction running, analysis still pending
    job = make_job_in(session, "processing", at="extraction")
    events = outbox_event_types(session, job.id)

    # When a result for the analysis arrives
    assert not runs.complete_stage(session, job.id, "analysis", {"word_count": 1})

    # Then it is discarded: the analysis is still pending, with no result and no event
    job = jobs.get_job(session, job.id)
    assert [(r.status, r.result) for r in job.runs[1:]] == [("pending", None)] * 2
    assert outbox_event_types(session, job.id) == events


def test_completing_a_stage_stores_its_result_and_the_last_one_completes_the_job(any_session):
    session = any_session
    job = make_job_in(session, "processing", stages=["extraction", "analysis"], at="analysis")

    assert runs.complete_stage(session, job.id, "analysis", {"word_count": 13})

    job = jobs.get_job(session, job.id)
    assert (job.status, [r.status for r in job.runs]) == ("completed", ["completed"] * 2)
    assert job.runs[1].result == {"word_count": 13}
    assert outbox_events(session, job.id)[-2:] == [
        ("job.stage_completed", {"stage": "analysis", "result": {"word_count": 13}}),
        ("job.completed", {"stages": ["extraction", "analysis"]}),
    ]


def test_a_later_stage_starts_with_the_output_of_the_stage_before(any_session):
    session = any_session
    job = make_job(session)
    assert runs.start_stage(session, job.id, "extraction") == DOCUMENT
    runs.complete_stage(session, job.id, "extraction", {"text": "extracted"})

    assert runs.start_stage(session, job.id, "analysis") == {"text": "extracted"}
    assert outbox_events(session, job.id)[-1] == (
        "job.stage_started",
        {"stage": "analysis", "attempt": 1},
    )


def test_a_failure_is_recorded_on_its_stage_and_job_with_its_event(session):
    job = make_job_in(session, "processing", at="analysis")

    assert runs.fail_stage(session, job.id, "analysis", "Provider timeout")

    assert outbox_events(session, job.id)[-1] == (
        "job.failed",
        {"stage": "analysis", "error": "Provider timeout"},
    )


def _run_up_to_enrichment(
    session, extracted, analysed, *, inline_text_limit=DEFAULT_INLINE_TEXT_LIMIT
):
    """Run extraction and analysis of a new job with these results; what enrichment starts with."""
    job = make_job(session)
    assert runs.start_stage(session, job.id, "extraction") == DOCUMENT
    assert runs.complete_stage(
        session, job.id, "extraction", extracted, inline_text_limit=inline_text_limit
    )
    assert runs.start_stage(session, job.id, "analysis") == extracted
    assert runs.complete_stage(session, job.id, "analysis", analysed)
    return runs.start_stage(session, job.id, "enrichment")


@pytest.mark.parametrize("limit", [DEFAULT_INLINE_TEXT_LIMIT, 10], ids=["inline", "stored-apart"])
def test_the_third_stage_gets_the_documents_text_with_the_analysis(any_session, limit):
    # Given an extracted text kept in the extraction's result, or (over the limit) apart from it
    extracted = RESULTS["extraction"]

    # When enrichment starts after the analysis
    stage_input = _run_up_to_enrichment(
        any_session, extracted, {"word_count": 13}, inline_text_limit=limit
    )

    # Then it gets the analysis' result and the document's text, read back from where it was stored
    assert stage_input == {"word_count": 13, "text": DOCUMENT}


@pytest.mark.parametrize(
    "extracted", [{"stats": {"words": 0}}, {"text": None}], ids=["none", "null"]
)
def test_the_third_stage_gets_an_empty_text_when_extraction_found_none(any_session, extracted):
    stage_input = _run_up_to_enrichment(any_session, extracted, {"word_count": 0})

    assert stage_input == {"word_count": 0, "text": ""}


def test_the_third_stage_keeps_a_text_the_analysis_returned(any_session):
    stage_input = _run_up_to_enrichment(any_session, RESULTS["extraction"], {"text": "redacted"})

    assert stage_input == {"text": "redacted"}


def test_a_stage_that_completed_does_not_start_again(any_session):
    # Given extraction completed and analysis running
    session = any_session
    job = make_job_in(session, "processing", at="analysis")
    events = outbox_event_types(session, job.id)

    # When a copy of the extraction's message is delivered again
    assert runs.start_stage(session, job.id, "extraction") is None

    # Then the extraction keeps its result and attempt count, and nothing is recorded
    after = jobs.get_job(session, job.id)
    assert (after.runs[0].status, after.runs[0].attempts, after.runs[0].result) == (
        "completed",
        1,
        RESULTS["extraction"],
    )
    assert after.event_seq == job.event_seq
    assert outbox_event_types(session, job.id) == events


def test_a_long_extracted_text_is_recorded_as_a_reference_to_its_jobs_text(any_session):
    session = any_session
    job = make_job(session)
    runs.start_stage(session, job.id, "extraction")

    assert runs.complete_stage(
        session, job.id, "extraction", RESULTS["extraction"], inline_text_limit=10
    )

    # The run and its event keep the small form, pointing at where the API serves the text
    small = {
        "text_ref": f"/api/jobs/{job.id}/text/",
        "text_length": len(DOCUMENT),
        "text_preview": DOCUMENT[:200],
        "stats": RESULTS["extraction"]["stats"],
    }
    assert jobs.get_job(session, job.id).runs[0].result == small
    assert outbox_events(session, job.id)[-1] == (
        "job.stage_completed",
        {"stage": "extraction", "result": small},
    )


def test_a_completion_is_counted_for_its_stage_and_logged_with_its_job_stage_and_attempt(
    any_session, caplog
):
    session = any_session
    job = make_job(session, stages=["extraction"])
    runs.start_stage(session, job.id, "extraction")
    completed = {"stage": "extraction", "outcome": "completed"}
    before = REGISTRY.get_sample_value("gateway_stage_attempts_total", completed) or 0.0
    caplog.set_level(logging.INFO, logger="gateway.runs")

    assert runs.complete_stage(session, job.id, "extraction", RESULTS["extraction"])

    assert REGISTRY.get_sample_value("gateway_stage_attempts_total", completed) == before + 1
    [record] = [r for r in caplog.records if r.getMessage() == "stage completed"]
    assert (record.job_id, record.stage, record.attempt) == (job.id, "extraction", 1)


def test_only_the_last_stage_s_completion_counts_and_logs_a_finished_job(any_session, caplog):
    session = any_session
    job = make_job(session, stages=["extraction", "analysis"])
    finished = {"status": "completed"}
    caplog.set_level(logging.INFO, logger="gateway.runs")

    def count() -> float:
        return REGISTRY.get_sample_value("gateway_jobs_finished_total", finished) or 0.0

    before = count()
    runs.start_stage(session, job.id, "extraction")
    assert runs.complete_stage(session, job.id, "extraction", RESULTS["extraction"])
    assert count() == before
    runs.start_stage(session, job.id, "analysis")
    assert runs.complete_stage(session, job.id, "analysis", RESULTS["analysis"])

    assert count() == before + 1
    assert [r.job_id for r in caplog.records if r.getMessage() == "job completed"] == [job.id]


def test_an_uploaded_document_is_the_first_stage_s_input(any_session):
    upload = jobs.DocumentFile(b"%PDF-1.4 bytes", "application/pdf", "a.pdf")
    job = make_job(any_session, document_content="", document_file=upload)

    stage_input = runs.start_stage(any_session, job.id, "extraction")

    assert stage_input == Upload(b"%PDF-1.4 bytes", "application/pdf", "a.pdf")
