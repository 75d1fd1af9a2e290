"""A Redis restart in the middle of the pipeline: every process rides it out, no event is lost."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from events.consumer import Consumer, ConsumerOptions, log_event
from events.model import TERMINAL_TYPES, Event
from gateway.models import Job, OutboxEvent
from gateway.relay import Relay
from tests.factories import FULL_PIPELINE, job_payload
from tests.support import RedisServer, wait_until
from tests.test_events import history, steps, successful_steps


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis with an append-only file, like docker-compose's: queues survive a restart."""
    server = RedisServer(persistent=True)
    server.start()
    yield server
    server.close()


@contextlib.contextmanager
def in_thread(loop: Any) -> Iterator[threading.Thread]:
    """Run `loop.run` in a thread; set its stop event and join it on exit."""
    thread = threading.Thread(target=loop.run)
    thread.start()
    try:
        yield thread
    finally:
        loop.stop.set()
        thread.join(10)


def unpublished(app: Any) -> int:
    with app.extensions["gateway"].database.session() as s:
        query = select(func.count()).where(OutboxEvent.published_at.is_(None))
        return int(s.scalar(query) or 0)


def outage_lines(caplog: Any, logger: str, text: str) -> int:
    return sum(1 for r in caplog.records if r.name == logger and text in r.getMessage())


def statuses(app: Any, job_ids: list[str]) -> dict[str, str]:
    with app.extensions["gateway"].database.session() as s:
        return dict(s.execute(select(Job.id, Job.status).where(Job.id.in_(job_ids))).all())


@pytest.mark.slow
def test_a_redis_restart_mid_pipeline_loses_no_job_and_no_event(
    make_app, own_redis, worker_for, caplog
):
    # Given the API, a worker, the relay and a consumer, all on a persistent Redis
    app = make_app(
        redis_url=own_redis.url(),
        provider_latency_scale=1.0,
        relay_interval=0.1,
        dispatch_grace=0.5,
    )
    services = app.extensions["gateway"]
    stream = services.settings.events_stream
    worker_for(app)
    client = app.test_client()
    consumed: list[Event] = []

    def handle(event: Event) -> None:
        log_event(event)
        consumed.append(event)

    consumer = Consumer(
        services.redis,
        ConsumerOptions(stream, "downstream", "c1", services.settings.dead_letter_stream,
                        claim_idle=1.0, block_ms=200),
        handle,
    )  # fmt: skip
    with in_thread(Relay.from_app(app)), in_thread(consumer) as consumer_thread:
        # When jobs are running and Redis stops
        job_ids = []
        for _ in range(12):
            response = client.post("/api/jobs/", json=job_payload())
            assert response.status_code == 201
            job_ids.append(response.get_json()["id"])
        wait_until(lambda: "processing" in statuses(app, job_ids).values())
        time.sleep(0.3)
        own_redis.stop()
        stopped_at = time.monotonic()
        at_stop = statuses(app, job_ids)

        # And more jobs arrive while it is down (the API still answers 201)
        for _ in range(4):
            response = client.post("/api/jobs/", json=job_payload())
            assert response.status_code == 201, response.get_json()
            job_ids.append(response.get_json()["id"])
        time.sleep(max(0.0, 3.0 - (time.monotonic() - stopped_at)))
        waiting = unpublished(app)

        # And comes back on the same port
        own_redis.start()
        restarted_at = time.monotonic()

        # Then every job completes
        wait_until(lambda: set(statuses(app, job_ids).values()) == {"completed"}, timeout=30)
        recovered_in = time.monotonic() - restarted_at

        # And every job's events are on the stream: created first, one terminal event last,
        # none missing, in order
        def all_published() -> bool:
            by_job = history(services.redis, stream)
            return all(
                any(e["event_type"] in TERMINAL_TYPES for e in by_job.get(job_id, []))
                for job_id in job_ids
            )

        wait_until(all_published, timeout=15)
        by_job = history(services.redis, stream)
        for job_id in job_ids:
            assert steps(by_job[job_id]) == successful_steps(FULL_PIPELINE), job_id

        # And the consumer, still running, received every one of them
        expected = {e["event_id"] for events in by_job.values() for e in events}
        wait_until(lambda: expected <= {e.event_id for e in consumed}, timeout=15)
        assert consumer_thread.is_alive()

    # And the outage hit mid-pipeline: jobs were running, events waited in the outbox
    assert "processing" in at_stop.values() and set(at_stop.values()) != {"completed"}
    assert waiting > 0

    # And each component logged the outage once, and its end once
    for logger in ("events.publisher", "events.consumer"):
        assert outage_lines(caplog, logger, "unavailable") == 1, logger
        assert outage_lines(caplog, logger, "available again") == 1, logger
    assert outage_lines(caplog, "tasks.pipeline", "unavailable") == 1
    print(
        f"\noutage {3.0:.1f} s; all jobs completed {recovered_in:.1f} s after the restart; "
        f"{waiting} events waited in the outbox; "
        f"{services.redis.xlen(stream)} entries, {len(expected)} distinct"
    )
