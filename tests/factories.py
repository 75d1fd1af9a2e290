"""Small factories for request bodies and stored jobs, in any state, made through the service layer."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from gateway import dispatch, jobs, runs
from gateway.jobs import JobSnapshot
from gateway.services import get_services

FULL_PIPELINE = ["extraction", "analysis", "enrichment"]
DOCUMENT = "Hi, my name is Gabriela, I want to cancel my subscription. SubscriptionID 2342"
# What each stage stores when a factory completes it: small, and shaped as the providers' output.
RESULTS: dict[str, dict[str, Any]] = {
    "extraction": {"text": DOCUMENT, "stats": {"characters": len(DOCUMENT), "words": 13}},
    "analysis": {"word_count": 13, "entities": {"emails": [], "identifiers": []}},
    "enrichment": {"summary": "A request to cancel a subscription."},
}
STATUSES = ("pending", "processing", "completed", "failed", "cancelled")


def job_payload(**overrides: Any) -> dict[str, Any]:
    """A valid POST /api/jobs/ body; keyword arguments replace fields."""
    body: dict[str, Any] = {
        "document_name": "My Document",
        "document_type": "important",
        "document_content": DOCUMENT,
        "pipeline_config": {"stages": list(FULL_PIPELINE)},
    }
    body.update(overrides)
    return body


def make_job(session: Session, stages: list[str] | None = None, **fields: Any) -> JobSnapshot:
    """A pending job stored through the service layer (with its `job.created` event), unsent.

    The API sends a new job's chain right after storing it; here the test chooses when, with
    `pipeline.dispatch`, as the relay does for a job whose chain the broker refused.
    """
    values: dict[str, Any] = {
        "document_name": "My Document",
        "document_type": "important",
        "document_content": DOCUMENT,
        "stages": list(stages or FULL_PIPELINE),
    }
    values.update(fields)
    job = jobs.create_job(session, **values)
    dispatch.release_dispatch(session, job.id)
    return jobs.get_job(session, job.id)


def make_committed_job(app: Flask, stages: list[str] | None = None) -> JobSnapshot:
    """`make_job` in a session of its own, committed: for tests where a worker reads the job."""
    with get_services(app).database.session() as session:
        return make_job(session, stages)


def make_job_in(
    session: Session,
    status: str,
    stages: list[str] | None = None,
    *,
    at: str | None = None,
    **fields: Any,
) -> JobSnapshot:
    """A job brought to `status` by the service layer's own steps, as the workers would.

    The stages before `at` (default: the first one) complete with `RESULTS`; then `at` is
    running (processing), fails for good (failed), or the job is cancelled while it runs
    (cancelled; without `at`, cancelled while pending). completed: every stage completed.
    `fields` go to `make_job`.
    """
    assert status in STATUSES, status
    job = make_job(session, stages, **fields)
    running = status in ("processing", "failed") or (status == "cancelled" and at is not None)
    if running or status == "completed":
        last = job.stages[-1] if status == "completed" else at or job.stages[0]
        for stage in job.stages[: job.stages.index(last) + 1]:
            assert runs.start_stage(session, job.id, stage) is not None, stage
            if stage != last or status == "completed":
                assert runs.complete_stage(session, job.id, stage, RESULTS[stage]), stage
    if status == "failed":
        assert runs.fail_stage(session, job.id, last, f"{last} failed: provider unavailable")
    if status == "cancelled":
        assert jobs.cancel_job(session, job.id).job.status == "cancelled"
    return jobs.get_job(session, job.id)
