"""Chaos under load, with real processes: workers SIGKILLed while jobs flow, every stage message
delivered twice and the event stream replayed, a Redis outage longer than the publish retries,
and everything at once. Every job must still end once, and in time."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

import providers
from events.consumer import Consumer, ConsumerOptions
from events.dedupe import Deduplicator
from events.model import JOB_FAILED, TERMINAL_TYPES, Event
from gateway.config import Settings
from gateway.models import Job, OutboxEvent, StageRun
from gateway.relay import Relay
from gateway.services import get_services
from gateway.stages import STAGES
from tasks.pipeline import NEXT_STAGE_RETRY, build_chain
from tests.factories import make_job
from tests.support import (
    GatewayProcess,
    TcpProxy,
    WorkerProcess,
    broker_is_idle,
    history,
    running_in_thread,
    stream_entries,
    wait_until,
)

# Short bounds, so that a killed worker's stages come back within seconds: a stage runs for at
# most 2 s (latency scale 0.2 keeps real ones near 0.1 s), a retry waits at most 0.5 s, so a
# 3 s visibility timeout passes the configuration's checks.
#
# The broker itself loses a message now and then: kombu's Redis transport pops it (BRPOP) and
# only then, in another round trip, records it as unacknowledged, so a worker SIGKILLed in
# between loses it for good. The relay resends such a stage after LOST_STAGE_TIMEOUT (15 s).
CHAOS = {
    "provider_latency_scale": 0.2,
    "stage_time_limit": 2.0,
    "retry_backoff_max": 0.5,
    "broker_visibility_timeout": 3,
    "stalled_job_timeout": 8.0,
    "worker_concurrency": 4,
    "relay_interval": 0.2,
    "dispatch_grace": 1.0,
}


def worker(settings: Settings, tmp_path: Path, name: str) -> WorkerProcess:
    unique = f"{name}-{uuid.uuid4().hex[:6]}"
    return WorkerProcess(settings.replace(log_level="INFO"), unique, tmp_path / f"{name}.log")


@contextmanager
def workers_running(*workers: WorkerProcess) -> Iterator[None]:
    """Start the workers; on the way out stop them, and print their logs if the test failed."""
    for w in workers:
        w.start()
    try:
        yield
    except BaseException:
        for w in workers:
            print(f"--- {w.name} ---\n{w.log()[-20_000:]}")
        raise
    finally:
        for w in workers:
            w.stop()


def document(i: int) -> str:
    return f"Hi, I am Ada {i}. OrderID A-{i}, please refund me at ada{i}@example.com"


def produce(
    app: Flask, count: int, per_second: float, job_ids: list[str], *, twice: bool = False
) -> threading.Thread:
    """Create and dispatch `count` jobs at a steady pace in a thread, appending their ids.

    With `twice`, each job's chain is published a second time, identical (same task ids).
    """
    services, pipeline = get_services(app), get_services(app).pipeline

    def run() -> None:
        for i in range(count):
            with services.database.session() as session:
                job = make_job(session, document_content=document(i))
            job_ids.append(job.id)
            pipeline.dispatch(job.id)
            if twice:
                build_chain(
                    get_services(app).celery, job, services.settings.providers
                ).apply_async()
            time.sleep(1 / per_second)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def statuses(app: Flask, job_ids: list[str]) -> Counter[str]:
    with get_services(app).database.session() as session:
        rows = session.execute(
            select(Job.status, func.count()).where(Job.id.in_(job_ids)).group_by(Job.status)
        )
        return Counter({status: count for status, count in rows})


def unfinished(app: Flask, job_ids: list[str]) -> str:
    """The jobs that did not complete, with their runs (for a failure message)."""
    client = get_services(app).redis
    unacked = " ".join(map(str, client.hvals("unacked")))
    queued = " ".join(str(m) for stage in STAGES for m in client.lrange(stage, 0, -1))
    with get_services(app).database.session() as session:
        jobs = session.scalars(select(Job).where(Job.id.in_(job_ids), Job.status != "completed"))
        return "\n".join(
            f"{j.id} {j.status} "
            + " ".join(
                f"{r.name}:{r.status}/{r.attempts}/{r.task_id}"
                f"[unacked={r.task_id in unacked},queued={r.task_id in queued}]"
                for r in j.runs
            )
            for j in jobs
        )


def all_completed(app: Flask, job_ids: list[str], count: int, timeout: float) -> None:
    try:
        wait_until(lambda: statuses(app, job_ids)["completed"] == count, timeout, interval=0.5)
    except AssertionError:
        raise AssertionError(f"not completed:\n{unfinished(app, job_ids)}") from None


def all_published(app: Flask, job_ids: list[str]) -> bool:
    """Every event of these jobs is on the stream (the relay marked the last leftovers)."""
    with get_services(app).database.session() as session:
        left = session.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .where(OutboxEvent.job_id.in_(job_ids), OutboxEvent.published_at.is_(None))
        )
    return left == 0


def stored_runs(app: Flask, job_ids: list[str]) -> list[StageRun]:
    with get_services(app).database.session() as session:
        return list(session.scalars(select(StageRun).where(StageRun.job_id.in_(job_ids))))


def outbox_order(app: Flask, job_ids: list[str]) -> dict[str, list[str]]:
    """Each job's event ids in the order they were committed (their seq)."""
    with get_services(app).database.session() as session:
        rows = session.execute(
            select(OutboxEvent.job_id, OutboxEvent.event_id)
            .where(OutboxEvent.job_id.in_(job_ids))
            .order_by(OutboxEvent.job_id, OutboxEvent.seq)
        )
        order: dict[str, list[str]] = defaultdict(list)
        for job_id, event_id in rows:
            order[job_id].append(event_id)
        return order


