"""A commit is the commit: nothing after it fails the request or stops the pipeline, and no
Redis call waits while a database transaction is open."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from gateway import jobs
from gateway.db import Database, upgrade_schema
from gateway.models import Job, OutboxEvent
from gateway.relay import Relay
from gateway.services import get_services
from tests.factories import DOCUMENT, FULL_PIPELINE, job_payload
from tests.support import (
    RedisServer,
    TcpProxy,
    free_port,
    history,
    load_job,
    steps,
    successful_steps,
    wait_for_job,
)


def test_a_post_to_a_redis_that_never_answers_is_quick_and_blocks_no_other_writer(
    make_app, tmp_path: Path
):
    # Given the embedded SQLite database (one writer at a time) and a Redis that accepts
    # connections but never answers
    url = f"sqlite:///{tmp_path / 'gateway.sqlite3'}"
    upgrade_schema(url)
    server = RedisServer()
    server.start()
    try:
        app = make_app(database_url=url, redis_url=server.url(), redis_timeout=1.0)
        server.freeze()
        client = app.test_client()

        # When a job is posted, and another writer commits while the post waits on Redis
        answers: list[Any] = []
        began = time.monotonic()
        post = threading.Thread(
            target=lambda: answers.append(client.post("/api/jobs/", json=job_payload()))
        )
        post.start()
        time.sleep(0.2)
        other = Database(url)
        written = time.monotonic()
        with other.session() as s:
            jobs.create_job(s, document_name="n", document_type="t", document_content=DOCUMENT,
                            stages=FULL_PIPELINE)  # fmt: skip
        writer_took = time.monotonic() - written
        post.join(10)
        post_took = time.monotonic() - began
        other.dispose()

        # Then the other writer never waited for Redis, and the post answered 201 after about
        # one Redis timeout, its job waiting pending for the relay
        assert writer_took < 0.5
        assert answers[0].status_code == 201
        assert post_took < 3.0
        job = load_job(app, answers[0].get_json()["id"])
        assert (job.status, job.dispatched_at) == ("pending", None)

        # And the next post does not wait for Redis again
        began = time.monotonic()
        assert client.post("/api/jobs/", json=job_payload()).status_code == 201
        assert time.monotonic() - began < 0.5
    finally:
        server.close()


def test_events_redis_refuses_after_the_commit_neither_fail_the_post_nor_stop_the_pipeline(
    make_app, worker_for
):
    # Given a stream key that holds a string, so that every append fails with WRONGTYPE
    app = make_app(dispatch_grace=0.0)
    services = get_services(app)
    stream = services.settings.events_stream
    services.redis.set(stream, "not a stream")
    worker_for(app)

    # When a job is posted
    response = app.test_client().post("/api/jobs/", json=job_payload())

    # Then the post succeeds and every stage still runs: each worker's commit stands
    assert response.status_code == 201
    job_id = response.get_json()["id"]
    wait_for_job(app, job_id, "completed")

    # And the events wait in the outbox until the relay can append them, in order
    services.redis.delete(stream)
    assert Relay.from_app(app).run_once().published == 8
    assert steps(history(services.redis, stream)[job_id]) == successful_steps(FULL_PIPELINE)


def test_a_database_error_after_the_commit_does_not_turn_a_stored_job_into_an_error(
    make_app, postgres_url
):
    # Given a broker that is down, and a database that goes away right after the job commits
    url = make_url(postgres_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    app = make_app(
        database_url=url.set(port=proxy.port).render_as_string(hide_password=False),
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
    )
    sessions = get_services(app).database.sessions

    def cut(_session: Any) -> None:
        proxy.cut()

    sa_event.listen(sessions, "after_commit", cut)
    try:
        # When a job is posted (its chain cannot be sent, and handing it back to the relay fails)
        response = app.test_client().post("/api/jobs/", json=job_payload())
    finally:
        sa_event.remove(sessions, "after_commit", cut)
        proxy.restore()

    # Then the client is told it was created, and it was created once
    assert response.status_code == 201
    direct = Database(postgres_url)
    with direct.session() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 1
        stored = s.get(Job, response.get_json()["id"])
        assert stored is not None and stored.status == "pending"
        assert s.scalar(select(func.count()).select_from(OutboxEvent)) == 1
    direct.dispose()
    proxy.close()
