"""`gateway probe relay|consumer`: the compose healthchecks of the processes without HTTP."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import insert, update

from events.consumer import Consumer, ConsumerOptions, log_event
from gateway.models import OUTBOX, utcnow
from tests.factories import make_committed_job


def options(settings):
    return ConsumerOptions(
        stream=settings.events_stream,
        group=settings.consumer_group,
        consumer=settings.consumer_name,
        dead_letter_stream=settings.dead_letter_stream,
        dead_letter_maxlen=settings.dead_letter_maxlen,
        claim_idle=settings.consumer_claim_idle,
        max_deliveries=settings.consumer_max_deliveries,
        block_ms=10,
        batch=10,
    )


def probe(app, *args):
    return app.test_cli_runner().invoke(args=["probe", *args])


def test_relay_is_unhealthy_while_an_event_waits_too_long_for_the_stream(app, services):
    job = make_committed_job(app)
    with services.database.session() as session, session.begin():
        session.execute(insert(OUTBOX).values(event_type="job.created", job_id=job.id, payload={}))
    assert probe(app, "relay").exit_code == 0  # just recorded: not overdue yet

    with services.database.session() as session, session.begin():
        session.execute(update(OUTBOX).values(created_at=utcnow() - timedelta(minutes=10)))
    late = probe(app, "relay")
    assert late.exit_code == 1
    assert "events older than" in late.output

    with services.database.session() as session, session.begin():
        session.execute(
            update(OUTBOX).where(OUTBOX.c.job_id == job.id).values(published_at=utcnow())
        )
    assert probe(app, "relay").exit_code == 0


def test_consumer_is_healthy_only_while_it_reads(app, services, settings):
    assert probe(app, "consumer").exit_code == 1  # no group yet

    consumer = Consumer(services.redis, options(settings), log_event)
    consumer.poll()  # nothing to read: still listed, seen just now
    healthy = probe(app, "consumer")
    assert healthy.exit_code == 0, healthy.output

    time.sleep(0.05)
    stale = probe(app, "consumer", "--max-idle", "0.01")
    assert stale.exit_code == 1
    assert settings.consumer_name in stale.output


def test_a_consumer_of_a_quiet_stream_stays_healthy(app, services, settings):
    # Given a consumer that polls a stream where nothing happens, for longer than the probe's
    # max idle (XINFO CONSUMERS' idle time, on Redis before 7.2, grew all along)
    consumer = Consumer(services.redis, replace(options(settings), claim_idle=0.2), log_event)
    consumer.poll()
    quiet_until = time.monotonic() + 2.5
    while time.monotonic() < quiet_until:
        consumer.poll()
        time.sleep(0.05)

    # Then the probe finds it alive
    healthy = probe(app, "consumer", "--max-idle", "2")
    assert healthy.exit_code == 0, healthy.output