def stream_history(app: Flask) -> dict[str, list[dict[str, Any]]]:
    """Each job's stream entries in stream order, payload decoded (duplicates kept)."""
    services = get_services(app)
    by_job: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for _entry_id, fields in stream_entries(services.redis, services.settings.events_stream):
        by_job[fields["job_id"]].append({**fields, "payload": json.loads(fields["payload"])})
    return by_job


def assert_each_job_completed_once(history: list[dict[str, Any]]) -> None:
    """created first; each stage started, then completed once; one terminal event, last."""
    types = [e["event_type"] for e in history]
    assert types[0] == "job.created", types
    assert [t for t in types if t in TERMINAL_TYPES] == ["job.completed"], types
    assert types[-1] == "job.completed", types
    completed = [e["payload"]["stage"] for e in history if e["event_type"] == "job.stage_completed"]
    assert completed == list(STAGES), types
    for stage in STAGES:
        of_stage = [
            e["event_type"]
            for e in history
            if e["event_type"].startswith("job.stage_") and e["payload"]["stage"] == stage
        ]
        # Every start of a stage (a rerun included) comes before its one completion
        assert of_stage[-1] == "job.stage_completed" and "job.stage_started" in of_stage, types


@pytest.mark.slow
def test_jobs_flowing_while_workers_are_killed_again_and_again_all_complete_exactly_once(
    make_app, tmp_path, caplog
):
    # Given two worker processes, a relay, and 120 jobs arriving at 20 per second
    app = make_app(**CHAOS)
    settings = get_services(app).settings
    workers = [worker(settings, tmp_path, f"massacre{i}") for i in (1, 2)]
    rng = random.Random(20261201)
    job_ids: list[str] = []
    kills = 0
    began = time.monotonic()
    with workers_running(*workers), running_in_thread(Relay.from_app(app)):
        wait_until(lambda: all("ready." in w.log() for w in workers), timeout=30)
        producer = produce(app, 120, 20.0, job_ids)

        # When a random worker is SIGKILLed every second or two, five times, and started again
        for _ in range(5):
            time.sleep(rng.uniform(1.0, 2.0))
            victim = rng.choice(workers)
            victim.kill()
            victim.start()
            kills += 1
        producer.join()

        # Then every job completes, its events all reach the stream, and the broker drains
        all_completed(app, job_ids, 120, timeout=40)
        wait_until(lambda: all_published(app, job_ids), timeout=10)
        wait_until(lambda: broker_is_idle(app), timeout=10)
    elapsed = time.monotonic() - began

    # And no stage was recorded twice: one completed run per stage, with its result, and
    # attempts that only the kills explain (no provider failed)
    runs = stored_runs(app, job_ids)
    assert len(runs) == 120 * len(STAGES)
    assert all(r.status == "completed" and r.result is not None for r in runs)
    assert all(r.failures == 0 for r in runs)
    attempts = Counter(r.attempts for r in runs)
    assert min(attempts) >= 1 and max(attempts) <= 1 + kills, attempts
    # (each kill interrupts at most `concurrency` stages; each resent chain reruns at most all)
    resumed = len([r for r in caplog.records if "idle for over" in r.getMessage()])
    bound = (kills * settings.worker_concurrency + resumed) * len(STAGES)
    assert sum((n - 1) * c for n, c in attempts.items()) <= bound, attempts

    # And on the stream each job's events are the committed ones, each once, in commit order:
    # created first, one stage_completed per stage, one terminal event, last
    history = stream_history(app)
    committed = outbox_order(app, job_ids)
    for job_id in job_ids:
        assert [e["event_id"] for e in history[job_id]] == committed[job_id]
        assert_each_job_completed_once(history[job_id])
    print(
        f"\n{kills} kills, 120 jobs completed in {elapsed:.1f} s, {resumed} resumed by the "
        f"stalled-job sweep; attempts per stage run: {dict(sorted(attempts.items()))}"
    )


