"""Small factories for request bodies and stored jobs."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from gateway import dispatch, jobs
from gateway.jobs import JobSnapshot
from gateway.services import get_services

FULL_PIPELINE = ["extraction", "analysis", "enrichment"]
DOCUMENT = "Hi, my name is Gabriela, I want to cancel my subscription. SubscriptionID 2342"


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
