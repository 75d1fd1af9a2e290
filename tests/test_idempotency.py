"""Idempotent create: a retry under the same Idempotency-Key replays the first answer and creates
nothing, across concurrent requests, API processes and restarts; another body is a 422, a
request still in its transaction a 409, and a key expires after IDEMPOTENCY_TTL."""

from __future__ import annotations

import http.client
import json
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select, update

from gateway import idempotency, jobs
from gateway.db import Database, upgrade_schema
from gateway.errors import IdempotencyInFlightError, IdempotencyMismatchError
from gateway.idempotency import IdempotentRequest
from gateway.models import IDEMPOTENCY_KEYS, Job, OutboxEvent, utcnow
from gateway.relay import Relay
from gateway.services import get_services
from tests.factories import DOCUMENT, job_payload
from tests.support import api_key, assert_problem, keyed_settings, queued_stages, served

KEY = {"Idempotency-Key": "order-4711"}


def job_count(app) -> int:
    with get_services(app).database.session() as session:
        return session.scalar(select(func.count()).select_from(Job)) or 0


def created_events(app) -> int:
    with get_services(app).database.session() as session:
        query = select(func.count()).where(OutboxEvent.event_type == "job.created")
        return session.scalar(query) or 0


def test_a_retry_with_the_same_key_and_body_replays_the_first_answer(app, client):
    first = client.post("/api/jobs/", json=job_payload(), headers=KEY)
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers

    # The same body, its keys in another order and spaced differently, is the same request
    body = json.dumps(dict(reversed(list(job_payload().items()))), indent=2)
    again = client.post("/api/jobs/", data=body, content_type="application/json", headers=KEY)

    assert again.status_code == 201
    assert again.json["id"] == first.json["id"]
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert job_count(app) == 1 and created_events(app) == 1
    assert queued_stages(get_services(app).redis) == 1  # one chain: its first stage's message


def test_the_same_key_with_another_body_is_422_and_stores_nothing(app, client):
    first = client.post("/api/jobs/", json=job_payload(), headers=KEY)
    assert first.status_code == 201

    other = client.post("/api/jobs/", json=job_payload(document_name="Another"), headers=KEY)

    assert_problem(other, 422, IdempotencyMismatchError().detail)
    assert job_count(app) == 1 and queued_stages(get_services(app).redis) == 1


def test_requests_without_a_key_or_with_different_keys_each_create_a_job(app, client):
    ids = {
        client.post("/api/jobs/", json=job_payload(), headers=headers).json["id"]
        for headers in ({}, {}, {"Idempotency-Key": "a"}, {"Idempotency-Key": "b"})
    }
    assert len(ids) == 4 and job_count(app) == 4


def test_keys_are_scoped_to_their_tenant(make_app):
    keyed = make_app(**keyed_settings())
    acme, globex = api_key(keyed, "acme"), api_key(keyed, "globex")
    client = keyed.test_client()

    mine = client.post("/api/jobs/", json=job_payload(), headers={**acme, **KEY})
    # Another tenant's use of the same key is its own: neither a replay nor a 422
    theirs = client.post(
        "/api/jobs/", json=job_payload(document_name="Theirs"), headers={**globex, **KEY}
    )
    assert mine.status_code == theirs.status_code == 201
    assert mine.json["id"] != theirs.json["id"]
    replay = client.post("/api/jobs/", json=job_payload(), headers={**acme, **KEY})
    assert replay.json["id"] == mine.json["id"]


def test_concurrent_identical_requests_to_two_api_processes_create_one_job_and_one_chain(
    make_app,
):
    # Given two API apps (as two gunicorn workers would be) on the same database and Redis
    apps = [make_app(), make_app()]
    answers: list[tuple[int, dict[str, str], dict[str, Any]]] = []
    lock = threading.Lock()
    body = json.dumps(job_payload())

    with served(apps[0]) as first_url, served(apps[1]) as second_url:
        urls = [first_url, second_url] * 4
        barrier = threading.Barrier(len(urls))

        def post(url: str) -> None:
            connection = http.client.HTTPConnection(urlsplit(url).netloc, timeout=30)
            connection.connect()
            barrier.wait()
            connection.request(
                "POST", "/api/jobs/", body, {"Content-Type": "application/json", **KEY}
            )
            response = connection.getresponse()
            answer = (response.status, dict(response.getheaders()), json.loads(response.read()))
            connection.close()
            with lock:
                answers.append(answer)

        # When eight identical requests under one key arrive at once
        threads = [threading.Thread(target=post, args=(url,)) for url in urls]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)

    # Then exactly one job and one chain exist; every answer is that job, or a 409 to retry
    assert len(answers) == len(urls)
    created = [body for status, _, body in answers if status == 201]
    in_flight = [(headers, body) for status, headers, body in answers if status == 409]
    assert len(created) + len(in_flight) == len(urls), [a[0] for a in answers]
    assert created and {job["id"] for job in created} == {created[0]["id"]}
    for headers, problem in in_flight:
        assert headers["Content-Type"] == "application/problem+json"
        assert headers["Retry-After"] == "1" and problem["status"] == 409
    assert job_count(apps[0]) == 1 and created_events(apps[0]) == 1
    assert queued_stages(get_services(apps[0]).redis) == 1