def expected_results(settings: Settings, content: str) -> dict[str, Any]:
    """What each stage must store for this document: its providers, called directly."""
    data: Any = content
    results = {}
    for stage in STAGES:
        provider = providers.create(stage, settings.providers[stage], latency_scale=0.0)
        data = json.loads(json.dumps(provider.process(data, timeout=5.0)))
        results[stage] = data
    return results


class Projection:
    """A downstream read model built from events; not idempotent: it appends what it sees."""

    def __init__(self) -> None:
        self.results: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
        self.terminal: dict[str, list[str]] = defaultdict(list)
        self.applied: list[str] = []

    def __call__(self, event: Event) -> None:
        self.applied.append(event.event_id)
        if event.event_type == "job.stage_completed":
            self.results[event.job_id][event.payload["stage"]].append(event.payload["result"])
        elif event.event_type in TERMINAL_TYPES:
            self.terminal[event.job_id].append(event.event_type)


@pytest.mark.slow
def test_every_stage_message_delivered_twice_and_the_stream_replayed_change_no_result(
    make_app, tmp_path
):
    # Given two workers on the same queues that publish every stage message twice, and 60 jobs
    # whose first message is published twice too
    app = make_app(**CHAOS)
    settings = get_services(app).settings
    doubling = settings.replace(extra_provider_modules="tests.duplicate_hooks")
    workers = [worker(doubling, tmp_path, f"storm{i}") for i in (1, 2)]
    job_ids: list[str] = []
    began = time.monotonic()
    with workers_running(*workers), running_in_thread(Relay.from_app(app)):
        wait_until(lambda: all("ready." in w.log() for w in workers), timeout=30)

        # When they run
        produce(app, 60, 20.0, job_ids, twice=True).join()

        # Then every job completes and the broker drains
        all_completed(app, job_ids, 60, timeout=40)
        wait_until(lambda: all_published(app, job_ids), timeout=10)
        wait_until(lambda: broker_is_idle(app), timeout=10)
    elapsed = time.monotonic() - began

    # And each stage stored exactly the result its providers give for the document
    runs = stored_runs(app, job_ids)
    by_job: dict[str, dict[str, Any]] = defaultdict(dict)
    for run in runs:
        assert run.status == "completed" and run.failures == 0
        by_job[run.job_id][run.name] = run.result
    for i, job_id in enumerate(job_ids):
        assert by_job[job_id] == expected_results(settings, document(i)), job_id
    attempts = Counter(r.attempts for r in runs)

    # And no event was recorded twice: each job's entries are its committed events, each once,
    # in commit order; its stage starts have distinct attempts
    history = stream_history(app)
    committed = outbox_order(app, job_ids)
    for job_id in job_ids:
        assert [e["event_id"] for e in history[job_id]] == committed[job_id]
        assert_each_job_completed_once(history[job_id])
        for stage in STAGES:
            started = [
                e["payload"]["attempt"]
                for e in history[job_id]
                if e["event_type"] == "job.stage_started" and e["payload"]["stage"] == stage
            ]
            assert started == sorted(set(started)), (job_id, stage, started)

    # When every entry of the stream is appended again (a replay), and a downstream group
    # builds its read model through the event_id dedupe helper
    services = get_services(app)
    stream = settings.events_stream
    entries: list[dict[Any, Any]] = [f for _, f in stream_entries(services.redis, stream)]
    for fields in entries:
        services.redis.xadd(stream, fields)
    projection = Projection()
    options = ConsumerOptions(
        stream=stream, group="read-model", consumer="r1",
        dead_letter_stream=stream + ":dead", block_ms=50, batch=500,
    )  # fmt: skip
    handler = Deduplicator(services.redis, projection, key_prefix=f"{stream}:read-model")
    consumer = Consumer(services.redis, options, handler)
    wait_until(lambda: consumer.poll() == 0, timeout=20)

    # Then every event was applied once, and the read model holds the stored results
    assert sorted(projection.applied) == sorted(f["event_id"] for f in entries)
    assert services.redis.xpending(stream, "read-model")["pending"] == 0
    for job_id in job_ids:
        assert projection.terminal[job_id] == ["job.completed"]
        assert {s: r for s, r in projection.results[job_id].items()} == {
            stage: [result] for stage, result in by_job[job_id].items()
        }
    print(
        f"\n60 jobs, every stage message twice: completed in {elapsed:.1f} s; "
        f"attempts per stage run: {dict(sorted(attempts.items()))}; "
        f"{len(entries)} entries replayed, each event applied once"
    )


