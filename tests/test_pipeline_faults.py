"""Fault paths of the pipeline on live workers: a crash between a stage's commit and the publish
of the next stage, stale duplicates that run out of attempts, and what counts as an attempt."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from events import model as ev
from gateway import runs
from gateway.services import get_services
from providers import ProviderError
from providers.analysis import SimulatedAnalyzer
from providers.enrichment import SimulatedEnricher
from providers.registry import register
from tasks.pipeline import build_chain
from tests.factories import make_committed_job, make_job
from tests.support import (
    TaskEvents,
    WorkerProcess,
    broker_is_idle,
    load_job,
    settled_events,
    stage_event_counts,
    wait_for_job,
    wait_until,
)


@register("analysis", "second-copy-fails-late")
class SecondCopyFailsLateAnalyzer(SimulatedAnalyzer):
    """The first call for a text answers after 0.3 s; a later call (a duplicate's) fails after
    1.2 s, long after the first one's result was stored."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.seen: set[str] = set()
        self.lock = threading.Lock()

    def process(self, data: Any, *, timeout: float) -> dict[str, Any]:
        text = str((data or {}).get("text", ""))
        with self.lock:
            first_call = text not in self.seen
            self.seen.add(text)
        time.sleep(0.3 if first_call else 1.2)
        if not first_call:
            raise ProviderError(f"{type(self).__name__} failed: the duplicate's call")
        return self.compute(data)


@register("enrichment", "steady")
class SteadyEnricher(SimulatedEnricher):
    """The default enricher, taking a steady 2.5 s: the job stays processing meanwhile."""

    def process(self, data: Any, *, timeout: float) -> dict[str, Any]:
        time.sleep(2.5)
        return self.compute(data)


@pytest.mark.slow
def test_a_worker_killed_between_a_stage_commit_and_the_next_publish_is_resumed_by_the_redelivery(
    make_app, tmp_path: Path
):
    # Given a real worker process that dies (SIGKILL) right after the extraction's result is
    # committed, before it publishes the analysis; a 4 s visibility timeout; and a stalled-job
    # sweep ten minutes away (no relay runs at all here)
    app = make_app(stage_time_limit=2.0, retry_backoff_max=1.0, broker_visibility_timeout=4)
    settings = get_services(app).settings.replace(log_level="INFO")
    assert settings.stalled_job_timeout == 600
    doomed = WorkerProcess(
        settings.replace(extra_provider_modules="tests.crash_hooks"),
        f"doomed-{uuid.uuid4().hex[:6]}",
        tmp_path / "doomed.log",
    )
    healthy = WorkerProcess(settings, f"healthy-{uuid.uuid4().hex[:6]}", tmp_path / "healthy.log")
    try:
        doomed.start()
        job = make_committed_job(app)
        assert get_services(app).pipeline.dispatch(job.id)

        # When the worker dies at exactly that point
        assert doomed.process is not None
        doomed.process.wait(timeout=30)
        killed_at = time.monotonic()

        # Then the extraction is stored, the analysis was never sent, and the extraction's
        # message waits unacknowledged in Redis
        stored = load_job(app, job.id)
        assert stored.status == "processing"
        assert [r.status for r in stored.runs] == ["completed", "pending", "pending"]
        client = get_services(app).redis
        assert client.hlen("unacked") == 1
        assert sum(client.llen(stage) for stage in ("extraction", "analysis", "enrichment")) == 0

        # When a healthy worker starts, the extraction is delivered again after the timeout
        healthy.start()
        stored = wait_for_job(app, job.id, "completed", timeout=30)
        finished_after = time.monotonic() - killed_at
    except BaseException:
        print("doomed worker log:\n", doomed.log(), "\nhealthy worker log:\n", healthy.log())
        raise
    finally:
        doomed.kill()
        healthy.stop()

    # Then the job completed soon after the redelivery (4 s), not after the sweep's ten
    # minutes; the margin is for a loaded machine
    assert finished_after < 60, finished_after
    # And the redelivered extraction ran nothing twice: it only sent the rest of the chain
    assert [(r.status, r.attempts) for r in stored.runs] == [("completed", 1)] * 3
    events = settled_events(app, job.id)
    assert [e.event_type for e in events] == [
        ev.JOB_CREATED,
        *[ev.STAGE_STARTED, ev.STAGE_COMPLETED] * 3,
        ev.JOB_COMPLETED,
    ]
    assert [e.payload["stage"] for e in events if e.event_type == ev.STAGE_COMPLETED] == [
        "extraction",
        "analysis",
        "enrichment",
    ]
    print(f"\njob completed {finished_after:.1f} s after the worker was killed")


def test_a_stale_duplicate_that_runs_out_of_attempts_does_not_fail_a_completed_stage(
    make_app, worker_for
):
    # Given no provider retries, an analysis whose first call succeeds, and a slow enrichment
    app = make_app(
        analyzer_provider="second-copy-fails-late", enricher_provider="steady", stage_max_retries=0
    )
    worker_for(app)
    job = make_committed_job(app)
    analysis = job.runs[1]
    with TaskEvents(get_services(app).celery) as task_events:
        assert get_services(app).pipeline.dispatch(job.id)
        wait_until(lambda: load_job(app, job.id).runs[1].status == "started")

        # When a duplicate of the analysis starts while the original runs, and fails for good
        # (no retries left) after the original completed the stage
        providers = get_services(app).settings.providers
        build_chain(get_services(app).celery, job, providers, [analysis]).apply_async()
        wait_until(lambda: task_events.of_type("task-failed", analysis.task_id), timeout=10)

        # Then the analysis stays completed and the job goes on to complete
        stored = wait_for_job(app, job.id, "completed", "failed", timeout=10)
        wait_until(lambda: broker_is_idle(app))
    assert stored.status == "completed"
    assert [(r.status, r.error) for r in stored.runs] == [("completed", None)] * 3
    assert stored.runs[1].result is not None
    events = settled_events(app, job.id)
    assert ev.JOB_FAILED not in {e.event_type for e in events}
    assert stage_event_counts(app, job.id)[(ev.STAGE_COMPLETED, "analysis")] == 1
    assert events[-1].event_type == ev.JOB_COMPLETED


def test_provider_retries_are_bounded_by_provider_failures_not_by_reruns(make_app, worker_for):
    # Given one provider retry allowed, an analyzer whose first call for a text fails, and a job
    # whose analysis already began once without a provider failure (its worker died mid-call)
    app = make_app(
        analyzer_provider="flaky-once",
        extra_provider_modules="tests.outage_providers",
        stage_max_retries=1,
    )
    services = get_services(app)
    job = make_committed_job(app)
    with services.database.session() as session:
        assert runs.start_stage(session, job.id, "extraction") is not None
    with services.database.session() as session:
        assert runs.complete_stage(session, job.id, "extraction", {"text": "Hi, I am Ada."})
    with services.database.session() as session:
        assert runs.start_stage(session, job.id, "analysis") is not None
    worker_for(app)

    # When the analysis is delivered again and its provider then fails once
    assert get_services(app).pipeline.start(job, job.runs[1:])

    # Then that one failure is retried (the rerun did not use up the retry) and the job completes
    stored = wait_for_job(app, job.id, "completed", "failed")
    assert stored.status == "completed", stored.error_message
    assert [(r.name, r.attempts) for r in stored.runs] == [
        ("extraction", 1),
        ("analysis", 3),
        ("enrichment", 1),
    ]
    events = settled_events(app, job.id)
    retries = [e.payload for e in events if e.event_type == ev.STAGE_RETRYING]
    assert [(p["stage"], p["attempt"]) for p in retries] == [("analysis", 2)]
    assert events[-1].event_type == ev.JOB_COMPLETED


@pytest.mark.slow
def test_a_prefork_hard_time_limit_after_a_stage_completed_sends_the_rest_of_the_chain_once(
    make_app, tmp_path
):
    # Given a prefork worker whose pool process hangs publishing the next stage, right after
    # the extraction's result was committed, until the hard time limit (2 x 0.5 + 10 = 11 s)
    app = make_app(stage_time_limit=0.5, retry_backoff_max=0.5, broker_visibility_timeout=13,
                   stalled_job_timeout=600.0, worker_concurrency=1, worker_pool="prefork")  # fmt: skip
    settings = get_services(app).settings
    hanging = settings.replace(extra_provider_modules="tests.hang_hooks", log_level="INFO")
    worker = WorkerProcess(hanging, f"hang-{uuid.uuid4().hex[:6]}", tmp_path / "hang.log")
    worker.start()
    try:
        with get_services(app).database.session() as session:
            job = make_job(session)

        # When the job runs, and the hard time limit kills the pool process
        assert get_services(app).pipeline.dispatch(job.id)
        wait_until(lambda: "Hard time limit" in worker.log(), timeout=40)

        # Then the failure handler sends the rest of the chain, once, and the job completes
        done = wait_until(
            lambda: (j := load_job(app, job.id)).status == "completed" and j, timeout=30
        )
    finally:
        worker.stop()
    log = worker.log()
    assert log.count("Hard time limit") == 1, log
    sent = [line for line in log.splitlines() if "completed, then its task failed" in line]
    assert len(sent) == 1, "\n".join(sent)
    assert [run.attempts for run in done.runs] == [1, 1, 1]
