"""Small factories for request bodies and stored jobs, in any state, made through the service layer."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from typing import Any
from xml.sax.saxutils import escape

from flask import Flask
from sqlalchemy.orm import Session

from gateway import dispatch, jobs, runs
from gateway.jobs import JobSnapshot
from gateway.services import get_services

FULL_PIPELINE = ["extraction", "analysis", "enrichment"]
DOCUMENT = "Hi, my name is Gabriela, I want to cancel my subscription. SubscriptionID 2342"
# What each stage stores when a factory completes it: small, and shaped as the providers' output.
RESULTS: dict[str, dict[str, Any]] = {
    "extraction": {"text": DOCUMENT, "stats": {"characters": len(DOCUMENT), "words": 13}},
    "analysis": {"word_count": 13, "entities": {"emails": [], "identifiers": []}},
    "enrichment": {"summary": "A request to cancel a subscription."},
}
STATUSES = ("pending", "processing", "completed", "failed", "cancelled")


def job_payload(**overrides: Any) -> dict[str, Any]:
    """A valid POST /api/jobs/ body; keyword arguments replace fields."""
    body: dict[str, Any] = {
        "document_name": "My Document",
        "document_type": "important",
        "document_content": DOCUMENT,
        "pipeline_config": {"stages": list(FULL_PIPELINE)},
    }
    body.update(overrides)
    return body


def make_job(session: Session, stages: list[str] | None = None, **fields: Any) -> JobSnapshot:
    """A pending job stored through the service layer (with its `job.created` event), unsent.

    The API sends a new job's chain right after storing it; here the test chooses when, with
    `pipeline.dispatch`, as the relay does for a job whose chain the broker refused.
    """
    values: dict[str, Any] = {
        "document_name": "My Document",
        "document_type": "important",
        "document_content": DOCUMENT,
        "stages": list(stages or FULL_PIPELINE),
    }
    values.update(fields)
    job = jobs.create_job(session, **values)
    dispatch.release_dispatch(session, job.id)
    return jobs.get_job(session, job.id)


def make_committed_job(app: Flask, stages: list[str] | None = None) -> JobSnapshot:
    """`make_job` in a session of its own, committed: for tests where a worker reads the job."""
    with get_services(app).database.session() as session:
        return make_job(session, stages)


def make_job_in(
    session: Session,
    status: str,
    stages: list[str] | None = None,
    *,
    at: str | None = None,
    **fields: Any,
) -> JobSnapshot:
    """A job brought to `status` by the service layer's own steps, as the workers would.

    The stages before `at` (default: the first one) complete with `RESULTS`; then `at` is
    running (processing), fails for good (failed), or the job is cancelled while it runs
    (cancelled; without `at`, cancelled while pending). completed: every stage completed.
    `fields` go to `make_job`.
    """
    assert status in STATUSES, status
    job = make_job(session, stages, **fields)
    running = status in ("processing", "failed") or (status == "cancelled" and at is not None)
    if running or status == "completed":
        last = job.stages[-1] if status == "completed" else at or job.stages[0]
        for stage in job.stages[: job.stages.index(last) + 1]:
            assert runs.start_stage(session, job.id, stage) is not None, stage
            if stage != last or status == "completed":
                assert runs.complete_stage(session, job.id, stage, RESULTS[stage]), stage
    if status == "failed":
        assert runs.fail_stage(session, job.id, last, f"{last} failed: provider unavailable")
    if status == "cancelled":
        assert jobs.cancel_job(session, job.id).job.status == "cancelled"
    return jobs.get_job(session, job.id)


# Documents, built byte by byte: small real files of each format, and hostile ones.


def make_pdf(pages: list[str], *, filters: int = 1) -> bytes:
    """A valid PDF with a page of Helvetica text per item (a line per line of the item), its
    content streams compressed `filters` times with FlateDecode (0: not compressed)."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", "", FONT]
    kids = []
    for text in pages:
        lines = " T* ".join(
            "(" + line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") Tj"
            for line in text.split("\n")
        )
        objects.append(
            pdf_stream(f"BT /F1 12 Tf 14 TL 72 720 Td {lines} ET".encode("cp1252"), filters)
        )
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {len(objects)} 0 R "
            "/Resources << /Font << /F1 3 0 R >> >> >>"
        )
        kids.append(len(objects))
    objects[1] = (
        f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] /Count {len(kids)} >>"
    )
    return pdf_file(objects)


FONT = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"