# The stalled-job sweep at its default: what these tests see recovered, the redeliveries did.
DEFAULT_STALLED_JOB_TIMEOUT = 600.0


def publish_retry_span() -> float:
    """Seconds a worker keeps retrying to publish a job's next stage before its task fails."""
    policy = NEXT_STAGE_RETRY
    waits = (
        min(policy["interval_start"] + i * policy["interval_step"], policy["interval_max"])
        for i in range(int(policy["max_retries"]))
    )
    return sum(waits)


@pytest.mark.slow
@pytest.mark.timeout(400)  # an outage longer than the publish retries, then the recovery
def test_jobs_in_flight_through_a_redis_outage_longer_than_the_publish_retries_all_complete(
    make_app, own_redis, tmp_path
):
    # Given two worker processes and a relay on a persistent Redis, jobs flowing, and the
    # stalled-job sweep ten minutes away
    outage = publish_retry_span() + 8.0
    app = make_app(
        **{**CHAOS, "stalled_job_timeout": DEFAULT_STALLED_JOB_TIMEOUT},
        redis_url=own_redis.url(),
    )
    settings = get_services(app).settings
    workers = [worker(settings, tmp_path, f"outage{i}") for i in (1, 2)]
    job_ids: list[str] = []
    began = time.monotonic()
    with workers_running(*workers), running_in_thread(Relay.from_app(app)):
        wait_until(lambda: all("ready." in w.log() for w in workers), timeout=30)
        producer = produce(app, 40, 20.0, job_ids)

        # When Redis stops while stages run, and stays down longer than a worker retries to
        # publish a next stage (more jobs arrive meanwhile, and wait in the database)
        wait_until(lambda: statuses(app, job_ids)["completed"] >= 3, timeout=30)
        own_redis.stop()
        stopped_at = time.monotonic()
        producer.join()
        at_stop = statuses(app, job_ids)
        produce(app, 10, 2.0, job_ids).join()
        time.sleep(max(0.0, outage - (time.monotonic() - stopped_at)))
        own_redis.start()
        restarted_at = time.monotonic()

        # Then every job completes within seconds of Redis' return
        all_completed(app, job_ids, 50, timeout=45)
        recovered_in = time.monotonic() - restarted_at
        wait_until(lambda: all_published(app, job_ids), timeout=15)
        wait_until(lambda: broker_is_idle(app), timeout=15)
    elapsed = time.monotonic() - began

    # And the outage did outlast the publish retries of stages that completed during it
    logs = "".join(w.log() for w in workers)
    gave_up = logs.count("then its task failed")
    assert gave_up >= 1, logs[-20_000:]
    assert at_stop["processing"] >= 1, at_stop

    # And no job failed, no stage was failed over its stored result, none ran twice to completion
    runs = stored_runs(app, job_ids)
    assert len(runs) == 50 * 3
    assert all(r.status == "completed" and r.result is not None and r.failures == 0 for r in runs)
    history = stream_history(app)
    committed = outbox_order(app, job_ids)
    for job_id in job_ids:
        assert JOB_FAILED not in {e["event_type"] for e in history[job_id]}, job_id
        assert [e["event_id"] for e in history[job_id]] == committed[job_id]
        assert_each_job_completed_once(history[job_id])
    attempts = Counter(r.attempts for r in runs)
    print(
        f"\nRedis down {outage:.0f} s (publish retries {publish_retry_span():.0f} s) with "
        f"{at_stop['processing']} jobs processing; {gave_up} stages gave up publishing; all 50 "
        f"jobs completed {recovered_in:.1f} s after Redis returned, {elapsed:.0f} s in all; "
        f"attempts per stage run: {dict(sorted(attempts.items()))}"
    )


