"""POST /api/jobs/{id}/cancel/: from pending and processing; refused once finished."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from gateway import runs
from gateway.models import Job, OutboxEvent
from tests.factories import RESULTS, job_payload, make_job, make_job_in
from tests.support import assert_problem, wait_until


def events(session: Any, job_id: str) -> list[tuple[str, dict[str, Any]]]:
    rows = session.execute(
        select(OutboxEvent.event_type, OutboxEvent.payload)
        .where(OutboxEvent.job_id == job_id)
        .order_by(OutboxEvent.id)
    )
    return [(row.event_type, row.payload) for row in rows]


def test_cancelling_a_pending_job_skips_every_stage(client, session):
    job = make_job(session)
    response = client.post(f"/api/jobs/{job.id}/cancel/")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "cancelled"
    assert [s["status"] for s in body["results"]["stages"].values()] == ["skipped"] * 3
    assert events(session, job.id)[-1] == ("job.cancelled", {"previous_status": "pending"})


def test_cancelling_during_analysis_keeps_extraction_and_skips_enrichment(client, session):
    # Given a job whose extraction completed and whose analysis is running
    job = make_job_in(session, "processing", at="analysis")
    # When it is cancelled
    response = client.post(f"/api/jobs/{job.id}/cancel")
    # Then the running stage is cancelled, the later one skipped, the earlier result kept
    assert response.status_code == 200
    stages = response.get_json()["results"]["stages"]
    assert stages["extraction"]["status"] == "completed"
    assert stages["extraction"]["results"] == RESULTS["extraction"]
    assert stages["analysis"]["status"] == "cancelled"
    assert stages["enrichment"]["status"] == "skipped"
    assert events(session, job.id)[-1] == ("job.cancelled", {"previous_status": "processing"})
    # And the running stage's late result is discarded
    assert not runs.complete_stage(session, job.id, "analysis", {"entities": []})
    assert client.get(f"/api/jobs/{job.id}/").get_json()["status"] == "cancelled"


@pytest.mark.parametrize("finish", ["completed", "failed", "cancelled"])
def test_a_finished_job_cannot_be_cancelled_and_records_nothing(client, session, finish):
    # Given a job that reached `finish`
    job = make_job_in(session, finish, ["extraction", "analysis"])
    before = events(session, job.id)
    # When it is cancelled (again)
    response = client.post(f"/api/jobs/{job.id}/cancel/")
    # Then it is refused, naming its status, and nothing changed
    assert_problem(response, 400, f"Cannot cancel job from status {finish}")
    assert events(session, job.id) == before
    assert client.get(f"/api/jobs/{job.id}/").get_json()["status"] == finish


def test_a_cancelled_jobs_queued_stages_never_run(app, client, session, services, worker_for):
    # Given a job whose chain waits in the broker (no worker yet)
    job_id = client.post("/api/jobs/", json=job_payload()).get_json()["id"]
    assert services.redis.llen("extraction") == 1
    # When it is cancelled and a worker then comes up
    assert client.post(f"/api/jobs/{job_id}/cancel/").status_code == 200
    worker_for(app)
    wait_until(
        lambda: services.redis.llen("extraction") == 0 and not services.redis.hlen("unacked")
    )
    # Then no stage started and the job stays cancelled, with one terminal event
    session.expire_all()
    job = session.get(Job, job_id)
    assert job is not None and job.status == "cancelled"
    assert [run.status for run in job.runs] == ["skipped"] * 3
    types = [t for t, _ in events(session, job_id)]
    assert types == ["job.created", "job.cancelled"]
