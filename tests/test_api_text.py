"""A job's extracted text: inline up to INLINE_TEXT_LIMIT bytes, as the contract shows; above
it stored once, referenced from the job and its event, and served whole by its own route."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from gateway import runs
from gateway.config import DEFAULT_INLINE_TEXT_LIMIT
from gateway.models import OutboxEvent, StageText
from tests.factories import DOCUMENT, make_job
from tests.support import assert_problem

STATS = {"characters": 0, "words": 0, "sentences": 0, "lines": 0}
NOT_YET = "The job has no extracted text: its extraction has not completed."


def extracted(session: Any, text: str, limit: int = DEFAULT_INLINE_TEXT_LIMIT) -> str:
    """A job whose extraction completed with `text` (and analysis pending); its id."""
    job = make_job(session, ["extraction", "analysis"])
    runs.start_stage(session, job.id, "extraction")
    result = {"text": text, "stats": STATS}
    assert runs.complete_stage(session, job.id, "extraction", result, inline_text_limit=limit)
    return job.id


def stored_texts(session: Any, job_id: str) -> list[tuple[str, str]]:
    query = select(StageText.stage, StageText.text).where(StageText.job_id == job_id)
    return [tuple(row) for row in session.execute(query)]


def completed_payload(session: Any, job_id: str) -> dict[str, Any]:
    query = select(OutboxEvent.payload).where(
        OutboxEvent.job_id == job_id, OutboxEvent.event_type == "job.stage_completed"
    )
    (payload,) = session.scalars(query).all()
    return payload


def extraction_results(client: Any, job_id: str) -> dict[str, Any]:
    body = client.get(f"/api/jobs/{job_id}/").get_json()
    return body["results"]["stages"]["extraction"]["results"]


def test_a_small_text_stays_inline_in_the_job_and_its_event_as_before(client, session):
    job_id = extracted(session, DOCUMENT)

    assert extraction_results(client, job_id) == {"text": DOCUMENT, "stats": STATS}
    assert completed_payload(session, job_id) == {
        "stage": "extraction",
        "result": {"text": DOCUMENT, "stats": STATS},
    }
    assert stored_texts(session, job_id) == []


@pytest.mark.parametrize(
    ("text", "inline"),
    [
        ("abcdefghij", True),
        ("abcdefghijk", False),
        ("ééééé", True),  # 10 bytes of UTF-8
        ("éééééé", False),  # 6 characters, but 12 bytes
    ],
)
def test_the_limit_counts_bytes_of_utf8(client, session, text, inline):
    job_id = extracted(session, text, limit=10)

    results = extraction_results(client, job_id)

    assert ("text" in results) is inline and ("text_ref" in results) is not inline
    assert len(stored_texts(session, job_id)) == (0 if inline else 1)


def test_a_text_over_the_limit_is_stored_once_and_the_job_and_event_refer_to_it(client, session):
    # Given an extraction whose text is over the limit
    text = "Ünïcode text. " * 1_000
    job_id = extracted(session, text, limit=1_000)

    # Then the job shows a reference, its length and a preview in place of the text
    reference = {
        "text_ref": f"/api/jobs/{job_id}/text/",
        "text_length": len(text),
        "text_preview": text[:200],
        "stats": STATS,
    }
    results = extraction_results(client, job_id)
    assert results == reference and list(results) == list(reference)
    # And the event carries the same small form
    assert completed_payload(session, job_id) == {"stage": "extraction", "result": reference}
    # And the text is stored once, apart
    assert stored_texts(session, job_id) == [("extraction", text)]
    # And its reference serves it whole, as UTF-8 text
    response = client.get(results["text_ref"])
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.get_data() == text.encode()


def test_the_text_route_serves_an_inline_text_too(client, session):
    job_id = extracted(session, DOCUMENT)

    response = client.get(f"/api/jobs/{job_id}/text/")

    assert response.status_code == 200 and response.get_data(as_text=True) == DOCUMENT


def test_the_next_stage_gets_the_whole_text_as_its_input(session):
    text = "x" * 5_000
    job_id = extracted(session, text, limit=100)

    assert runs.start_stage(session, job_id, "analysis") == {"text": text, "stats": STATS}


def test_a_duplicate_completion_stores_the_text_once(session):
    job_id = extracted(session, "first " * 100, limit=100)

    second = {"text": "second " * 100, "stats": STATS}
    assert not runs.complete_stage(session, job_id, "extraction", second, inline_text_limit=100)

    assert stored_texts(session, job_id) == [("extraction", "first " * 100)]


def test_the_text_is_404_until_the_extraction_completed(client, session):
    pending = make_job(session, ["extraction"])
    started = make_job(session, ["extraction"])
    runs.start_stage(session, started.id, "extraction")
    failed = make_job(session, ["extraction"])
    runs.start_stage(session, failed.id, "extraction")
    runs.fail_stage(session, failed.id, "extraction", "Provider timeout")

    for job in (pending, started, failed):
        assert_problem(client.get(f"/api/jobs/{job.id}/text/"), 404, NOT_YET)


@pytest.mark.parametrize("job_id", [str(uuid.uuid4()), "not-an-id", "%00"])
def test_the_text_of_an_unknown_job_is_404_not_found(client, job_id):
    assert_problem(client.get(f"/api/jobs/{job_id}/text/"), 404, "Not found.")


@pytest.mark.parametrize("suffix", ["/text/", "/text"])
def test_the_text_route_answers_with_and_without_trailing_slash_without_redirect(
    client, session, suffix
):
    job_id = extracted(session, DOCUMENT)

    response = client.get(f"/api/jobs/{job_id}{suffix}")

    assert response.status_code == 200 and "Location" not in response.headers


def test_the_openapi_document_describes_the_text_route_and_the_reference(client):
    spec = client.get("/api/openapi.json").get_json()

    route = spec["paths"]["/api/jobs/{job_id}/text/"]["get"]["responses"]
    assert route["200"]["content"] == {"text/plain": {"schema": {"type": "string"}}}
    assert "application/problem+json" in route["404"]["content"]
    schemas = spec["components"]["schemas"]
    extraction = schemas["PipelineStages"]["properties"]["extraction"]["$ref"].split("/")[-1]
    (results,) = schemas[extraction]["properties"]["results"]["allOf"]
    documented = schemas[results["$ref"].split("/")[-1]]["properties"]
    assert {"text", "text_ref", "text_length", "text_preview", "stats"} <= set(documented)
