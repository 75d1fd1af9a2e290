"""GET /api/jobs/: newest first, filters, and keyset pagination that never skips nor repeats."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from gateway import jobs
from gateway.models import Job, utcnow
from tests.factories import STATUSES, make_job, make_job_in


def make_jobs(session: Any, count: int, **fields: Any) -> list[str]:
    return [make_job(session, **fields).id for _ in range(count)]


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [job["id"] for job in response.get_json()["results"]]


def walk(client: Any, query: str, between_pages: Any = None) -> tuple[list[str], int]:
    """Follow next_cursor to the end; return the ids seen and the number of pages."""
    seen: list[str] = []
    pages = 0
    cursor = None
    while True:
        suffix = f"&cursor={cursor}" if cursor else ""
        body = client.get(f"/api/jobs/?{query}{suffix}").get_json()
        pages += 1
        seen += [job["id"] for job in body["results"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen, pages
        if between_pages is not None:
            between_pages()


def test_an_empty_list_has_no_next_cursor(client):
    assert client.get("/api/jobs/").get_json() == {"results": [], "next_cursor": None}


def test_jobs_are_listed_newest_first_with_their_full_representation(client, session):
    created = make_jobs(session, 3)
    response = client.get("/api/jobs")
    assert ids(response) == created[::-1]
    first = response.get_json()["results"][0]
    assert first == client.get(f"/api/jobs/{first['id']}/").get_json()


def test_the_default_page_holds_50_jobs(client, session):
    make_jobs(session, 51, stages=["extraction"])
    body = client.get("/api/jobs/").get_json()
    assert len(body["results"]) == 50 and body["next_cursor"] is not None


def test_limit_bounds_are_1_and_200(client, session):
    make_jobs(session, 3, stages=["extraction"])
    assert len(ids(client.get("/api/jobs/?limit=1"))) == 1
    assert len(ids(client.get("/api/jobs/?limit=200"))) == 3
    assert client.get("/api/jobs/?limit=0").status_code == 400
    assert client.get("/api/jobs/?limit=201").status_code == 400


def test_status_filter_is_repeatable(client, session):
    # Given one job in each status
    by_status = {}
    for status in STATUSES:
        by_status[status] = make_job_in(session, status, ["extraction"]).id
    # Then each status filter, alone or combined, returns exactly its jobs, newest first
    for status, job_id in by_status.items():
        assert ids(client.get(f"/api/jobs/?status={status}")) == [job_id]
    both = ids(client.get("/api/jobs/?status=failed&status=pending"))
    assert both == [by_status["failed"], by_status["pending"]]
    three = ids(client.get("/api/jobs/?status=completed&status=cancelled&status=processing"))
    assert set(three) == {by_status[s] for s in ("completed", "cancelled", "processing")}
    assert ids(client.get("/api/jobs/?status=failed&status=failed")) == [by_status["failed"]]


def test_document_type_filter_alone_and_with_status(client, session):
    invoices = [
        make_job_in(session, status, ["extraction"], document_type="invoice").id
        for status in ("completed", "pending")
    ]
    make_jobs(session, 2, stages=["extraction"], document_type="letter")
    assert ids(client.get("/api/jobs/?document_type=invoice")) == invoices[::-1]
    assert ids(client.get("/api/jobs/?document_type=invoice&status=completed")) == invoices[:1]
    both = ids(client.get("/api/jobs/?document_type=invoice&status=completed&status=pending"))
    assert both == invoices[::-1]
    assert ids(client.get("/api/jobs/?document_type=memo")) == []


@pytest.mark.parametrize(
    "query", ["", "status=pending", "status=pending&status=cancelled", "document_type=invoice"]
)
def test_pagination_visits_every_job_once_while_new_jobs_arrive(client, session, query):
    # Given 23 jobs, some cancelled
    existing = make_jobs(session, 23, stages=["extraction"], document_type="invoice")
    for job_id in existing[::4]:
        jobs.cancel_job(session, job_id)
    expected = [j for j in existing[::-1] if _matches(session, j, query)]
    # When the list is walked 5 at a time while 2 new jobs arrive between pages
    arrived: list[str] = []
    seen, pages = walk(
        client,
        f"limit=5&{query}",
        lambda: arrived.extend(make_jobs(session, 2, document_type="invoice")),
    )
    # Then every job that existed is seen exactly once, in order; newer ones are not mixed in
    assert seen == expected
    assert pages == max(1, math.ceil(len(expected) / 5))
    assert not set(seen) & set(arrived)


def _matches(session: Any, job_id: str, query: str) -> bool:
    job = session.get(Job, job_id)
    statuses = [part.split("=")[1] for part in query.split("&") if part.startswith("status=")]
    return not statuses or job.status in statuses


@pytest.mark.parametrize("query", ["", "status=pending", "status=pending&status=failed"])
def test_pagination_is_exact_when_many_jobs_share_a_creation_time(client, session, query):
    # Given 12 jobs created in the very same microsecond
    created = make_jobs(session, 12, stages=["extraction"])
    moment = utcnow() - timedelta(minutes=1)
    session.execute(update(Job).where(Job.id.in_(created)).values(created_at=moment))
    session.commit()
    # When they are walked 5 at a time
    seen, _ = walk(client, f"limit=5&{query}")
    # Then each comes exactly once, ties broken by id
    assert seen == sorted(created, reverse=True)


def test_a_cursor_from_one_filter_keeps_working_as_a_position(client, session):
    created = make_jobs(session, 6, stages=["extraction"])
    cursor = client.get("/api/jobs/?limit=2").get_json()["next_cursor"]
    assert ids(client.get(f"/api/jobs/?limit=10&cursor={cursor}")) == created[::-1][2:]


@pytest.mark.parametrize(
    "cursor", ["abc", "eyJ4IjoxfQ", "WyIyMDIwLTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwiYSJd", "%00"]
)
def test_a_cursor_the_service_did_not_issue_is_a_400(client, cursor):
    response = client.get(f"/api/jobs/?cursor={cursor}")
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert response.get_json(force=True)["errors"] == {"cursor": ["Invalid cursor."]}
