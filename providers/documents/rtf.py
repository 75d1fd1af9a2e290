"""RTF to text with striprtf."""

from __future__ import annotations

from striprtf.striprtf import rtf_to_text

from providers.base import DocumentError


def rtf_text(data: bytes) -> str:
    """The text of an RTF document (7-bit by design; stray 8-bit bytes read as Windows-1252)."""
    try:
        text = rtf_to_text(data.decode("cp1252", "replace"), errors="replace")  # type: ignore[no-untyped-call]
        return str(text)
    except MemoryError:
        raise  # the sandbox reports it, naming EXTRACTION_MEMORY_MB
    except Exception as exc:
        raise DocumentError(f"The RTF document cannot be read: {exc}") from None
