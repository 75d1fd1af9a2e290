"""Delivery on a live worker: duplicate deliveries, a worker killed mid-stage, a broker outage."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from events import model as ev
from gateway.jobs import JobSnapshot
from gateway.services import get_services
from providers.analysis import SimulatedAnalyzer
from providers.registry import register
from tasks.pipeline import build_chain
from tests.factories import make_committed_job
from tests.support import (
    RedisServer,
    TaskEvents,
    WorkerProcess,
    broker_is_idle,
    job_events,
    join,
    load_job,
    settled_events,
    stage_event_counts,
    wait_for_job,
    wait_until,
)


@register("analysis", "sleepy")
class SleepyAnalyzer(SimulatedAnalyzer):
    """The default analyzer, slowed to a steady second: time for a duplicate to arrive."""

    latency = (1.0, 1.0)


def resend_chain(app: Any, job: JobSnapshot) -> None:
    """Publish the job's chain again with the same task ids, as a duplicate delivery would."""
    providers = get_services(app).settings.providers
    build_chain(get_services(app).celery, job, providers).apply_async()


def sent_ids(task_events: TaskEvents) -> list[str]:
    return [e["uuid"] for e in task_events.of_type("task-sent")]


def test_a_stage_delivered_again_after_it_completed_is_acknowledged_and_ignored(
    make_app, worker_for
):
    # Given a job whose extraction completed while its (slow) analysis runs
    app = make_app(analyzer_provider="sleepy", provider_latency_scale=1.0)
    worker_for(app)
    job = make_committed_job(app)
    extraction, analysis, enrichment = (r.task_id for r in job.runs)
    with TaskEvents(get_services(app).celery) as task_events:
        assert get_services(app).pipeline.dispatch(job.id)
        wait_until(lambda: load_job(app, job.id).runs[1].status == "started")

        # When the extraction message is delivered a second time
        resend_chain(app, job)
        wait_until(lambda: len(task_events.of_type("task-started", extraction)) == 2)

        # Then the job still completes once, and the duplicate ran no second chain
        wait_for_job(app, job.id, "completed")
        wait_until(lambda: broker_is_idle(app))
        assert sorted(sent_ids(task_events)) == sorted(
            [extraction, extraction, analysis, enrichment]
        )

        # And once the job completed, yet another duplicate changes nothing either
        resend_chain(app, job)
        wait_until(lambda: len(task_events.of_type("task-started", extraction)) == 3)
        join(app)  # a chain that went on would have sent and run its next stage
        assert sorted(sent_ids(task_events)) == sorted([extraction] * 3 + [analysis, enrichment])
    stored = load_job(app, job.id)
    assert [(r.status, r.attempts) for r in stored.runs] == [("completed", 1)] * 3
    assert stage_event_counts(app, job.id) == {
        (ev.JOB_CREATED, None): 1,
        (ev.STAGE_STARTED, "extraction"): 1,
        (ev.STAGE_COMPLETED, "extraction"): 1,
        (ev.STAGE_STARTED, "analysis"): 1,
        (ev.STAGE_COMPLETED, "analysis"): 1,
        (ev.STAGE_STARTED, "enrichment"): 1,
        (ev.STAGE_COMPLETED, "enrichment"): 1,
        (ev.JOB_COMPLETED, None): 1,
    }


def test_a_stage_delivered_twice_at_once_records_one_result_and_runs_one_chain(
    make_app, worker_for
):
    # Given a worker with room for both copies, and an extraction slow enough (~0.5 s) to overlap
    app = make_app(extractor_provider="slow", provider_latency_scale=0.25)
    worker_for(app)
    job = make_committed_job(app)
    extraction, analysis, enrichment = (r.task_id for r in job.runs)
    with TaskEvents(get_services(app).celery) as task_events:
        # When the same chain message is delivered twice, back to back
        assert get_services(app).pipeline.dispatch(job.id)
        resend_chain(app, job)

        # Then both copies run, one result is recorded and one chain goes on
        wait_for_job(app, job.id, "completed")
        join(app)  # a second chain would have sent and run its next stage
        assert len(task_events.of_type("task-started", extraction)) == 2
        assert sorted(sent_ids(task_events)) == sorted(
            [extraction, extraction, analysis, enrichment]
        )
    stored = load_job(app, job.id)
    assert [r.status for r in stored.runs] == ["completed"] * 3
    assert [r.attempts for r in stored.runs] == [2, 1, 1]  # both copies began an attempt
    counts = stage_event_counts(app, job.id)
    assert counts[(ev.STAGE_COMPLETED, "extraction")] == 1
    assert counts[(ev.STAGE_STARTED, "analysis")] == 1
    assert counts[(ev.JOB_COMPLETED, None)] == 1
    assert job_events(app, job.id)[-1].event_type == ev.JOB_COMPLETED


