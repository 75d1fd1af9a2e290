"""Creating and reading jobs over HTTP: status codes, Location, the representation, slashes."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from sqlalchemy import select

from gateway import runs
from gateway.models import Job, OutboxEvent
from gateway.services import get_services
from tests.factories import DOCUMENT, job_payload, make_job
from tests.support import free_port, wait_until

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
JOB_KEYS = [
    "id",
    "document_name",
    "document_type",
    "status",
    "pipeline_config",
    "results",
    "errors",
    "created_at",
    "updated_at",
]


def stored(session: Any, job_id: str) -> Job:
    session.expire_all()
    job = session.get(Job, job_id)
    assert job is not None
    return job


@pytest.mark.parametrize(
    "stages",
    [["extraction"], ["extraction", "analysis"], ["extraction", "analysis", "enrichment"]],
)
def test_creating_a_job_answers_201_with_location_and_every_stage_pending(client, stages):
    # When a job is created with a valid stage list
    response = client.post("/api/jobs/", json=job_payload(pipeline_config={"stages": stages}))
    # Then it is 201, points at itself, and lists every configured stage, in order
    assert response.status_code == 201
    assert response.mimetype == "application/json"
    job = response.get_json()
    assert response.headers["Location"] == f"/api/jobs/{job['id']}/"
    assert list(job) == JOB_KEYS
    assert job["status"] == "pending"
    assert job["pipeline_config"] == {"stages": stages}
    assert list(job["results"]["stages"]) == stages
    assert all(stage == {"status": "pending"} for stage in job["results"]["stages"].values())
    assert job["errors"] is None
    assert job["document_name"] == "My Document" and job["document_type"] == "important"
    assert ISO_Z.match(job["created_at"]) and ISO_Z.match(job["updated_at"])


def test_the_document_content_is_stored_but_not_echoed(client, session):
    job = client.post("/api/jobs/", json=job_payload()).get_json()
    assert "document_content" not in job
    assert DOCUMENT not in str(job)
    assert stored(session, job["id"]).document_content == DOCUMENT


def test_a_created_job_can_be_read_back_identically(client):
    created = client.post("/api/jobs/", json=job_payload())
    read = client.get(created.headers["Location"])
    assert read.status_code == 200
    assert read.get_json() == created.get_json()


def test_creating_a_job_hands_its_chain_to_the_broker_and_records_job_created(
    client, session, services
):
    # When a job is created (no worker runs: the chain waits in the broker)
    job_id = client.post("/api/jobs/", json=job_payload()).get_json()["id"]
    # Then it was dispatched once and its first stage task is queued
    assert stored(session, job_id).dispatched_at is not None
    assert services.redis.llen("extraction") == 1
    # And job.created was recorded and appended to the stream
    types = session.scalars(select(OutboxEvent.event_type).where(OutboxEvent.job_id == job_id))
    assert list(types) == ["job.created"]
    entries = services.redis.xrange(services.settings.events_stream)
    assert [(f["event_type"], f["job_id"]) for _, f in entries] == [("job.created", job_id)]


def test_a_job_created_while_the_broker_is_down_is_201_and_waits_pending(make_app):
    # Given an app whose Redis (broker and streams) listens nowhere
    app = make_app(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    client = app.test_client()
    # When a job is created
    started = time.monotonic()
    response = client.post("/api/jobs/", json=job_payload())
    elapsed = time.monotonic() - started
    # Then the API still answers 201, quickly, and the job waits undispatched for the relay
    assert response.status_code == 201, response.get_data(as_text=True)
    assert elapsed < 5
    job_id = response.get_json()["id"]
    assert client.get(f"/api/jobs/{job_id}/").get_json()["status"] == "pending"
    with get_services(app).database.session() as session:
        job = stored(session, job_id)
        assert job.status == "pending" and job.dispatched_at is None


def test_the_representation_shows_results_errors_attempts_and_timestamps(client, session):
    # Given a job whose extraction completed and whose analysis failed after two attempts
    job = make_job(session)
    runs.start_stage(session, job.id, "extraction")
    runs.complete_stage(session, job.id, "extraction", {"text": "hello"})
    runs.start_stage(session, job.id, "analysis")
    runs.record_retry(session, job.id, "analysis", "Provider timeout", 0.0)
    runs.start_stage(session, job.id, "analysis")
    runs.fail_stage(session, job.id, "analysis", "Provider timeout")
    # When it is read
    body = client.get(f"/api/jobs/{job.id}").get_json()
    # Then every stage shows what happened to it
    stages = body["results"]["stages"]
    assert list(stages) == ["extraction", "analysis", "enrichment"]
    extraction, analysis, enrichment = stages.values()
    assert extraction["status"] == "completed" and extraction["results"] == {"text": "hello"}
    assert extraction["attempts"] == 1 and ISO_Z.match(extraction["timestamp"])
    assert analysis["status"] == "failed" and analysis["error"] == "Provider timeout"
    assert analysis["attempts"] == 2 and "results" not in analysis
    assert enrichment["status"] == "skipped" and "attempts" not in enrichment
    assert body["status"] == "failed"
    assert body["errors"] == {"stage": "analysis", "message": "Provider timeout"}


def test_a_running_stage_shows_started_with_its_attempt(client, session):
    job = make_job(session, stages=["extraction", "analysis"])
    runs.start_stage(session, job.id, "extraction")
    body = client.get(f"/api/jobs/{job.id}/").get_json()
    assert body["status"] == "processing"
    extraction = body["results"]["stages"]["extraction"]
    assert extraction["status"] == "started" and extraction["attempts"] == 1
    assert body["results"]["stages"]["analysis"] == {"status": "pending"}


ROUTES = [
    ("GET", "/api/jobs/", None),
    ("POST", "/api/jobs/", "body"),
    ("GET", "/api/jobs/{id}/", None),
    ("POST", "/api/jobs/{id}/cancel/", None),
    ("GET", "/healthz/", None),
    ("GET", "/readyz/", None),
    ("GET", "/api/openapi.json/", None),
    ("GET", "/api/docs/", None),
]


@pytest.mark.parametrize(("method", "route", "body"), ROUTES)
@pytest.mark.parametrize("slash", [True, False])
def test_every_route_answers_with_and_without_trailing_slash_without_redirect(
    client, session, method, route, body, slash
):
    job = make_job(session)
    path = route.format(id=job.id)
    if not slash:
        path = path.rstrip("/")
    response = client.open(path, method=method, json=job_payload() if body else None)
    assert response.status_code in (200, 201), (path, response.status_code)
    assert "Location" not in response.headers or response.status_code == 201


def test_a_job_runs_to_completion_and_the_api_shows_every_result(client, worker):
    # Given a worker and a job with the full pipeline
    job_id = client.post("/api/jobs/", json=job_payload()).get_json()["id"]

    # When the worker finishes it
    def finished() -> Any:
        body = client.get(f"/api/jobs/{job_id}/").get_json()
        return body if body["status"] == "completed" else None

    body = wait_until(finished)
    # Then each stage is completed with its output, once
    for name, stage in body["results"]["stages"].items():
        assert stage["status"] == "completed", name
        assert stage["results"] and stage["attempts"] == 1
    assert body["errors"] is None
