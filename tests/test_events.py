"""Events on the stream: the exact sequence per job outcome, the entry format, ordering under load."""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import select

from events.model import EVENT_TYPES, TERMINAL_TYPES
from gateway import jobs
from gateway.errors import InvalidTransitionError
from gateway.models import StageRun
from gateway.services import get_services
from tests.factories import FULL_PIPELINE, make_job
from tests.support import history, join, steps, successful_steps, wait_until

ENVELOPE = {"event_id", "event_type", "job_id", "timestamp", "payload", "tenant_id"}
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")


def terminal_reached(services: Any, job_id: str) -> Any:
    """Wait condition: the job's terminal event is on the stream."""

    def reached() -> bool:
        events = history(services.redis, services.settings.events_stream).get(job_id, [])
        return any(e["event_type"] in TERMINAL_TYPES for e in events)

    return reached


def test_a_completed_job_publishes_created_then_each_stage_then_completed(
    app, services, session, worker
):
    # Given a three-stage job handed to the worker
    job = make_job(session)
    assert get_services(app).pipeline.dispatch(job.id)

    # When it has run
    wait_until(terminal_reached(services, job.id))

    # Then the stream holds exactly its lifecycle, in order
    events = history(services.redis, services.settings.events_stream)[job.id]
    assert steps(events) == successful_steps(FULL_PIPELINE)
    assert events[-1]["payload"] == {"stages": FULL_PIPELINE}


def test_a_failing_stage_publishes_its_retries_and_ends_with_failed(make_app, worker_for):
    # Given analysis always fails and may be retried twice
    app = make_app(analysis_failure_rate=1.0, stage_max_retries=2)
    services = get_services(app)
    worker_for(app)
    with services.database.session() as s:
        job = make_job(s, stages=["extraction", "analysis", "enrichment"])
    assert get_services(app).pipeline.dispatch(job.id)

    # When the job has run out of retries
    wait_until(terminal_reached(services, job.id))
    join(app)  # nothing is left in flight to emit after the terminal event

    # Then each attempt is announced, each failure too, and job.failed comes last
    events = history(services.redis, services.settings.events_stream)[job.id]
    assert steps(events) == [
        ("job.created",),
        ("job.stage_started", "extraction", 1),
        ("job.stage_completed", "extraction"),
        ("job.stage_started", "analysis", 1),
        ("job.stage_retrying", "analysis", 1),
        ("job.stage_started", "analysis", 2),
        ("job.stage_retrying", "analysis", 2),
        ("job.stage_started", "analysis", 3),
        ("job.failed", "analysis"),
    ]
    assert events[-1]["payload"] == {
        "stage": "analysis",
        "error": "SimulatedAnalyzer failed: provider unavailable",
    }
    retrying = events[4]["payload"]
    assert retrying["error"] == "SimulatedAnalyzer failed: provider unavailable"
    assert isinstance(retrying["countdown"], (int, float))


def test_a_cancelled_job_ends_with_cancelled_and_nothing_follows(make_app, worker_for):
    # Given a job whose extraction takes about a second
    app = make_app(extractor_provider="slow", provider_latency_scale=0.5)
    services = get_services(app)
    worker_for(app)
    with services.database.session() as s:
        job = make_job(s)
    assert get_services(app).pipeline.dispatch(job.id)
    stream = services.settings.events_stream
    wait_until(lambda: len(history(services.redis, stream).get(job.id, [])) >= 2)

    # When it is cancelled while extraction runs
    with services.database.session() as s:
        cancellation = jobs.cancel_job(s, job.id)
    get_services(app).pipeline.revoke(cancellation.unfinished_task_ids)

    # Then, once the running extraction has finished, job.cancelled is still the last event
    join(app)
    events = history(services.redis, stream)[job.id]
    assert steps(events) == [
        ("job.created",),
        ("job.stage_started", "extraction", 1),
        ("job.cancelled",),
    ]
    assert events[-1]["payload"] == {"previous_status": "processing"}


def test_each_entry_carries_the_envelope_with_a_utc_timestamp_and_a_json_payload(
    app, services, session, worker
):
    # Given a completed two-stage job
    job = make_job(session, stages=["extraction", "analysis"])
    assert get_services(app).pipeline.dispatch(job.id)
    wait_until(terminal_reached(services, job.id))

    # Then every entry has exactly the envelope fields, well formed
    entries = services.redis.xrange(services.settings.events_stream)
    assert len(entries) == 6
    for _entry_id, fields in entries:
        assert set(fields) == ENVELOPE
        assert str(uuid.UUID(fields["event_id"])) == fields["event_id"]
        assert fields["event_type"] in EVENT_TYPES
        assert fields["job_id"] == job.id
        assert ISO_UTC.match(fields["timestamp"]), fields["timestamp"]
        assert isinstance(json.loads(fields["payload"]), dict)
    assert len({fields["event_id"] for _, fields in entries}) == len(entries)
    timestamps = [fields["timestamp"] for _, fields in entries]
    assert timestamps == sorted(timestamps)

    # And the payloads say what happened, stage results included
    events = history(services.redis, services.settings.events_stream)[job.id]
    assert events[0]["payload"] == {
        "document_name": "My Document",
        "document_type": "important",
        "stages": ["extraction", "analysis"],
    }
    assert events[1]["payload"] == {"stage": "extraction", "attempt": 1}
    session.expire_all()
    query = select(StageRun.name, StageRun.result).where(StageRun.job_id == job.id)
    stored = {name: result for name, result in session.execute(query)}
    completed = [e for e in events if e["event_type"] == "job.stage_completed"]
    assert [e["payload"]["stage"] for e in completed] == ["extraction", "analysis"]
    for e in completed:
        assert e["payload"]["result"] == stored[e["payload"]["stage"]]
    assert "text" in completed[0]["payload"]["result"]


def test_many_concurrent_jobs_each_get_ordered_events_and_exactly_one_terminal_event(
    app, services, worker
):
    # Given forty jobs of every pipeline length, dispatched at once, a third of them
    # cancelled right away (racing the worker)
    pipeline = get_services(app).pipeline
    created = {}
    for i in range(40):
        stages = FULL_PIPELINE[: i % 3 + 1]
        with services.database.session() as s:
            job = make_job(s, stages=stages)
        created[job.id] = stages
        assert pipeline.dispatch(job.id)
    for job_id in list(created)[::3]:
        # A job that finished first refuses the cancel: fine, the race is the point.
        with services.database.session() as s, contextlib.suppress(InvalidTransitionError):
            pipeline.revoke(jobs.cancel_job(s, job_id).unfinished_task_ids)

    # When every job has finished
    stream = services.settings.events_stream
    wait_until(lambda: len(history(services.redis, stream)) == 40 and all(
        any(e["event_type"] in TERMINAL_TYPES for e in events)
        for events in history(services.redis, stream).values()
    ), timeout=45)  # fmt: skip
    join(app)

    # Then each job's events are its lifecycle in order, with one terminal event, last
    outcomes: dict[str | int, int] = defaultdict(int)
    for job_id, events in history(services.redis, stream).items():
        found = steps(events)
        terminal = [s for s in found if s[0] in TERMINAL_TYPES]
        assert len(terminal) == 1 and found[-1] == terminal[0], found
        outcomes[terminal[0][0]] += 1
        if terminal[0] == ("job.completed",):
            assert found == successful_steps(created[job_id])
        else:
            assert terminal[0] == ("job.cancelled",), found
            expected = successful_steps(created[job_id])[:-1]
            assert found[:-1] == expected[: len(found) - 1], found
    assert sum(outcomes.values()) == 40
    assert outcomes["job.completed"] >= 1
