"""The transactional outbox: nothing committed is lost while Redis is down, order holds per job."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from events.model import TERMINAL_TYPES
from gateway import jobs, runs
from gateway.models import OutboxEvent, utcnow
from gateway.relay import Relay
from gateway.services import get_services
from tests.factories import FULL_PIPELINE, make_job
from tests.support import history, running_in_thread, steps, successful_steps, wait_until


def unpublished(app) -> list[str]:
    """Event types the relay has not marked published yet, in id order."""
    with get_services(app).database.session() as s:
        query = select(OutboxEvent.event_type).where(OutboxEvent.published_at.is_(None))
        return list(s.scalars(query.order_by(OutboxEvent.id)))


def test_an_event_committed_while_redis_is_down_is_appended_later_before_the_jobs_later_events(
    make_app, own_redis
):
    # Given a job whose creation is on the stream
    app = make_app(redis_url=own_redis.url(), dispatch_grace=0.0)
    services = get_services(app)
    stream = services.settings.events_stream
    relay = Relay.from_app(app)
    with services.database.session() as s:
        job = make_job(s, stages=["extraction"])
    assert steps(history(services.redis, stream)[job.id]) == [("job.created",)]

    # When Redis is down while the first stage starts (the commit succeeds regardless)
    own_redis.stop()
    with services.database.session() as s:
        assert runs.start_stage(s, job.id, "extraction") is not None
    assert relay.run_once().published == 0  # still down: the relay keeps it too
    assert unpublished(app) == ["job.created", "job.stage_started"]

    # And Redis is back before the stage completes: its events cannot overtake the start
    own_redis.start()
    with services.database.session() as s:
        assert runs.complete_stage(s, job.id, "extraction", {"text": "t"})
    assert steps(history(services.redis, stream)[job.id]) == [("job.created",)]

    # When the relay passes
    done = relay.run_once()

    # Then the stream holds the job's whole lifecycle, in order, each event once
    assert done.published == 3
    assert unpublished(app) == []
    events = history(services.redis, stream)[job.id]
    assert steps(events) == successful_steps(["extraction"])
    assert services.redis.xlen(stream) == 4


def test_the_relay_appends_what_was_committed_during_an_outage_in_commit_order(make_app, own_redis):
    # Given Redis down while three jobs are created and two of them cancelled
    app = make_app(redis_url=own_redis.url(), dispatch_grace=0.0)
    services = get_services(app)
    own_redis.stop()
    with services.database.session() as s:
        created = [make_job(s) for _ in range(3)]
        for job in created[:2]:
            jobs.cancel_job(s, job.id)
    assert len(unpublished(app)) == 5

    # When Redis is back and the relay makes a pass
    own_redis.start()
    done = Relay.from_app(app).run_once()

    # Then all five are on the stream, each job's in commit order
    assert done.published == 5
    assert unpublished(app) == []
    by_job = history(services.redis, services.settings.events_stream)
    assert [steps(by_job[j.id]) for j in created] == [
        [("job.created",), ("job.cancelled",)],
        [("job.created",), ("job.cancelled",)],
        [("job.created",)],
    ]


def test_the_relay_leaves_young_events_to_the_process_that_committed_them(make_app, own_redis):
    # Given an event committed while Redis was down, and a relay whose grace is a minute
    app = make_app(redis_url=own_redis.url(), dispatch_grace=60.0)
    services = get_services(app)
    own_redis.stop()
    with services.database.session() as s:
        make_job(s)
    own_redis.start()

    # When the relay passes
    done = Relay.from_app(app).run_once()

    # Then it leaves the event alone for now
    assert done.published == 0
    assert unpublished(app) == ["job.created"]
    assert services.redis.xlen(services.settings.events_stream) == 0


def test_a_relay_racing_the_publishers_never_duplicates_or_reorders_an_event(app, services, worker):
    # Given a relay making a pass every 10 ms, with no grace, while twenty jobs run and
    # publish their own events
    relay = Relay.from_app(app)
    relay.interval = 0.01
    relay.dispatch_grace = 0.0
    with running_in_thread(relay, join_timeout=5):
        ids = []
        for _ in range(20):
            with services.database.session() as s:
                ids.append(make_job(s).id)
            get_services(app).pipeline.dispatch(ids[-1])  # unless the relay claimed it first
        stream = services.settings.events_stream

        def all_terminal() -> bool:
            by_job = history(services.redis, stream)
            return all(
                any(e["event_type"] in TERMINAL_TYPES for e in by_job.get(job_id, []))
                for job_id in ids
            )

        wait_until(all_terminal, timeout=30)

    # Then every event is on the stream exactly once, each job's in lifecycle order
    entries = services.redis.xrange(stream)
    assert len(entries) == len({fields["event_id"] for _, fields in entries}) == 20 * 8
    by_job = history(services.redis, stream)
    for job_id in ids:
        assert steps(by_job[job_id]) == successful_steps(FULL_PIPELINE)


def test_published_rows_older_than_the_retention_are_purged_and_nothing_else(make_app):
    # Given two published rows (one old, one recent) and an old row never published
    app = make_app(outbox_retention=3600.0)
    services = get_services(app)
    with services.database.session() as s:
        old, recent, stuck = (make_job(s).id for _ in range(3))
        hours_ago = utcnow() - timedelta(hours=2)
        s.execute(
            update(OutboxEvent).where(OutboxEvent.job_id == old).values(published_at=hours_ago)
        )
        s.execute(
            update(OutboxEvent)
            .where(OutboxEvent.job_id == stuck)
            .values(published_at=None, created_at=hours_ago)
        )
        s.commit()

    # When the relay passes
    done = Relay.from_app(app).run_once()

    # Then only the old published row is gone
    assert done.purged == 1
    with services.database.session() as s:
        left = dict(
            s.execute(select(OutboxEvent.job_id, func.count()).group_by(OutboxEvent.job_id)).all()
        )
    assert left == {recent: 1, stuck: 1}
