"""The relay loop: publishes and dispatches what was left behind, rides out outages, stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import make_url

from gateway import jobs
from gateway.db import Database
from gateway.models import Job
from gateway.relay import Relay
from gateway.services import get_services
from tests.factories import make_job
from tests.support import (
    PROJECT_DIR,
    TcpProxy,
    history,
    running_in_thread,
    settings_env,
    wait_until,
)


def messages(caplog: Any, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


def test_the_relay_rides_out_a_database_outage_without_spinning_and_logs_it_once(
    make_app, postgres_url, caplog
):
    # Given a relay whose database sits behind a proxy we can cut
    url = make_url(postgres_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    proxied = url.set(port=proxy.port).render_as_string(hide_password=False)
    app = make_app(database_url=proxied, relay_interval=0.1)
    services = get_services(app)
    relay = Relay.from_app(app)
    try:
        with running_in_thread(relay, join_timeout=5) as thread:
            # When the database goes away for a second
            proxy.cut()
            cut_at = proxy.connections
            time.sleep(1.0)

            # Then the relay keeps going, at its pace (a few attempts, not thousands)
            assert thread.is_alive()
            assert 2 <= proxy.connections - cut_at <= 25

            # And once the database is back, it publishes what was committed meanwhile
            proxy.restore()
            with Database(postgres_url).session() as s:  # a writer that does not publish itself
                job = make_job(s)
            stream = services.settings.events_stream
            wait_until(lambda: history(services.redis, stream).get(job.id), timeout=10)
    finally:
        proxy.close()

    # And the outage was logged once, its end once
    assert len(messages(caplog, "database unavailable")) == 1
    assert len(messages(caplog, "database available again")) == 1


def test_the_relay_rides_out_a_redis_outage_then_publishes_and_dispatches_what_waited(
    make_app, own_redis, caplog
):
    # Given a relay running against a Redis that goes down
    app = make_app(redis_url=own_redis.url(), relay_interval=0.05, dispatch_grace=0.0)
    services = get_services(app)
    with running_in_thread(Relay.from_app(app), join_timeout=5) as thread:
        own_redis.stop()

        # When jobs are created meanwhile (as the API does: commit, then a failed dispatch)
        with services.database.session() as s:
            created = [make_job(s).id for _ in range(3)]
        time.sleep(1.0)
        assert thread.is_alive()

        # Then, once Redis is back, their events are published and their chains dispatched
        own_redis.start()
        stream = services.settings.events_stream
        wait_until(lambda: len(history(services.redis, stream)) == 3, timeout=10)

        def dispatched() -> bool:
            with services.database.session() as s:
                query = select(Job.dispatched_at).where(Job.id.in_(created))
                return all(s.scalars(query))

        wait_until(dispatched, timeout=10)

    # And the outage was logged once (events and broker share it), however many passes failed
    assert len(messages(caplog, "Redis unavailable")) == 1
    assert len(messages(caplog, "Redis available again")) == 1
    assert not messages(caplog, "relay pass failed")


def test_gateway_relay_publishes_pending_events_and_stops_on_sigterm(settings, services, tmp_path):
    # Given an event committed by a process that died before publishing it
    with Database(settings.database_url).session() as s:
        job = make_job(s)
    with Database(settings.database_url).session() as s:
        jobs.cancel_job(s, job.id)
    assert history(services.redis, settings.events_stream) == {}

    # When `gateway relay` runs
    env = {**os.environ, **settings_env(settings.replace(log_level="INFO", relay_interval=0.1))}
    log_path: Path = tmp_path / "relay.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("gateway")), "relay"],
            cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:

        def appended() -> list[dict[str, Any]]:
            return history(services.redis, settings.events_stream).get(job.id, [])

        # Then the events are appended (once DISPATCH_GRACE has passed) in order, and
        # SIGTERM stops it with exit 0
        events = wait_until(lambda: len(appended()) == 2 and appended(), timeout=20)
        assert [e["event_type"] for e in events] == ["job.created", "job.cancelled"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    output = log_path.read_text()
    assert "SIGTERM received" in output and "relay stopped" in output
    assert "Traceback" not in output
