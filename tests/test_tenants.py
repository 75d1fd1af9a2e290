"""Ownership: a tenant sees, cancels and reads the text of its own jobs only; events name it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select, update

from events.consumer import Consumer, ConsumerOptions
from events.model import Event
from gateway import runs
from gateway.models import OUTBOX, OutboxEvent
from gateway.services import get_services
from tests.factories import job_payload
from tests.support import (
    api_key,
    job_events,
    keyed_settings,
    stream_entries,
    wait_for_job,
    wait_until,
)

UNKNOWN = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def keyed(make_app):
    return make_app(**keyed_settings())


@pytest.fixture
def acme(keyed):
    return api_key(keyed, "acme")


@pytest.fixture
def globex(keyed):
    return api_key(keyed, "globex")


def headers_but_rate_limits(response) -> dict[str, str]:
    return {k: v for k, v in response.headers if not k.startswith("RateLimit-")}


def create(app, headers, **overrides) -> dict[str, Any]:
    response = app.test_client().post("/api/jobs/", json=job_payload(**overrides), headers=headers)
    assert response.status_code == 201, response.json
    return response.json


@pytest.mark.parametrize(
    ("method", "route"),
    [
        ("get", "/api/jobs/{}/"),
        ("get", "/api/jobs/{}/text/"),
        ("get", "/api/jobs/{}/events/"),
        ("post", "/api/jobs/{}/cancel/"),
        ("post", "/api/jobs/{}/retry/"),
    ],
)
def test_another_tenants_job_answers_exactly_like_an_unknown_id(keyed, acme, globex, method, route):
    job = create(keyed, acme)
    client = keyed.test_client()

    foreign = getattr(client, method)(route.format(job["id"]), headers=globex)
    unknown = getattr(client, method)(route.format(UNKNOWN), headers=globex)

    assert foreign.status_code == unknown.status_code == 404
    assert foreign.get_data() == unknown.get_data()
    assert foreign.json["detail"] == "Not found."
    # Headers alike too, but the caller's own rate-limit count, which each request moves on
    assert headers_but_rate_limits(foreign) == headers_but_rate_limits(unknown)


def test_a_tenant_cannot_cancel_another_tenants_job_and_its_owner_still_can(keyed, acme, globex):
    job = create(keyed, acme)
    client = keyed.test_client()
    assert client.post(f"/api/jobs/{job['id']}/cancel/", headers=globex).status_code == 404
    assert client.get(f"/api/jobs/{job['id']}/", headers=acme).json["status"] == "pending"
    cancelled = client.post(f"/api/jobs/{job['id']}/cancel/", headers=acme)
    assert cancelled.status_code == 200 and cancelled.json["status"] == "cancelled"


def test_a_tenant_cannot_retry_another_tenants_failed_job_and_its_owner_can(
    keyed, acme, globex, services
):
    job = create(keyed, acme)
    with services.database.session() as session:
        runs.start_stage(session, job["id"], "extraction")
        runs.fail_stage(session, job["id"], "extraction", "FastExtractor failed")
    client = keyed.test_client()
    assert client.post(f"/api/jobs/{job['id']}/retry/", headers=globex).status_code == 404
    assert client.get(f"/api/jobs/{job['id']}/", headers=acme).json["status"] == "failed"
    retried = client.post(f"/api/jobs/{job['id']}/retry/", headers=acme)
    assert retried.status_code == 200 and retried.json["status"] == "processing"


def test_a_foreign_id_costs_the_same_statements_as_an_unknown_one(keyed, acme, globex):
    # The same prepared statements, run the same number of times: nothing but the rows
    # found (none in both cases) tells the two apart.
    job = create(keyed, acme)
    engine = get_services(keyed).database.engine
    client = keyed.test_client()

    def statements(job_id: str, route: str) -> list[str]:
        seen: list[str] = []

        def note(_conn, _cursor, statement, _params, _context, _many):
            seen.append(statement)

        sa_event.listen(engine, "before_cursor_execute", note)
        try:
            client.get(route.format(job_id), headers=globex)
        finally:
            sa_event.remove(engine, "before_cursor_execute", note)
        return seen

    for route in ("/api/jobs/{}/", "/api/jobs/{}/text/"):
        assert statements(job["id"], route) == statements(UNKNOWN, route)


def test_lists_show_each_tenant_its_own_jobs_only_whatever_the_filters(keyed, acme, globex):
    mine = [create(keyed, acme, document_type=t)["id"] for t in ("invoice", "letter", "invoice")]
    theirs = [create(keyed, globex, document_type=t)["id"] for t in ("invoice", "letter")]
    client = keyed.test_client()
    client.post(f"/api/jobs/{mine[1]}/cancel/", headers=acme)

    def listed(headers, query: str = "") -> list[str]:
        ids, cursor = [], None
        while True:
            page = client.get(
                f"/api/jobs/?limit=1{query}" + (f"&cursor={cursor}" if cursor else ""),
                headers=headers,
            ).json
            ids += [job["id"] for job in page["results"]]
            if not (cursor := page["next_cursor"]):
                return ids

    assert listed(acme) == mine[::-1]
    assert listed(globex) == theirs[::-1]
    assert listed(acme, "&document_type=invoice") == [mine[2], mine[0]]
    assert listed(acme, "&status=pending&status=cancelled") == mine[::-1]
    assert listed(acme, "&status=cancelled") == [mine[1]]
    assert listed(globex, "&status=cancelled") == []


def test_jobs_created_with_auth_off_belong_to_no_tenant(make_app, keyed, acme):
    off = make_app()  # the same database, authentication off
    job = create(off, {})
    assert keyed.test_client().get("/api/jobs/", headers=acme).json["results"] == []
    assert off.test_client().get(f"/api/jobs/{job['id']}/").status_code == 200
    assert keyed.test_client().get(f"/api/jobs/{job['id']}/", headers=acme).status_code == 404


def test_every_event_of_a_job_carries_its_tenant(keyed, acme, worker_for):
    worker_for(keyed)
    done = create(keyed, acme)
    cancelled = create(keyed, acme, pipeline_config={"stages": ["extraction"]})
    keyed.test_client().post(f"/api/jobs/{cancelled['id']}/cancel/", headers=acme)
    wait_for_job(keyed, done["id"], "completed")

    events = job_events(keyed, done["id"]) + job_events(keyed, cancelled["id"])
    assert {e.event_type for e in events} >= {"job.created", "job.stage_completed", "job.completed"}
    assert {e.tenant_id for e in events} == {"acme"}
    entries = stream_entries(get_services(keyed).redis, get_services(keyed).settings.events_stream)
    assert {fields["tenant_id"] for _, fields in entries} == {"acme"}


def test_the_relay_publishes_the_tenant_it_stored_with_the_event(keyed, acme, services):
    job = create(keyed, acme)
    stream = services.settings.events_stream
    # Given the stream lost the job's event and its row waits for the relay again
    services.redis.delete(stream, services.outbox.order_key(job["id"]))
    with services.database.session() as session, session.begin():
        session.execute(update(OUTBOX).values(published_at=None))
        stored = session.scalars(select(OutboxEvent.tenant_id)).all()
    assert stored == ["acme"]

    assert services.outbox.publish_pending(grace=0) == 1
    [(_, fields)] = stream_entries(services.redis, stream)
    assert Event.from_fields(fields).tenant_id == "acme"


def test_the_consumer_can_handle_one_tenants_events_only(keyed, acme, globex, services):
    mine = create(keyed, acme)["id"]
    create(keyed, globex)
    handled: list[Event] = []
    options = ConsumerOptions(
        stream=services.settings.events_stream,
        group="acme-only",
        consumer="c1",
        dead_letter_stream=services.settings.events_stream + ":dead",
        block_ms=50,
        tenant="acme",
    )
    consumer = Consumer(services.redis, options, handled.append)
    wait_until(lambda: consumer.poll() == 0 and handled)

    assert [(e.job_id, e.tenant_id) for e in handled] == [(mine, "acme")]
    pending = services.redis.xpending(options.stream, options.group)["pending"]
    assert pending == 0  # the other tenant's event was acknowledged, not left behind


def test_an_event_without_a_tenant_field_still_parses():
    fields = Event("job.created", UNKNOWN, {}).to_fields()
    assert fields["tenant_id"] == ""
    del fields["tenant_id"]
    assert Event.from_fields(fields).tenant_id is None


def test_a_tenant_follows_its_own_job_live_and_no_other(keyed, acme, globex):
    job = create(keyed, acme)
    client = keyed.test_client()
    client.post(f"/api/jobs/{job['id']}/cancel/", headers=acme)  # finished: the stream ends

    own = client.get(f"/api/jobs/{job['id']}/events/", headers=acme)
    assert own.status_code == 200 and own.mimetype == "text/event-stream"
    assert "event: snapshot" in own.get_data(as_text=True)
    assert client.get(f"/api/jobs/{job['id']}/events/", headers=globex).status_code == 404
    assert client.get(f"/api/jobs/{job['id']}/events/").status_code == 401