# Everything at once: the default latencies and the default stalled-job sweep (ten minutes), so
# that only the redeliveries and the relay's quick passes can recover a job within the minute.
# Analysis fails now and then and gets one retry, so that some jobs fail for a real reason. A
# stage runs for at most 5 s; a message whose worker lost Redis returns after 10 s.
EVERYTHING = {
    "provider_latency_scale": 1.0,
    "analysis_failure_rate": 0.15,
    "stage_max_retries": 1,
    "retry_backoff_base": 0.2,
    "retry_backoff_max": 1.0,
    "stage_time_limit": 5.0,
    "broker_visibility_timeout": 10,
    "stalled_job_timeout": DEFAULT_STALLED_JOB_TIMEOUT,
    "worker_concurrency": 8,
    "relay_interval": 0.2,
    "dispatch_grace": 1.0,
}
FINISHED = {"completed", "cancelled", "failed"}


def racing_target(app: Flask, job_ids: list[str], taken: Collection[str]) -> str | None:
    """A job whose last stage runs right now, else any processing one, else a pending one; never
    one cancelled before."""
    last = STAGES[-1]
    with get_services(app).database.session() as session:
        active = (
            select(Job.id)
            .join(StageRun)
            .where(Job.id.in_(list(job_ids)), Job.id.not_in(list(taken)))
        )
        processing = active.where(Job.status == "processing")
        running_last = processing.where(StageRun.name == last, StageRun.status == "started")
        pending = active.where(Job.status == "pending")
        for query in (running_last, processing, pending):
            if (job_id := session.scalar(query.limit(1))) is not None:
                return job_id
        return None


