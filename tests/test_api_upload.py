"""Uploads: a document as a multipart file part or as base64 JSON, stored with the job and
extracted by the real extractor; the JSON text contract unchanged."""

from __future__ import annotations

import base64
import io
import json

import pytest
from werkzeug.test import EnvironBuilder

from tests.factories import DOCUMENT, job_payload, make_docx, make_pdf
from tests.support import assert_problem, wait_for_job

EXTRACTION = {"stages": ["extraction"]}


@pytest.fixture
def real_app(make_app, worker_for):
    """The app with the real extractor (as `make run` has it), and a worker."""
    app = make_app(extractor_provider="default")
    worker_for(app)
    return app


def _form(content: bytes, filename: str, **fields):
    form = {
        "document_name": "Scan",
        "document_type": "letter",
        "pipeline_config": json.dumps(EXTRACTION),
        **fields,
    }
    form["file"] = (io.BytesIO(content), filename)
    return form


def test_a_docx_uploaded_as_a_file_part_is_stored_and_extracted(real_app):
    client = real_app.test_client()
    docx = make_docx(["Guten Tag, ich möchte mein Abonnement kündigen.", "Kundennummer K-448210."])

    created = client.post("/api/jobs/", data=_form(docx, "brief.docx"))

    assert created.status_code == 201, created.json
    assert created.json["pipeline_config"] == EXTRACTION
    job = wait_for_job(real_app, created.json["id"], "completed", timeout=60)
    result = job.runs[0].result
    assert result is not None
    assert (
        result["text"] == "Guten Tag, ich möchte mein Abonnement kündigen.\nKundennummer K-448210."
    )
    assert result["content_type"] == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )
    assert result["language"] == "de"
    assert result["stats"] == {"characters": 70, "words": 10, "sentences": 2, "lines": 2}


def test_a_pdf_sent_as_base64_json_and_a_text_named_pdf_are_each_read_as_what_they_are(real_app):
    client = real_app.test_client()
    pdf = make_pdf(["Invoice INV-2024-0042", "Total due: $1,188.00"])
    body = job_payload(
        document_content=None,
        document_base64=base64.b64encode(pdf).decode(),
        content_type="application/pdf",
    )
    del body["document_content"]
    pretender = _form(b"Just a plain note, whatever its name says.", "invoice.pdf")

    first = client.post("/api/jobs/", json=body)
    second = client.post("/api/jobs/", data=pretender)

    assert first.status_code == second.status_code == 201, (first.json, second.json)
    pdf_result = wait_for_job(real_app, first.json["id"], "completed", timeout=60).runs[0].result
    text_result = wait_for_job(real_app, second.json["id"], "completed", timeout=60).runs[0].result
    assert pdf_result is not None and text_result is not None
    assert (pdf_result["content_type"], pdf_result["pages"]) == ("application/pdf", 2)
    assert pdf_result["text"] == "Invoice INV-2024-0042\n\nTotal due: $1,188.00"
    assert text_result["content_type"] == "text/plain"


def test_the_json_text_contract_is_unchanged(real_app):
    created = real_app.test_client().post(
        "/api/jobs/", json=job_payload(pipeline_config=EXTRACTION)
    )

    result = wait_for_job(real_app, created.json["id"], "completed", timeout=60).runs[0].result

    assert result is not None
    assert (result["text"], result["language"]) == (DOCUMENT, "en")


def test_an_upload_gets_a_400_for_each_way_it_can_be_wrong(client):
    def post_json(**changes):
        body = job_payload(**changes)
        body.pop("document_content") if body["document_content"] is None else None
        return client.post("/api/jobs/", json=body)

    cases = [
        (post_json(document_content=None, document_base64="aGk="), "content_type", "Required with document_base64."),
        (post_json(document_base64="aGk=", content_type="text/plain"), "document_content", "Give one of document_content, document_base64 or file, not several."),
        (post_json(document_content=None, document_base64="not base64!", content_type="x/y"), "document_base64", "Not valid base64."),
        (post_json(content_type="text/plain"), "content_type", "Only with document_base64."),
        (post_json(document_content=None, file="aGk="), "file", "Not a file: send it as a part of a multipart/form-data body."),
        (client.post("/api/jobs/", data=_form(b"", "empty.txt")), "file", "The file is empty."),
        (client.post("/api/jobs/", data={"document_name": "n", "document_type": "t", "pipeline_config": json.dumps(EXTRACTION)}, content_type="multipart/form-data"), "document_content", "Missing data for required field."),
    ]  # fmt: skip
    for response, field, message in cases:
        body = assert_problem(response, 400)
        assert body["errors"][field] == [message], body

    broken = _form(b"hello", "a.txt", pipeline_config="{not json")
    body = assert_problem(client.post("/api/jobs/", data=broken), 400)
    assert body["errors"] == {"pipeline_config": ["Invalid JSON in this form field."]}
    assert_problem(client.post("/api/jobs/", data="hello", content_type="text/plain"), 415)
    assert client.get("/api/jobs/").json["results"] == []


def test_a_file_over_the_body_limit_gets_413(make_app):
    client = make_app(max_content_length=10_000).test_client()

    response = client.post("/api/jobs/", data=_form(bytes(20_000), "big.bin"))

    assert_problem(response, 413)


def test_the_openapi_document_shows_both_ways_to_upload(client):
    operation = client.get("/api/openapi.json").json["paths"]["/api/jobs/"]["post"]
    content = operation["requestBody"]["content"]

    assert set(content) == {"application/json", "multipart/form-data"}
    schemas = client.get("/api/openapi.json").json["components"]["schemas"]
    assert {"document_base64", "content_type"} <= set(schemas["JobCreate"]["properties"])
    assert schemas["JobUpload"]["properties"]["file"]["format"] == "binary"


def test_an_upload_retried_under_its_idempotency_key_replays_and_another_file_is_422(client):
    key = {"Idempotency-Key": "upload-1"}

    first = client.post("/api/jobs/", data=_form(b"first file", "a.txt"), headers=key)
    again = client.post("/api/jobs/", data=_form(b"first file", "a.txt"), headers=key)
    other = client.post("/api/jobs/", data=_form(b"another file", "a.txt"), headers=key)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json["id"] == first.json["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert_problem(other, 422)


def test_a_file_over_the_document_limit_gets_413_before_the_rest_of_it_is_read(make_app):
    app = make_app(max_document_bytes=10_000, max_content_length=10_000_000)
    client = app.test_client()
    read: list[int] = []

    class Body(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            chunk = super().read(size)
            read.append(len(chunk))
            return chunk

    builder = EnvironBuilder("/api/jobs/", method="POST", data=_form(bytes(1_000_000), "big.bin"))
    environ = builder.get_environ()
    with environ["wsgi.input"] as encoded:  # a temporary file for a body this size
        environ["wsgi.input"] = Body(encoded.read())
    builder.close()

    response = client.open(environ)

    body = assert_problem(response, 413)
    assert body["detail"] == "The document exceeds the limit of 10000 bytes (MAX_DOCUMENT_BYTES)."
    assert sum(read) < 200_000  # refused a little past the limit, not after the whole million
    assert client.get("/api/jobs/").json["results"] == []
    # A file within the limit is taken
    assert client.post("/api/jobs/", data=_form(b"x" * 10_000, "ok.txt")).status_code == 201