def pdf_stream(content: bytes, filters: int = 1) -> str:
    """A PDF stream object holding `content`, compressed `filters` times (as latin-1 text)."""
    data = content
    for _ in range(filters):
        data = zlib.compress(data)
    names = " ".join(["/FlateDecode"] * filters)
    head = (
        f"<< /Filter [{names}] /Length {len(data)} >>" if filters else f"<< /Length {len(data)} >>"
    )
    return f"{head}\nstream\n" + data.decode("latin-1") + "\nendstream"


def pdf_file(objects: list[str]) -> bytes:
    """A PDF file of these objects (numbered from 1, the first the catalog), with its xref."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body.encode("latin-1") + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)


W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_DOCX_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.wordprocessingml.document.main+xml"/></Types>'
    ),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/officeDocument" Target="word/document.xml"/></Relationships>'
    ),
}


def docx_body(paragraphs: list[str]) -> str:
    """word/document.xml with one paragraph per item."""
    runs = "".join(
        f'<w:p><w:r><w:t xml:space="preserve">{escape(p)}</w:t></w:r></w:p>' for p in paragraphs
    )
    return f'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="{W_NS}"><w:body>{runs}</w:body></w:document>'


def make_docx(paragraphs: list[str], *, header: str | None = None) -> bytes:
    """A valid DOCX with these paragraphs (and a page header part, which is not body text)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, xml in _DOCX_PARTS.items():
            archive.writestr(name, xml)
        archive.writestr("word/document.xml", docx_body(paragraphs))
        if header is not None:
            archive.writestr(
                "word/header1.xml",
                f'<w:hdr xmlns:w="{W_NS}"><w:p><w:r><w:t>{escape(header)}</w:t></w:r></w:p></w:hdr>',
            )
    return buffer.getvalue()


def deflate_repeated(prefix: bytes, chunk: bytes, times: int, suffix: bytes) -> tuple[bytes, int]:
    """Raw deflate of prefix + chunk x times + suffix, and its inflated size, built in
    milliseconds: after a full flush the compressor starts afresh, so each chunk compresses to
    the same bytes, computed once. A bomb of gigabytes is a few hundred kilobytes of this."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail = compressor.compress(suffix) + compressor.flush()
    return head + block * times + tail, len(prefix) + len(chunk) * times + len(suffix)


def pdf_bomb(inflated_gib: int = 1) -> bytes:
    """A one-page PDF whose content stream, flate-compressed twice, inflates to gigabytes."""
    chunk = b"0 0 m " * ((1 << 20) // 6)
    deflated, _ = deflate_repeated(b"BT ", chunk, inflated_gib * 1024, b" ET")
    # zlib framing; the checksum is never reached: the reader gives up long before.
    once = b"\x78\xda" + deflated + b"\x00\x00\x00\x00"
    twice = zlib.compress(once, 9)
    stream = f"<< /Filter [/FlateDecode /FlateDecode] /Length {len(twice)} >>\nstream\n"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
        FONT,
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 5 0 R "
        "/Resources << /Font << /F1 3 0 R >> >> >>",
        stream + twice.decode("latin-1") + "\nendstream",
    ]
    return pdf_file(objects)


def docx_bomb(inflated_gib: int = 1, *, declared_size: int | None = None) -> bytes:
    """A DOCX whose word/document.xml (valid XML, one paragraph repeated) inflates to gigabytes.

    `declared_size` puts another uncompressed size in the archive's headers, as a liar would.
    """
    paragraph = b"<w:p><w:r><w:t>boom</w:t></w:r></w:p>"
    chunk = paragraph * ((1 << 20) // len(paragraph))
    prefix = f'<?xml version="1.0"?><w:document xmlns:w="{W_NS}"><w:body>'.encode()
    deflated, inflated = deflate_repeated(
        prefix, chunk, inflated_gib * 1024, b"</w:body></w:document>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, xml in _DOCX_PARTS.items():
            archive.writestr(name, xml)
    parts = buffer.getvalue()
    # Append the bomb by hand: zipfile would compress the gigabytes itself.
    central_start = parts.index(b"PK\x01\x02")
    local, central = parts[:central_start], parts[central_start : parts.index(b"PK\x05\x06")]
    member = b"word/document.xml"
    size = (inflated if declared_size is None else declared_size) & 0xFFFFFFFF
    header = struct.pack(
        "<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, 0, len(deflated), size, len(member), 0
    )  # fmt: skip
    entry = struct.pack(
        "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, 0, len(deflated), size, len(member),
        0, 0, 0, 0, 0, len(local),
    )  # fmt: skip
    body = local + header + member + deflated
    directory = central + entry + member
    count = directory.count(b"PK\x01\x02")
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(directory), len(body), 0)
    return body + directory + end
