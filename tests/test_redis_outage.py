"""A Redis restart in the middle of the pipeline: every process rides it out, no event is lost."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
import redis
from sqlalchemy import func, select

from events.consumer import Consumer, ConsumerOptions, log_event
from events.model import TERMINAL_TYPES, Event
from gateway.models import Job, OutboxEvent, utcnow
from gateway.relay import Relay
from gateway.services import get_services
from tests.factories import FULL_PIPELINE, job_payload
from tests.support import (
    HANDLED,
    GatewayProcess,
    RedisServer,
    history,
    running_in_thread,
    steps,
    successful_steps,
    wait_until,
)


def unpublished(app: Any, older_than: float = 1.0) -> int:
    """Events the relay could not append for `older_than` seconds (its grace is shorter)."""
    cutoff = utcnow() - timedelta(seconds=older_than)
    with get_services(app).database.session() as s:
        query = select(func.count()).where(
            OutboxEvent.published_at.is_(None), OutboxEvent.created_at < cutoff
        )
        return int(s.scalar(query) or 0)


def outage_lines(caplog: Any, logger: str, text: str) -> int:
    return sum(1 for r in caplog.records if r.name == logger and text in r.getMessage())


def statuses(app: Any, job_ids: list[str]) -> dict[str, str]:
    with get_services(app).database.session() as s:
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
    services = get_services(app)
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
    with running_in_thread(Relay.from_app(app)), running_in_thread(consumer) as consumer_thread:
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

    # And each component logged the outage once, and its end once (the outbox's outage is
    # shared with the pipeline's broker calls)
    for logger in ("gateway.outbox", "events.consumer"):
        assert outage_lines(caplog, logger, "unavailable") == 1, logger
        assert outage_lines(caplog, logger, "available again") == 1, logger
    print(
        f"\noutage {3.0:.1f} s; all jobs completed {recovered_in:.1f} s after the restart; "
        f"{waiting} events waited in the outbox; "
        f"{services.redis.xlen(stream)} entries, {len(expected)} distinct"
    )


@pytest.mark.slow
def test_the_relay_and_consumer_processes_ride_out_a_redis_restart_without_being_restarted(
    make_app, own_redis, worker_for, tmp_path, caplog
):
    # Given `gateway relay` and `gateway consume`, each its own process, and the API and a
    # worker in this one, all on a persistent Redis. (A `celery worker` process riding out a
    # restart is tested in test_pipeline_outages.py.)
    app = make_app(
        redis_url=own_redis.url(),
        provider_latency_scale=1.0,
        relay_interval=0.2,
        dispatch_grace=0.5,
    )
    services = get_services(app)
    settings = services.settings
    stream = settings.events_stream
    worker_for(app)
    relay = GatewayProcess(settings, tmp_path / "relay.log", "relay")
    consumer = GatewayProcess(
        settings, tmp_path / "consume.log", "consume", "--group", "audit", "--consumer", "a1",
        "--block-ms", "200", "--claim-idle", "2",
    )  # fmt: skip
    processes = (relay.process, consumer.process)
    try:
        client = app.test_client()
        job_ids = []
        for _ in range(10):
            response = client.post("/api/jobs/", json=job_payload())
            assert response.status_code == 201
            job_ids.append(response.get_json()["id"])

        # When Redis stops while the jobs run, more jobs arrive, and Redis comes back 3 s later
        wait_until(lambda: "processing" in statuses(app, job_ids).values(), timeout=30)
        wait_until(lambda: len(HANDLED.findall(consumer.log())) >= 5, timeout=30)
        time.sleep(0.3)
        own_redis.stop()
        for _ in range(3):
            response = client.post("/api/jobs/", json=job_payload())
            assert response.status_code == 201
            job_ids.append(response.get_json()["id"])
        time.sleep(3.0)
        assert all(p.poll() is None for p in processes)
        own_redis.start()

        # Then every job completes, and the stream holds each job's whole lifecycle in order
        wait_until(lambda: set(statuses(app, job_ids).values()) == {"completed"}, timeout=40)
        wait_until(
            lambda: all(steps(history(services.redis, stream)[j]) == successful_steps(FULL_PIPELINE) for j in job_ids),
            timeout=15,
        )  # fmt: skip
        by_job = history(services.redis, stream)

        # And the consumer process logged every event, without having been restarted
        expected = {e["event_id"] for j in job_ids for e in by_job[j]}
        wait_until(lambda: expected <= set(HANDLED.findall(consumer.log())), timeout=15)
        assert all(p.poll() is None for p in processes)
    finally:
        relay_code, consumer_code = relay.stop(), consumer.stop()

    # And each process logged the outage once, and its end once, and stopped cleanly
    assert (relay_code, consumer_code) == (0, 0)
    for process, what in ((relay, "Redis"), (consumer, "events stream")):
        log = process.log()
        assert log.count(f"{what} unavailable") == 1, log
        assert log.count(f"{what} available again") == 1, log
        assert "Traceback" not in log, log
    assert outage_lines(caplog, "gateway.outbox", "unavailable") == 1


def test_a_consumer_rides_out_a_redis_restart_that_lost_every_entry(services, caplog):
    # Given a consumer running on a Redis without persistence
    server = RedisServer()
    server.start()
    client = redis.Redis.from_url(server.url(), decode_responses=True, socket_timeout=2)
    handled: list[str] = []
    stream = services.settings.events_stream
    consumer = Consumer(
        client,
        ConsumerOptions(stream, "g", "c1", stream + ":dead", claim_idle=1.0, block_ms=100),
        lambda event: handled.append(event.event_id),
    )
    try:
        with running_in_thread(consumer) as thread:
            before = Event("job.created", str(uuid.uuid4()), {})
            client.xadd(stream, before.to_fields())  # type: ignore[arg-type]
            wait_until(lambda: handled == [before.event_id])

            # When Redis restarts empty: no stream, no group
            server.stop()
            time.sleep(1.0)
            server.start()
            after = Event("job.created", str(uuid.uuid4()), {})
            wait_until(lambda: client.exists(stream))  # the consumer recreated its group
            client.xadd(stream, after.to_fields())  # type: ignore[arg-type]

            # Then it goes on with what is appended next, having logged the outage once
            wait_until(lambda: handled == [before.event_id, after.event_id], timeout=10)
            assert thread.is_alive()
    finally:
        client.close()
        server.close()
    assert outage_lines(caplog, "events.consumer", "unavailable") == 1
    assert outage_lines(caplog, "events.consumer", "available again") == 1
