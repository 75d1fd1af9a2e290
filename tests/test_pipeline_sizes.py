"""Large documents end to end on a live worker: jobs, pages and stream entries stay small, the text
is stored once and served whole, and the later stages still read all of it."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from gateway.models import OutboxEvent, StageRun, StageText
from gateway.services import get_services
from providers.limits import MAX_TEXT_LENGTH
from tests.factories import job_payload
from tests.support import settled_events, stream_entries, wait_for_job

KB = 1024
# Ten three-byte characters: 2 MB of them are fewer characters than the providers read
# (MAX_TEXT_LENGTH), so the whole document is processed. Already normalised: the extracted
# text is the document itself.
SENTENCE = "文書処理の試験です。"
TAIL = " Please cancel: write to ana@example.org, SubscriptionID 4711."


def large_document(megabytes: float = 2.0) -> str:
    """About `megabytes` MB of UTF-8 whose only email, intent and identifier are at its end."""
    document = SENTENCE * int(megabytes * 1_000_000 / len(SENTENCE.encode())) + TAIL
    assert len(document) < MAX_TEXT_LENGTH
    return document


def post_document(client: Any, document: str) -> str:
    response = client.post("/api/jobs/", json=job_payload(document_content=document))
    assert response.status_code == 201
    return response.get_json()["id"]


def entry_size(fields: dict[str, str]) -> int:
    return sum(len(key.encode()) + len(value.encode()) for key, value in fields.items())


def test_a_2mb_document_leaves_a_small_job_small_events_and_its_text_stored_once(
    app, client, session, worker
):
    # Given a 2 MB document whose email, intent and identifier come last
    document = large_document()
    assert len(document.encode()) > 2_000_000

    # When it goes through the whole pipeline
    job_id = post_document(client, document)
    wait_for_job(app, job_id, "completed", timeout=60)

    # Then the job reads as a few kilobytes, its extraction referring to the text
    response = client.get(f"/api/jobs/{job_id}/")
    assert len(response.get_data()) < 16 * KB
    stages = response.get_json()["results"]["stages"]
    extraction = stages["extraction"]["results"]
    assert list(extraction) == ["text_ref", "text_length", "text_preview", "stats"]
    assert extraction["text_ref"] == f"/api/jobs/{job_id}/text/"
    assert extraction["text_length"] == len(document) == extraction["stats"]["characters"]
    assert extraction["text_preview"] == document[:200]

    # And the reference serves the whole text, byte for byte
    text = client.get(extraction["text_ref"])
    assert text.status_code == 200 and text.mimetype == "text/plain"
    assert text.get_data() == document.encode()

    # And analysis and enrichment read all of it: what they found lies at its very end
    analysis = stages["analysis"]["results"]
    assert analysis["entities"]["emails"] == ["ana@example.org"]
    assert analysis["entities"]["identifiers"] == [{"type": "SubscriptionID", "value": "4711"}]
    assert analysis["intent"] == "cancellation" and "truncated" not in analysis
    enrichment = stages["enrichment"]["results"]
    assert enrichment["routing_queue"] == "retention"
    assert enrichment["summary"] == "A customer — cancellation (SubscriptionID 4711)"

    # And every stream entry of the job is small, the stage's one carrying the reference
    events = settled_events(app, job_id)
    services = get_services(app)
    entries = stream_entries(services.redis, services.settings.events_stream)
    assert len(entries) == len(events) == 8
    assert max(entry_size(fields) for _, fields in entries) < 16 * KB
    assert events[2].payload == {"stage": "extraction", "result": extraction}

    # And the text is stored once: its own row, not in the stage's result nor in the outbox
    assert list(session.scalars(select(StageText.text).where(StageText.job_id == job_id))) == [
        document
    ]
    results = session.scalars(select(StageRun.result).where(StageRun.job_id == job_id))
    payloads = session.scalars(select(OutboxEvent.payload).where(OutboxEvent.job_id == job_id))
    assert max(len(json.dumps(value)) for value in [*results, *payloads]) < 16 * KB


def test_a_page_of_large_jobs_stays_small(app, client, worker):
    # Given three 2 MB documents processed
    document = large_document()
    job_ids = [post_document(client, document) for _ in range(3)]
    for job_id in job_ids:
        wait_for_job(app, job_id, "completed", timeout=60)

    # When they are listed
    response = client.get("/api/jobs/")

    # Then the page holds them all in a few kilobytes
    assert [job["id"] for job in response.get_json()["results"]] == job_ids[::-1]
    assert len(response.get_data()) < 64 * KB


def test_an_expanding_document_is_extracted_to_a_text_no_larger_than_itself(app, client, worker):
    # Given a document of a character that NFKC turns into 18 (U+FDFA, 3 bytes -> 33)
    document = "\ufdfa" * 100_000
    response = client.post(
        "/api/jobs/",
        json=job_payload(document_content=document, pipeline_config={"stages": ["extraction"]}),
    )
    job_id = response.get_json()["id"]

    # When it is extracted
    wait_for_job(app, job_id, "completed", timeout=60)

    # Then the text is no longer than the document, and the job stays small
    job = client.get(f"/api/jobs/{job_id}/")
    assert len(job.get_data()) < 16 * KB
    extraction = job.get_json()["results"]["stages"]["extraction"]["results"]
    assert extraction["text_length"] <= len(document)
    text = client.get(extraction["text_ref"]).get_data()
    assert len(text) <= len(document.encode())
