"""The pipeline end to end on a live worker: results per stage, retries, timeouts, final failure."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from events import model as ev
from gateway.services import get_services
from tests import outage_providers  # noqa: F401  (registers the flaky-once analyzer)
from tests.factories import DOCUMENT, make_job
from tests.support import (
    TaskEvents,
    settled_events,
    wait_for_job,
    wait_until,
)


def create_and_dispatch(app: Any, stages: list[str] | None = None, **fields: Any) -> str:
    """Store a job through the service layer and hand its chain to the broker."""
    with get_services(app).database.session() as session:
        job = make_job(session, stages, **fields)
    assert get_services(app).pipeline.dispatch(job.id)
    return job.id


def stage_view(job: Any) -> dict[str, dict[str, Any]]:
    return {
        run.name: {"status": run.status, "attempts": run.attempts, "result": run.result}
        for run in job.runs
    }


def test_extraction_only_job_stores_the_normalised_text(app, worker):
    job_id = create_and_dispatch(app, ["extraction"], document_content="  Hello   there.\tBye!  ")

    job = wait_for_job(app, job_id, "completed")

    extraction = stage_view(job)["extraction"]
    assert extraction["status"] == "completed" and extraction["attempts"] == 1
    assert extraction["result"]["text"] == "Hello there. Bye!"
    assert extraction["result"]["stats"] == {
        "characters": 17,
        "words": 3,
        "sentences": 2,
        "lines": 1,
    }
    types = [e.event_type for e in settled_events(app, job_id)]
    assert types == [ev.JOB_CREATED, ev.STAGE_STARTED, ev.STAGE_COMPLETED, ev.JOB_COMPLETED]


def test_extraction_and_analysis_job_finds_the_customer_and_the_subscription(app, worker):
    job_id = create_and_dispatch(app, ["extraction", "analysis"])

    job = wait_for_job(app, job_id, "completed")

    stages = stage_view(job)
    assert list(stages) == ["extraction", "analysis"]
    assert stages["extraction"]["result"]["text"] == DOCUMENT
    analysis = stages["analysis"]["result"]
    assert analysis["entities"]["people"] == ["Gabriela"]
    assert analysis["entities"]["identifiers"] == [{"type": "SubscriptionID", "value": "2342"}]
    assert analysis["intent"] == "cancellation"
    assert analysis["word_count"] == len(DOCUMENT.split())
    assert (job.error_stage, job.error_message) == (None, None)


def test_full_job_enriches_the_analysis_and_emits_every_lifecycle_event_once(app, worker):
    job_id = create_and_dispatch(app)

    job = wait_for_job(app, job_id, "completed")

    stages = stage_view(job)
    assert [s["status"] for s in stages.values()] == ["completed"] * 3
    assert [s["attempts"] for s in stages.values()] == [1, 1, 1]
    enrichment = stages["enrichment"]["result"]
    assert enrichment["priority"] == "high"
    assert enrichment["routing_queue"] == "retention"
    assert enrichment["summary"] == "Gabriela — cancellation (SubscriptionID 2342)"
    assert enrichment["entity_counts"] == {
        "people": 1,
        "emails": 0,
        "phone_numbers": 0,
        "identifiers": 1,
    }
    events = settled_events(app, job_id)
    assert [(e.event_type, e.payload.get("stage")) for e in events] == [
        (ev.JOB_CREATED, None),
        (ev.STAGE_STARTED, "extraction"),
        (ev.STAGE_COMPLETED, "extraction"),
        (ev.STAGE_STARTED, "analysis"),
        (ev.STAGE_COMPLETED, "analysis"),
        (ev.STAGE_STARTED, "enrichment"),
        (ev.STAGE_COMPLETED, "enrichment"),
        (ev.JOB_COMPLETED, None),
    ]
    assert events[-1].payload == {"stages": ["extraction", "analysis", "enrichment"]}
    assert events[6].payload["result"] == enrichment


def test_a_different_document_gives_different_results(app, worker):
    document = "This is Ana Lopez, my order is broken. OrderNumber A-17, mail ana@example.org"
    job_id = create_and_dispatch(app, document_content=document)

    job = wait_for_job(app, job_id, "completed")

    stages = stage_view(job)
    entities = stages["analysis"]["result"]["entities"]
    assert entities["people"] == ["Ana Lopez"]
    assert entities["emails"] == ["ana@example.org"]
    assert entities["identifiers"] == [{"type": "OrderNumber", "value": "A-17"}]
    assert stages["analysis"]["result"]["intent"] == "support"
    assert stages["enrichment"]["result"]["routing_queue"] == "support"


def test_pipeline_sends_its_chain_through_its_own_celery_app(make_app, redis_server):
    # Given two apps on two broker databases, the second created last (so Celery's current app)
    first = make_app(redis_url=redis_server.url(1))
    make_app(redis_url=redis_server.url(2))
    with get_services(first).database.session() as session:
        job = make_job(session)

    # When the first app dispatches a job
    assert get_services(first).pipeline.dispatch(job.id)

    # Then the message sits in the first app's broker, not in the current app's
    queue_length = {
        db: redis.Redis.from_url(redis_server.url(db)).llen("extraction") for db in (1, 2)
    }
    assert queue_length == {1: 1, 2: 0}


@pytest.mark.parametrize("stage", ["extraction", "analysis", "enrichment"])
def test_a_stage_that_always_fails_is_retried_then_fails_the_job(make_app, worker_for, stage):
    # Given a worker whose provider for `stage` always fails, and 2 retries per stage
    app = make_app(**{f"{stage}_failure_rate": 1.0})
    settings = get_services(app).settings
    worker_for(app)
    with TaskEvents(get_services(app).celery) as task_events:
        # When a full job runs
        job_id = create_and_dispatch(app)
        job = wait_for_job(app, job_id, "failed")
        run = next(r for r in job.runs if r.name == stage)
        wait_until(lambda: task_events.of_type("task-failed"))

    # Then the stage ran 1 + STAGE_MAX_RETRIES times, and failed with the provider's message
    attempts = 1 + settings.stage_max_retries
    assert run.status == "failed" and run.attempts == attempts
    message = f"{type(get_services(app).provider(stage, settings.providers[stage])).__name__} failed: provider unavailable"
    assert run.error == message
    assert (job.error_stage, job.error_message) == (stage, message)
    # earlier results are kept, later stages skipped and never sent
    position = run.position
    for earlier in job.runs[:position]:
        assert earlier.status == "completed" and earlier.result is not None
    for later in job.runs[position + 1 :]:
        assert later.status == "skipped" and later.attempts == 0
    sent = [e["uuid"] for e in task_events.of_type("task-sent")]
    expected_sent = [r.task_id for r in job.runs[:position]] + [run.task_id] * attempts
    assert sorted(sent) == sorted(expected_sent)
    # one failed execution (hence one task_failure signal), after STAGE_MAX_RETRIES retried ones
    assert [e["uuid"] for e in task_events.of_type("task-failed")] == [run.task_id]
    assert len(task_events.of_type("task-retried", run.task_id)) == settings.stage_max_retries
    events = settled_events(app, job_id)
    stage_events = [
        (e.event_type, e.payload.get("attempt"))
        for e in events
        if e.payload.get("stage") == stage and e.event_type != ev.JOB_FAILED
    ]
    assert stage_events == [
        (ev.STAGE_STARTED, 1),
        (ev.STAGE_RETRYING, 1),
        (ev.STAGE_STARTED, 2),
        (ev.STAGE_RETRYING, 2),
        (ev.STAGE_STARTED, 3),
    ]
    assert events[-1].event_type == ev.JOB_FAILED
    assert events[-1].payload == {"stage": stage, "error": message}
    assert [e.event_type for e in events].count(ev.JOB_FAILED) == 1


def test_a_stage_that_fails_once_then_succeeds_completes_with_two_attempts(make_app, worker_for):
    app = make_app(analyzer_provider="flaky-once")
    worker_for(app)

    job_id = create_and_dispatch(app)

    job = wait_for_job(app, job_id, "completed")

    stages = stage_view(job)
    assert [s["attempts"] for s in stages.values()] == [1, 2, 1]
    assert stages["analysis"]["result"]["entities"]["people"] == ["Gabriela"]
    assert next(r for r in job.runs if r.name == "analysis").error is None
    retrying = [e for e in settled_events(app, job_id) if e.event_type == ev.STAGE_RETRYING]
    assert [(e.payload["stage"], e.payload["attempt"]) for e in retrying] == [("analysis", 1)]
    assert retrying[0].payload["error"] == "FlakyOnceAnalyzer failed: first call refused"


def test_a_provider_slower_than_the_stage_time_limit_counts_as_a_retryable_failure(
    make_app, worker_for
):
    # Given the slow extractor (~2 s) and a stage time limit of 0.2 s
    app = make_app(extractor_provider="slow", provider_latency_scale=1.0, stage_time_limit=0.2)
    worker_for(app)

    # When a job runs
    job_id = create_and_dispatch(app)

    # Then every attempt timed out, was retried, and the job failed with "Provider timeout"
    job = wait_for_job(app, job_id, "failed")
    extraction = job.runs[0]
    assert (extraction.status, extraction.attempts) == ("failed", 3)
    assert (job.error_stage, job.error_message) == ("extraction", "Provider timeout")
    retrying = [e for e in settled_events(app, job_id) if e.event_type == ev.STAGE_RETRYING]
    assert [e.payload["error"] for e in retrying] == ["Provider timeout"] * 2
    assert [r.status for r in job.runs[1:]] == ["skipped", "skipped"]
