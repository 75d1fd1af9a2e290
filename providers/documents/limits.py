"""The bounds a document must keep to be extracted; each is a setting (gateway.config)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

MIB = 1024 * 1024

# What each limit is called in error messages: the setting that changes it.
SETTING = {
    "max_document_bytes": "MAX_DOCUMENT_BYTES",
    "max_pdf_bytes": "MAX_PDF_BYTES",
    "max_docx_bytes": "MAX_DOCX_BYTES",
    "max_html_bytes": "MAX_HTML_BYTES",
    "max_rtf_bytes": "MAX_RTF_BYTES",
    "max_text_bytes": "MAX_TEXT_BYTES",
    "max_pages": "MAX_PDF_PAGES",
    "max_pages_processed": "MAX_PAGES_PROCESSED",
    "max_inflated_bytes": "MAX_INFLATED_BYTES",
    "max_compression_ratio": "MAX_COMPRESSION_RATIO",
    "cpu_seconds": "EXTRACTION_CPU_SECONDS",
    "memory_bytes": "EXTRACTION_MEMORY_MB",
    "wall_seconds": "EXTRACTION_WALL_SECONDS",
}


@dataclass(frozen=True)
class DocumentLimits:
    """Sizes, pages, decompression and the parser's CPU, memory and wall time.

    Every field's default is the documented default of its setting.
    """

    max_document_bytes: int = 10 * MIB  # any document, whatever its type
    max_pdf_bytes: int = 10 * MIB
    max_docx_bytes: int = 10 * MIB
    max_html_bytes: int = 5 * MIB
    max_rtf_bytes: int = 5 * MIB
    max_text_bytes: int = 10 * MIB  # plain text and Markdown
    max_pages: int = 2000  # a PDF with more pages is refused
    max_pages_processed: int = 200  # pages read; the text says "truncated" beyond
    # Bytes the compressed parts of a document (the XML of a DOCX, the streams of a PDF) may
    # inflate to, in all, and how many times its compressed size each may inflate to.
    max_inflated_bytes: int = 100 * MIB
    max_compression_ratio: int = 100
    cpu_seconds: int = 10
    memory_bytes: int = 768 * MIB
    wall_seconds: float = 20.0

    def max_bytes(self, kind: str) -> tuple[int, str]:
        """The size limit of a document of `kind` (pdf, docx, html, rtf, text) and its setting."""
        name = f"max_{kind}_bytes" if f"max_{kind}_bytes" in SETTING else "max_text_bytes"
        return getattr(self, name), SETTING[name]

    def as_dict(self) -> dict[str, Any]:
        """The limits as JSON values (what the sandboxed parser is given)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DocumentLimits:
        """The limits `as_dict` gave."""
        return cls(**values)


def size(n: float) -> str:
    """A byte count as people read it (12 MiB, 300 KiB, 17 bytes)."""
    for unit, scale in (("GiB", MIB * 1024), ("MiB", MIB), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.4g} {unit}"
    return f"{int(n)} bytes"