def test_a_request_while_another_under_the_key_is_in_its_transaction_gets_409(app, client):
    # Given another API process inside its transaction under the key (claimed, not committed)
    request = IdempotentRequest.of(KEY["Idempotency-Key"], {"any": "body"}, ttl=60)
    with get_services(app).database.session() as other:
        assert idempotency.claim(other, None, request) is None

        response = client.post("/api/jobs/", json=job_payload(), headers=KEY)

        assert_problem(response, 409, IdempotencyInFlightError().detail)
        assert response.headers["Retry-After"] == "1"
        other.rollback()  # the other request failed before it stored anything

    # Then the key is free: the retry creates the job
    retried = client.post("/api/jobs/", json=job_payload(), headers=KEY)
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried.headers
    assert job_count(app) == 1


def test_a_retry_after_a_restart_replays_the_job_the_first_process_created(make_app):
    before = make_app()
    first = before.test_client().post("/api/jobs/", json=job_payload(), headers=KEY)
    get_services(before).database.dispose()  # the process is gone

    after = make_app()  # a new process: nothing in memory, the database remembers
    again = after.test_client().post("/api/jobs/", json=job_payload(), headers=KEY)

    assert first.status_code == again.status_code == 201
    assert again.json["id"] == first.json["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert job_count(after) == 1


def test_a_key_expires_after_the_ttl_and_is_then_free_for_a_new_job(make_app):
    app = make_app(idempotency_ttl=90)
    client = app.test_client()
    first = client.post("/api/jobs/", json=job_payload(), headers=KEY)
    database = get_services(app).database
    with database.session() as session:
        stored = session.execute(select(IDEMPOTENCY_KEYS)).one()
    assert stored.expires_at - stored.created_at == timedelta(seconds=90)
    assert stored.job_id == first.json["id"] and stored.tenant_id == ""

    # When the TTL has passed (the clock moved on: the row's expiry is moved back)
    with database.session() as session, session.begin():
        session.execute(update(IDEMPOTENCY_KEYS).values(expires_at=utcnow() - timedelta(seconds=1)))

    # Then the key works as new, with any body; the first job stays
    other = client.post("/api/jobs/", json=job_payload(document_name="Later"), headers=KEY)
    assert other.status_code == 201 and other.json["id"] != first.json["id"]
    assert job_count(app) == 2
    with database.session() as session:
        assert session.execute(select(IDEMPOTENCY_KEYS.c.job_id)).scalars().all() == [
            other.json["id"]
        ]


def test_the_relay_purges_expired_keys_only(app, client):
    for key in ("old", "new"):
        client.post("/api/jobs/", json=job_payload(), headers={"Idempotency-Key": key})
    database = get_services(app).database
    with database.session() as session, session.begin():
        session.execute(
            update(IDEMPOTENCY_KEYS)
            .where(IDEMPOTENCY_KEYS.c.key == "old")
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )

    Relay.from_app(app).run_once()

    with database.session() as session:
        assert session.execute(select(IDEMPOTENCY_KEYS.c.key)).scalars().all() == ["new"]
    assert job_count(app) == 2  # the jobs stay


@pytest.mark.parametrize("key", ["", "é", "x" * 256, "tab\there"])
def test_an_invalid_key_is_400_naming_the_header(client, key):
    response = client.post("/api/jobs/", json=job_payload(), headers={"Idempotency-Key": key})
    body = assert_problem(response, 400, "A request header is invalid.")
    assert list(body["errors"]) == ["headers.Idempotency-Key"]


def test_the_openapi_document_shows_the_header_and_its_answers(client):
    operation = client.get("/api/openapi.json").json["paths"]["/api/jobs/"]["post"]
    [header] = [p for p in operation["parameters"] if p["in"] == "header"]
    assert header["name"] == "Idempotency-Key" and not header.get("required")
    assert {"201", "409", "422"} <= set(operation["responses"])
    assert "Idempotent-Replayed" in operation["responses"]["201"]["headers"]


def test_on_sqlite_the_loser_of_a_race_answers_with_the_winners_job(tmp_path: Path):
    # SQLite has no advisory locks: two requests may both find the key free. The primary key
    # refuses the second insert, and its request answers with the first one's job.
    url = f"sqlite:///{tmp_path / 'gateway.sqlite3'}"
    upgrade_schema(url)
    database = Database(url)
    request = IdempotentRequest.of("k", {"b": 1}, ttl=60)
    fields: dict[str, Any] = {
        "document_name": "n", "document_type": "t", "document_content": DOCUMENT,
        "stages": ["extraction"],
    }  # fmt: skip
    winner: list[jobs.Creation] = []

    def win_the_race(_conn, _cursor, statement, *_args):
        # The loser found the key free and is about to insert its job: the winner commits first
        if statement.startswith("INSERT INTO jobs") and not winner:
            winner.append(None)  # type: ignore[arg-type]
            with database.session() as session:
                winner[0] = jobs.create_job_once(session, request, **fields)

    sa_event.listen(database.engine, "before_cursor_execute", win_the_race)
    try:
        with database.session() as session:
            lost = jobs.create_job_once(session, request, **fields)
        with database.session() as session:
            stored = session.scalar(select(func.count()).select_from(Job))
    finally:
        sa_event.remove(database.engine, "before_cursor_execute", win_the_race)
        database.dispose()

    assert not winner[0].replayed
    assert lost.replayed and lost.job.id == winner[0].job.id
    assert stored == 1
