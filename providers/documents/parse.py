"""One document's bytes to its text, by its detected type: what the sandbox runs."""

from __future__ import annotations

from typing import Any

from providers.base import DocumentError
from providers.documents import detect
from providers.documents.limits import DocumentLimits, size


def parse(data: bytes, limits: DocumentLimits) -> dict[str, Any]:
    """`content_type` and `text` of the document, with `pages`, `pages_processed` and `title`
    where they apply; DocumentError when it is unsupported, over a limit, or damaged."""
    if len(data) > limits.max_document_bytes:
        raise DocumentError(
            f"The document is {size(len(data))}: more than MAX_DOCUMENT_BYTES="
            f"{size(limits.max_document_bytes)}."
        )
    content_type = detect.sniff(data)
    kind = detect.KINDS[content_type]
    maximum, setting = limits.max_bytes(kind)
    if len(data) > maximum:
        raise DocumentError(
            f"The {kind.upper()} document is {size(len(data))}: more than {setting}={size(maximum)}."
        )
    result: dict[str, Any] = {"content_type": content_type}
    # Each parser is imported when its format comes: the child starts faster without them.
    if content_type == detect.PDF:
        from providers.documents.pdf import pdf_text

        result["text"], result["pages"], processed = pdf_text(data, limits)
        if processed < result["pages"]:
            result["pages_processed"] = processed
    elif content_type == detect.DOCX:
        from providers.documents.docx import docx_text

        result["text"] = docx_text(data, limits)
    elif content_type == detect.RTF:
        from providers.documents.rtf import rtf_text

        result["text"] = rtf_text(data)
    elif content_type == detect.HTML:
        from providers.documents.html import html_text

        result["text"], title = html_text(detect.decode_text(data))
        if title:
            result["title"] = title
    elif content_type == detect.EMAIL:
        from providers.documents.html import html_text
        from providers.documents.mail import mail_text

        result["text"], html = mail_text(data)
        if html is not None:
            result["text"] += html_text(html)[0]
    else:
        result["text"] = detect.decode_text(data)
    return result
