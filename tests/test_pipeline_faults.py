"""Fault paths of the pipeline on live workers: a crash between a stage's commit and the publish
of the next stage, stale duplicates that run out of attempts, and what counts as an attempt."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from events import model as ev
from gateway.models import Job
from tests.factories import make_job
from tests.support import (
    WorkerProcess,
    job_events,
    load_job,
    settled_events,
    wait_for_job,
)


def create(app: Any, stages: list[str] | None = None) -> Job:
    with app.extensions["gateway"].database.session() as session:
        return make_job(session, stages)


def stage_event_counts(app: Any, job_id: str) -> dict[tuple[str, str | None], int]:
    counts: dict[tuple[str, str | None], int] = {}
    for event in job_events(app, job_id):
        key = (event.event_type, event.payload.get("stage"))
        counts[key] = counts.get(key, 0) + 1
    return counts


@pytest.mark.slow
def test_a_worker_killed_between_a_stage_commit_and_the_next_publish_is_resumed_by_the_redelivery(
    make_app, tmp_path: Path
):
    # Given a real worker process that dies (SIGKILL) right after the extraction's result is
    # committed, before it publishes the analysis; a 4 s visibility timeout; and a stalled-job
    # sweep ten minutes away (no relay runs at all here)
    app = make_app(stage_time_limit=2.0, retry_backoff_max=1.0, broker_visibility_timeout=4)
    settings = app.extensions["gateway"].settings.replace(log_level="INFO")
    assert settings.stalled_job_timeout == 600
    doomed = WorkerProcess(
        settings.replace(extra_provider_modules="tests.crash_hooks"),
        f"doomed-{uuid.uuid4().hex[:6]}",
        tmp_path / "doomed.log",
    )
    healthy = WorkerProcess(settings, f"healthy-{uuid.uuid4().hex[:6]}", tmp_path / "healthy.log")
    try:
        doomed.start()
        job = create(app)
        assert app.extensions["pipeline"].dispatch(job.id)

        # When the worker dies at exactly that point
        assert doomed.process is not None
        doomed.process.wait(timeout=30)
        killed_at = time.monotonic()

        # Then the extraction is stored, the analysis was never sent, and the extraction's
        # message waits unacknowledged in Redis
        stored = load_job(app, job.id)
        assert stored.status == "processing"
        assert [r.status for r in stored.runs] == ["completed", "pending", "pending"]
        client = app.extensions["gateway"].redis
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

    # Then the job completed within seconds of the redelivery, not after the sweep's minutes
    assert finished_after < 4 + 8, finished_after
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
