"""Hostile documents fail their extraction quickly, with a clear error and no retry, in a
sandboxed child process, while other jobs keep completing. Each file is generated here, small
(kilobytes to a few megabytes) however much it inflates to."""

from __future__ import annotations

import base64
import os
import time

import pytest

from providers.base import DocumentError, ProviderError
from providers.documents.limits import MIB, DocumentLimits
from providers.documents.sandbox import parse_sandboxed
from tests.factories import docx_bomb, job_payload, make_docx, make_pdf, pdf_bomb
from tests.support import wait_for_job

LIMITS = DocumentLimits()
# Seconds a hostile file may take to fail on a loaded two-core machine (the child alone takes
# up to a second to start there).
QUICKLY = 15.0


def _fails(data: bytes, limits: DocumentLimits = LIMITS, match: str | None = None) -> str:
    began = time.monotonic()
    with pytest.raises(DocumentError, match=match) as failure:
        parse_sandboxed(data, limits, timeout=60)
    assert time.monotonic() - began < QUICKLY
    assert not isinstance(failure.value, ProviderError)  # final: never retried
    return str(failure.value)


def test_a_pdf_whose_stream_inflates_to_a_gigabyte_fails_on_the_compression_ratio():
    bomb = pdf_bomb(inflated_gib=1)
    assert len(bomb) < 10_000

    message = _fails(bomb, match="The PDF document inflates beyond its limit")

    assert "MAX_COMPRESSION_RATIO=100" in message


def test_a_docx_whose_xml_inflates_to_a_gigabyte_fails_at_once_or_when_its_size_lies():
    honest, liar = docx_bomb(inflated_gib=1), docx_bomb(inflated_gib=1, declared_size=50_000)
    assert len(honest) < 4 * MIB

    _fails(honest, match=r"The DOCX document's XML inflates to at least 1024 MiB")
    # A header that understates the size: no more than it says is ever inflated.
    _fails(liar, match="The DOCX document is damaged|not well formed")


def test_100000_nested_html_elements_are_read_in_linear_time():
    page = ("<div>" * 100_000 + "Deep inside." + "</div>" * 100_000).encode()

    began = time.monotonic()
    result = parse_sandboxed(page, LIMITS, timeout=60)

    assert result["text"] == "Deep inside."
    assert time.monotonic() - began < QUICKLY


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.7\n" + os.urandom(64_000),
        make_pdf(["A page that will be cut short."] * 3)[:700],
        b"PK\x03\x04" + os.urandom(64_000),
        make_docx(["A paragraph that will be cut short."] * 50)[:600],
        b"\x89PNG\r\n\x1a\n" + os.urandom(1000),
        os.urandom(64_000),
    ],
    ids=["pdf-random", "pdf-truncated", "zip-random", "docx-truncated", "png", "random"],
)
def test_truncated_or_random_bytes_after_a_valid_header_fail_cleanly(data):
    _fails(data)


def test_a_runaway_parser_is_stopped_by_the_sandbox_limits():
    # With the ratio and size limits lifted, the bomb runs into the child's own limits.
    lifted = DocumentLimits(
        max_compression_ratio=10**9, max_inflated_bytes=1 << 40, memory_bytes=300 * MIB
    )

    message = _fails(pdf_bomb(), lifted)

    assert "EXTRACTION_MEMORY_MB" in message or "EXTRACTION_CPU_SECONDS" in message
    _fails(make_pdf(["x"]), DocumentLimits(wall_seconds=0.05), match="longer than 0.05 s")


def test_hostile_uploads_fail_their_extraction_at_once_while_another_job_completes(
    make_app, worker_for
):
    # Given the real extractor with the ratio lifted, so that a bomb keeps a child busy until
    # its CPU or memory limit stops it, and a worker
    app = make_app(
        extractor_provider="default",
        max_compression_ratio=10**9,
        max_inflated_bytes=1 << 40,
        extraction_memory_mb=300,
        extraction_cpu_seconds=3,
    )
    worker_for(app)
    client = app.test_client()

    def upload(data: bytes) -> str:
        body = job_payload(document_base64=base64.b64encode(data).decode(), content_type="x/y")
        del body["document_content"]
        created = client.post("/api/jobs/", json=body)
        assert created.status_code == 201, created.json
        return str(created.json["id"])

    # When bombs are sent, then an ordinary document
    bombs = [upload(pdf_bomb()), upload(docx_bomb()), upload(b"%PDF-1.4\n" + os.urandom(9000))]
    ordinary = client.post("/api/jobs/", json=job_payload()).json["id"]

    # Then the ordinary job completes before the worst bomb's extraction is stopped
    done = wait_for_job(app, ordinary, "completed", timeout=60)
    failed = [wait_for_job(app, job_id, "failed", timeout=60) for job_id in bombs]
    assert done.updated_at < failed[0].updated_at
    # And each bomb failed its extraction on the first attempt, with a clear message
    for job in failed:
        run = job.runs[0]
        assert (job.error_stage, run.status, run.attempts, run.failures) == (
            "extraction",
            "failed",
            1,
            0,
        )
        assert job.error_message and not job.error_message.startswith("Internal error")
        assert [r.status for r in job.runs[1:]] == ["skipped", "skipped"]
    # (which limit stops a bomb first depends on how busy the machine is)
    assert "EXTRACTION_" in (failed[0].error_message or "")
    assert any(word in (failed[1].error_message or "") for word in ("DOCX", "EXTRACTION_"))
