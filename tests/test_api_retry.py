"""POST /api/jobs/{id}/retry/: a failed job resumes from its failed stage; double clicks and
cancels racing it leave one chain and a consistent job."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from typing import Any

import pytest
from sqlalchemy import select

from events import model as ev
from gateway import jobs, retries, runs
from gateway.errors import InvalidTransitionError
from gateway.models import OutboxEvent
from tests.factories import RESULTS, make_job_in
from tests.support import (
    assert_problem,
    outbox_event_types,
    outbox_events,
    queued_stages,
    race,
    served,
    wait_for_job,
    wait_until,
)

ROUNDS = 20


def failed_in_analysis(session: Any) -> jobs.JobSnapshot:
    """A job whose extraction completed and whose analysis failed for good."""
    return make_job_in(session, "failed", at="analysis")


def test_a_failed_job_resumes_from_its_failed_stage_and_completes(app, client, session, worker):
    # Given a job that failed in analysis after its extraction completed
    job = failed_in_analysis(session)
    extraction_task = job.runs[0].task_id
    # When it is retried
    response = client.post(f"/api/jobs/{job.id}/retry/")
    # Then the answer is the job, processing again, its error cleared
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "processing" and body["errors"] is None
    assert body["results"]["stages"]["extraction"]["status"] == "completed"
    # And it completes without running extraction again
    done = wait_for_job(app, job.id, "completed")
    assert [r.status for r in done.runs] == ["completed"] * 3
    assert [r.attempts for r in done.runs] == [1, 2, 1]
    assert done.runs[0].task_id == extraction_task
    assert done.runs[0].result == RESULTS["extraction"]
    types = outbox_event_types(session, job.id)
    resumed = types[types.index(ev.JOB_RETRIED) :]
    assert (
        types.count(ev.JOB_RETRIED) == 1 and types[types.index(ev.JOB_RETRIED) - 1] == ev.JOB_FAILED
    )
    assert resumed[:2] == [ev.JOB_RETRIED, ev.STAGE_STARTED]
    assert resumed[-1] == ev.JOB_COMPLETED
    retried = session.scalars(
        select(OutboxEvent.payload).where(
            OutboxEvent.job_id == job.id, OutboxEvent.event_type == ev.JOB_RETRIED
        )
    ).one()
    assert retried == {"stage": "analysis", "error": job.error_message} and job.error_message


@pytest.mark.parametrize("status", ["pending", "processing", "completed", "cancelled"])
def test_retrying_a_job_that_has_not_failed_is_refused_naming_its_status(client, session, status):
    job = make_job_in(session, status, ["extraction"], at="extraction")
    before = outbox_event_types(session, job.id)

    response = client.post(f"/api/jobs/{job.id}/retry")

    assert_problem(response, 400, f"Cannot retry job from status {status}")
    assert outbox_event_types(session, job.id) == before
    assert client.get(f"/api/jobs/{job.id}/").get_json()["status"] == status


def test_retrying_an_unknown_job_is_not_found(client):
    assert_problem(client.post("/api/jobs/3f1e1a4e-0000-4000-8000-000000000000/retry/"), 404)
    assert_problem(client.post("/api/jobs/not-an-id/retry/"), 404)


def test_a_double_click_on_retry_sends_one_chain(app, session, services):
    # Given a failed job, and no worker: what is sent stays in the broker to be counted
    job = failed_in_analysis(session)

    # When two clients retry it at the same moment, over real HTTP
    def post(url: str) -> int:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="POST")) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as refused:
            return refused.code

    statuses: list[int] = []
    with served(app) as base:
        barrier = threading.Barrier(2)

        def click() -> None:
            barrier.wait()
            statuses.append(post(f"{base}/api/jobs/{job.id}/retry/"))

        clicks = [threading.Thread(target=click) for _ in range(2)]
        for thread in clicks:
            thread.start()
        for thread in clicks:
            thread.join(30)

    # Then one is accepted, the other refused, and one chain waits in the broker
    assert sorted(statuses) == [200, 400]
    assert outbox_event_types(session, job.id).count(ev.JOB_RETRIED) == 1
    assert wait_until(lambda: queued_stages(services.redis) == 1, timeout=5)


def test_concurrent_retries_of_one_job_apply_once(services, session):
    for _ in range(ROUNDS):
        job = failed_in_analysis(session)
        first, second = race(
            services,
            lambda s, j=job.id: retries.retry_job(s, j),
            lambda s, j=job.id: retries.retry_job(s, j),
        )
        outcomes = sorted([first, second], key=lambda o: isinstance(o, Exception))
        assert isinstance(outcomes[0], retries.Retry)
        assert isinstance(outcomes[1], InvalidTransitionError)
        assert str(outcomes[1]) == "Cannot retry job from status processing"
        assert [r.name for r in outcomes[0].rest] == ["analysis", "enrichment"]
        assert outbox_event_types(session, job.id).count(ev.JOB_RETRIED) == 1


def test_a_retry_racing_a_cancel_leaves_the_job_consistent(services, session):
    seen = set()
    for _ in range(ROUNDS):
        # Given a failed job that a client retries while another cancels it
        job = failed_in_analysis(session)
        retry, cancel = race(
            services,
            lambda s, j=job.id: retries.retry_job(s, j),
            lambda s, j=job.id: jobs.cancel_job(s, j),
        )
        # Then the retry applied (a failed job cannot be cancelled), and the cancel applied only
        # after it, revoking exactly the runs the retry would send
        assert isinstance(retry, retries.Retry)
        final = jobs.get_job(session, job.id)
        if isinstance(cancel, jobs.Cancellation):
            assert final.status == "cancelled"
            assert [r.status for r in final.runs] == ["completed", "skipped", "skipped"]
            assert sorted(cancel.unfinished_task_ids) == sorted(r.task_id for r in retry.rest)
            assert outbox_event_types(session, job.id)[-2:] == [ev.JOB_RETRIED, ev.JOB_CANCELLED]
        else:
            assert isinstance(cancel, InvalidTransitionError)
            assert str(cancel) == "Cannot cancel job from status failed"
            assert final.status == "processing"
            assert outbox_event_types(session, job.id)[-1] == ev.JOB_RETRIED
        seen.add(final.status)
    assert seen <= {"cancelled", "processing"}


def test_a_retry_resets_the_unfinished_runs_and_keeps_the_completed_one(session):
    # Given a job whose analysis failed for good after a retried provider failure
    job = make_job_in(session, "processing", at="analysis")
    assert runs.record_retry(session, job.id, "analysis", "Provider timeout", 0.0)
    assert runs.fail_stage(session, job.id, "analysis", "analysis failed: provider unavailable")
    before = jobs.get_job(session, job.id)

    # When it is retried
    retry = retries.retry_job(session, job.id)

    # Then the job is processing again without its error, and says so in one event
    after = jobs.get_job(session, job.id)
    assert (after.status, after.error_stage, after.error_message) == ("processing", None, None)
    assert outbox_events(session, job.id)[-1] == (
        ev.JOB_RETRIED,
        {"stage": "analysis", "error": "analysis failed: provider unavailable"},
    )
    # The completed extraction is untouched
    assert after.runs[0] == before.runs[0]
    # The failed analysis and the skipped enrichment start afresh: pending, new task ids, a new
    # budget of retries, no error, their attempts still counted, stamped by the retry
    reset = [(r.status, r.failures, r.error, r.attempts) for r in after.runs[1:]]
    assert reset == [("pending", 0, None, 1), ("pending", 0, None, 0)]
    assert {r.task_id for r in after.runs[1:]}.isdisjoint(r.task_id for r in before.runs)
    assert all(
        r.updated_at is not None and r.updated_at > before.updated_at for r in after.runs[1:]
    )
    # And the rest to send is those runs, the failed one first
    assert retry.job == after and retry.rest == after.runs[1:]