@pytest.mark.slow
def test_a_worker_killed_mid_stage_loses_nothing_and_the_stage_runs_again(make_app, tmp_path: Path):
    # Given a real worker process, a slow extraction (~2 s) and a 5 s visibility timeout
    app = make_app(
        extractor_provider="slow",
        provider_latency_scale=1.0,
        stage_time_limit=3.0,
        retry_backoff_max=1.0,
        broker_visibility_timeout=5,
    )
    crash_settings = get_services(app).settings.replace(log_level="INFO")
    first = WorkerProcess(crash_settings, f"first-{uuid.uuid4().hex[:6]}", tmp_path / "first.log")
    second = WorkerProcess(
        crash_settings, f"second-{uuid.uuid4().hex[:6]}", tmp_path / "second.log"
    )
    try:
        first.start()
        job = make_committed_job(app)
        assert get_services(app).pipeline.dispatch(job.id)
        wait_until(lambda: load_job(app, job.id).runs[0].status == "started", timeout=30)

        # When the whole worker dies with SIGKILL while the extraction runs
        time.sleep(0.3)
        first_pid = first.process.pid if first.process else 0
        first.kill()

        # Then the unacknowledged message waits in Redis, and the stage did not complete
        assert _group_is_gone(first_pid)
        assert get_services(app).redis.hlen("unacked") == 1
        assert load_job(app, job.id).runs[0].status == "started"

        # When a new worker starts, the stage is delivered again after the visibility timeout
        second.start()
        stored = wait_for_job(app, job.id, "completed", timeout=40)
    except BaseException:
        print("first worker log:\n", first.log(), "\nsecond worker log:\n", second.log())
        raise
    finally:
        first.kill()
        second_pid = second.process.pid if second.process else 0
        second.stop()
    assert _group_is_gone(second_pid)

    # And the job finished, with the killed stage run twice and recorded once
    assert [(r.status, r.attempts) for r in stored.runs] == [
        ("completed", 2),
        ("completed", 1),
        ("completed", 1),
    ]
    started = [
        e
        for e in settled_events(app, job.id)
        if e.event_type == ev.STAGE_STARTED and e.payload["stage"] == "extraction"
    ]
    assert [e.payload["attempt"] for e in started] == [1, 2]
    # Delivered again once the 5 s visibility timeout ran out, not ~100 s later (kombu's
    # default); the margin is for a loaded machine
    gap = (started[1].timestamp - started[0].timestamp).total_seconds()
    assert 5 <= gap < 30, gap
    counts = stage_event_counts(app, job.id)  # read after the events settled
    assert counts[(ev.STAGE_COMPLETED, "extraction")] == 1
    assert counts[(ev.JOB_COMPLETED, None)] == 1
    assert settled_events(app, job.id)[-1].event_type == ev.JOB_COMPLETED


def test_dispatching_a_job_many_times_at_once_sends_one_chain(app):
    job = make_committed_job(app)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(get_services(app).pipeline.dispatch, [job.id] * 8))

    assert results.count(True) == 1
    assert get_services(app).redis.llen("extraction") == 1
    assert load_job(app, job.id).dispatched_at is not None


@pytest.fixture
def stopped_redis() -> Iterator[RedisServer]:
    """A private Redis server, not started yet: its port refuses connections."""
    server = RedisServer()
    yield server
    server.close()


def test_a_job_created_while_the_broker_is_down_is_dispatched_once_it_is_back(
    stopped_redis, make_app, worker_for
):
    # Given an app whose Redis is down
    app = make_app(redis_url=stopped_redis.url())
    pipeline = get_services(app).pipeline

    # When a job is created and dispatched
    job = make_committed_job(app)
    began = time.monotonic()
    dispatched = pipeline.dispatch(job.id)

    # Then the dispatch gives up quickly and the job waits, pending and undispatched
    assert dispatched is False
    assert time.monotonic() - began < 3
    stored = load_job(app, job.id)
    assert (stored.status, stored.dispatched_at) == ("pending", None)
    assert pipeline.dispatch_undispatched(grace=0) == 0

    # When Redis is back, the relay's sweep dispatches it once (after the outage's pause),
    # and only once
    stopped_redis.start()
    assert wait_until(lambda: pipeline.dispatch_undispatched(grace=0), timeout=5) == 1
    assert pipeline.dispatch_undispatched(grace=0) == 0
    assert pipeline.dispatch(job.id) is False
    assert get_services(app).redis.llen("extraction") == 1

    # Then a worker runs it to completion
    worker_for(app)
    stored = wait_for_job(app, job.id, "completed")
    assert stored.dispatched_at is not None
    assert [(r.status, r.attempts) for r in stored.runs] == [("completed", 1)] * 3


def _group_is_gone(pgid: int) -> bool:
    """True when no process of this process group is left."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False
