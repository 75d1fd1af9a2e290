"""Cancelling a job on a live worker: revoke for what has not run, the status check for the rest."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from events import model as ev
from gateway import jobs
from gateway.errors import InvalidTransitionError
from gateway.jobs import JobSnapshot
from gateway.services import get_services
from tasks.pipeline import build_chain
from tests.factories import make_committed_job
from tests.support import (
    TaskEvents,
    broker_is_idle,
    job_events,
    join,
    load_job,
    wait_for_job,
    wait_until,
)


def cancel(app: Any, job_id: str) -> JobSnapshot:
    """Cancel as the API does: the conditional update first, then revoke what has not finished."""
    with get_services(app).database.session() as session:
        cancellation = jobs.cancel_job(session, job_id)
    get_services(app).pipeline.revoke(cancellation.unfinished_task_ids)
    return cancellation.job


def event_types(app: Any, job_id: str) -> list[str]:
    return [e.event_type for e in job_events(app, job_id)]


def test_cancel_before_dispatch_means_the_chain_is_never_sent(app, worker):
    job = make_committed_job(app)

    cancelled = cancel(app, job.id)

    assert cancelled.status == "cancelled"
    assert [r.status for r in cancelled.runs] == ["skipped"] * 3
    # Neither the API's dispatch nor the relay's sweep sends a cancelled job
    assert get_services(app).pipeline.dispatch(job.id) is False
    assert get_services(app).pipeline.dispatch_undispatched(grace=0) == 0
    stored = load_job(app, job.id)
    assert stored.dispatched_at is None and [r.attempts for r in stored.runs] == [0, 0, 0]
    assert event_types(app, job.id) == [ev.JOB_CREATED, ev.JOB_CANCELLED]
    assert job_events(app, job.id)[-1].payload == {"previous_status": "pending"}


def test_cancel_of_a_queued_chain_revokes_it_before_it_runs(app, worker):
    # Given a pending job, cancelled and revoked while a worker listens
    job = make_committed_job(app)
    with TaskEvents(get_services(app).celery) as task_events:
        cancel(app, job.id)

        # When its chain reaches the broker anyway (a dispatcher that claimed it just before)
        providers = get_services(app).settings.providers
        build_chain(get_services(app).celery, job, providers).apply_async()
        first = job.runs[0].task_id
        wait_until(lambda: task_events.of_type("task-revoked", first))
        wait_until(lambda: broker_is_idle(app))

        # Then the worker discarded and acknowledged the message without running the stage
        assert task_events.of_type("task-started") == []
        assert [e["uuid"] for e in task_events.of_type("task-sent")] == [first]
    stored = load_job(app, job.id)
    assert stored.status == "cancelled"
    assert [(r.status, r.attempts) for r in stored.runs] == [("skipped", 0)] * 3
    assert event_types(app, job.id) == [ev.JOB_CREATED, ev.JOB_CANCELLED]


def test_a_chain_no_worker_heard_revoked_is_stopped_by_the_status_check(make_app, worker_for):
    # Given a job cancelled while no worker was online (revokes live in worker memory only)
    app = make_app()
    job = make_committed_job(app)
    assert get_services(app).pipeline.dispatch(job.id)
    cancel(app, job.id)

    # When a worker starts and receives the queued chain
    with TaskEvents(get_services(app).celery) as task_events:
        worker_for(app)
        first = job.runs[0].task_id
        wait_until(lambda: task_events.of_type("task-started", first))
        join(app)  # a chain that went on would have sent and run its next stage

        # Then the stage refused to start, its message was acknowledged, and the chain stopped
        assert [e["uuid"] for e in task_events.of_type("task-sent")] == []
    stored = load_job(app, job.id)
    assert [(r.status, r.attempts) for r in stored.runs] == [("skipped", 0)] * 3
    assert event_types(app, job.id) == [ev.JOB_CREATED, ev.JOB_CANCELLED]


def test_cancel_while_extraction_runs_discards_its_result_and_skips_the_rest(make_app, worker_for):
    # Given a slow extraction (~1 s) that has started
    app = make_app(extractor_provider="slow", provider_latency_scale=0.5)
    worker_for(app)
    job = make_committed_job(app)
    with TaskEvents(get_services(app).celery) as task_events:
        assert get_services(app).pipeline.dispatch(job.id)
        wait_until(lambda: load_job(app, job.id).runs[0].status == "started")

        # When the job is cancelled
        cancelled = cancel(app, job.id)
        assert cancelled.status == "cancelled"

        # Then the running extraction finishes, but its result is dropped and nothing follows
        join(app)  # a chain that went on would have sent and run its next stage
        assert [e["uuid"] for e in task_events.of_type("task-sent")] == [job.runs[0].task_id]
    stored = load_job(app, job.id)
    assert stored.status == "cancelled"
    runs = [(r.name, r.status, r.attempts, r.result) for r in stored.runs]
    assert runs == [
        ("extraction", "cancelled", 1, None),
        ("analysis", "skipped", 0, None),
        ("enrichment", "skipped", 0, None),
    ]
    assert event_types(app, job.id) == [ev.JOB_CREATED, ev.STAGE_STARTED, ev.JOB_CANCELLED]
    assert job_events(app, job.id)[-1].payload == {"previous_status": "processing"}


def test_cancel_after_completion_is_refused_and_changes_nothing(app, worker):
    job = make_committed_job(app)
    assert get_services(app).pipeline.dispatch(job.id)
    completed = wait_for_job(app, job.id, "completed")

    with pytest.raises(InvalidTransitionError) as refused:
        cancel(app, job.id)

    assert refused.value.status == 400
    assert refused.value.detail == "Cannot cancel job from status completed"
    stored = load_job(app, job.id)
    assert stored.status == "completed"
    assert [r.result for r in stored.runs] == [r.result for r in completed.runs]
    assert ev.JOB_CANCELLED not in event_types(app, job.id)


@pytest.mark.slow
def test_cancel_racing_stage_completion_never_mixes_outcomes(make_app, worker_for):
    # Given full jobs running at once, and a cancel for each at a random moment within a span
    # that a round widens or narrows until both outcomes happened (a loaded machine is slower)
    app = make_app()
    worker_for(app, concurrency=8)
    rng = random.Random(20260427)
    outcomes: set[str] = set()
    span = 0.6
    for _ in range(5):
        seen = run_cancel_race(app, rng, span, jobs_count=30)
        outcomes |= seen
        if {"completed", "cancelled"} <= outcomes:
            break
        span = span * 3 if seen == {"cancelled"} else span / 3
    # Both outcomes happened, so the race was really run
    assert {"completed", "cancelled"} <= outcomes, outcomes


def run_cancel_race(app: Any, rng: random.Random, span: float, jobs_count: int) -> set[str]:
    """One round of the race; checks every job's invariants and returns the outcomes seen."""
    job_ids = [make_committed_job(app).id for _ in range(jobs_count)]
    delays = [rng.uniform(0, span) for _ in job_ids]

    def dispatch_then_cancel(job_id: str, delay: float) -> bool:
        assert get_services(app).pipeline.dispatch(job_id)
        time.sleep(delay)
        try:
            cancel(app, job_id)
        except InvalidTransitionError:
            return False
        return True

    # When the cancels race the stages
    with ThreadPoolExecutor(max_workers=8) as pool:
        accepted = dict(zip(job_ids, pool.map(dispatch_then_cancel, job_ids, delays), strict=True))
    for job_id in job_ids:
        wait_for_job(app, job_id, "completed", "cancelled")
    join(app, timeout=30)
    # A cancel whose append lost the race with its job's running stage leaves job.cancelled to
    # the relay (Redis appends a job's events only in order): run its pass.
    get_services(app).outbox.publish_pending(grace=0)

    # Then each job is wholly completed or wholly cancelled, with one terminal event, last
    outcomes = set()
    for job_id in job_ids:
        job = load_job(app, job_id)
        types = event_types(app, job_id)
        terminal = [t for t in types if t in ev.TERMINAL_TYPES]
        statuses = [r.status for r in job.runs]
        if job.status == "completed":
            assert not accepted[job_id]
            assert statuses == ["completed"] * 3
            assert all(r.result for r in job.runs)
            assert terminal == [ev.JOB_COMPLETED]
        else:
            assert job.status == "cancelled" and accepted[job_id]
            done = statuses.count("completed")
            rest = statuses[done:]
            assert statuses[:done] == ["completed"] * done
            # the stage running when the cancel landed is cancelled, the later ones skipped
            assert rest in (["skipped"] * len(rest), ["cancelled"] + ["skipped"] * (len(rest) - 1))
            assert all(r.result for r in job.runs[:done])
            assert all(r.result is None for r in job.runs[done:])
            assert types.count(ev.STAGE_COMPLETED) == done
            assert terminal == [ev.JOB_CANCELLED]
        assert types[0] == ev.JOB_CREATED and types[-1] == terminal[0]
        outcomes.add(job.status)
    return outcomes