def cancel_racing(
    app: Flask, job_ids: list[str], count: int, every: float, outcomes: dict[str, int]
) -> threading.Thread:
    """In a thread, cancel `count` jobs through the API, one every `every` seconds, each while its
    last stage is running if one is: the cancel races the job's completion. Gives up 60 s after
    it started (the test then sees fewer than `count` cancels)."""
    client = app.test_client()
    deadline = time.monotonic() + 60

    def run() -> None:
        while len(outcomes) < count and time.monotonic() < deadline:
            target = racing_target(app, job_ids, outcomes)
            if target is None:  # nothing active this instant: look again soon
                time.sleep(0.1)
                continue
            outcomes[target] = client.post(f"/api/jobs/{target}/cancel/").status_code
            time.sleep(every)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_everything_at_once_every_job_ends_completed_cancelled_or_failed_within_a_minute(
    make_app, own_redis, postgres_url, tmp_path
):
    # Given two worker processes and a relay process that reach the database through a proxy we
    # can cut, on a persistent Redis, with the stalled-job sweep ten minutes away; the API (in
    # this process) reaches the database directly
    url = make_url(postgres_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    app = make_app(**EVERYTHING, redis_url=own_redis.url())
    settings = get_services(app).settings.replace(
        database_url=url.set(port=proxy.port).render_as_string(hide_password=False)
    )
    workers = [worker(settings, tmp_path, f"everything{i}") for i in (1, 2)]
    relay = GatewayProcess(settings, tmp_path / "relay.log", "relay")
    job_ids: list[str] = []
    cancels: dict[str, int] = {}
    try:
        with workers_running(*workers):
            wait_until(lambda: all("ready." in w.log() for w in workers), timeout=30)

            # When 120 jobs arrive at 4 per second, 20 of them cancelled while they finish, and
            # meanwhile Redis restarts twice, the database is cut off for 10 s and the relay is
            # killed and started again, the second Redis restart and the relay's death within
            # the database outage
            producer = produce(app, 120, 4.0, job_ids)
            canceller = cancel_racing(app, job_ids, 20, 1.0, cancels)
            began = time.monotonic()

            faults: list[tuple[float, Callable[[], None]]] = [
                (4, own_redis.stop), (7, own_redis.start),  # Redis restart 1
                (11, proxy.cut),  # the database cut off for 10 s
                (14, relay.kill), (16, relay.restart),
                (17, own_redis.stop), (20, own_redis.start),  # Redis restart 2
                (21, proxy.restore),
            ]  # fmt: skip
            for second, fault in faults:
                time.sleep(max(0.0, began + second - time.monotonic()))
                fault()
            last_fault = time.monotonic()
            producer.join()
            canceller.join()

            # Then every job ends completed, cancelled or failed, within about a minute of the
            # last fault, and every event reaches the stream
            try:
                wait_until(
                    lambda: set(statuses(app, job_ids)) <= FINISHED, timeout=90, interval=0.5
                )
            except AssertionError:
                raise AssertionError(f"unfinished:\n{unfinished(app, job_ids)}") from None
            finished_after = time.monotonic() - last_fault
            wait_until(lambda: all_published(app, job_ids), timeout=15)
    except BaseException:
        print(f"--- relay ---\n{relay.log()[-20_000:]}")
        raise
    finally:
        relay.stop()
        proxy.close()
    assert finished_after <= 60, f"the last job ended {finished_after:.0f} s after the last fault"

    # And a job whose cancel was accepted stayed cancelled; one whose cancel came too late had
    # completed or failed
    with get_services(app).database.session() as session:
        final = {j.id: j for j in session.scalars(select(Job).where(Job.id.in_(job_ids)))}
        runs = {(r.job_id, r.name): r for r in session.scalars(select(StageRun).where(StageRun.job_id.in_(job_ids)))}  # fmt: skip
    assert len(cancels) == 20 and set(cancels.values()) <= {200, 400}, cancels
    for job_id, code in cancels.items():
        assert (final[job_id].status == "cancelled") == (code == 200), (job_id, code)

    # And a job failed only for a real provider failure: analysis, after its retry
    failed = [j for j in final.values() if j.status == "failed"]
    for job in failed:
        assert job.error_stage == "analysis", (job.id, job.error_stage, job.error_message)
        assert (job.error_message or "").endswith("failed: provider unavailable"), job.id
        assert runs[job.id, "analysis"].failures == settings.stage_max_retries

    # And on the stream each job's events are its committed ones, in commit order (a Redis
    # restart may deliver one twice, with its event_id), with exactly one terminal event, last:
    # the one its status says
    by_job = history(get_services(app).redis, settings.events_stream)
    committed = outbox_order(app, job_ids)
    for job_id, job in final.items():
        events = by_job[job_id]
        assert [e["event_id"] for e in events] == committed[job_id], job_id
        types = [e["event_type"] for e in events]
        assert types[0] == "job.created" and types[-1] == f"job.{job.status}", (job_id, types)
        assert len([t for t in types if t in TERMINAL_TYPES]) == 1, (job_id, types)
        for stage in STAGES:
            done = [e for e in events if e["event_type"] == "job.stage_completed" and e["payload"]["stage"] == stage]  # fmt: skip
            assert len(done) == (runs[job_id, stage].status == "completed"), (job_id, types)
    counted = Counter(j.status for j in final.values())
    print(
        f"\n120 jobs, 2 Redis restarts, a 10 s database cut, the relay killed, 20 cancels "
        f"({Counter(cancels.values())[200]} accepted): {dict(counted)}; the last job ended "
        f"{finished_after:.1f} s after the last fault"
    )
