"""DOCX to text with the standard library: the body's paragraphs, read from its zipped XML as
it inflates, within the size and compression-ratio limits."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from typing import IO, Any

from providers.base import DocumentError
from providers.documents.limits import DocumentLimits, size

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_BODY = "word/document.xml"
_CHUNK = 64 * 1024


def docx_text(data: bytes, limits: DocumentLimits) -> str:
    """The text of the DOCX's main body, a line per paragraph (headers and footers left out).

    DocumentError when the XML inflates beyond MAX_INFLATED_BYTES or MAX_COMPRESSION_RATIO
    times its compressed size, declares a DTD, or is not well formed.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            info = archive.getinfo(_BODY)
            allowed = _allowed(info, limits)
            with archive.open(info) as member:
                return _paragraphs(member, allowed, limits)
    except (zipfile.BadZipFile, KeyError, EOFError, OSError, zipfile.LargeZipFile) as exc:
        raise DocumentError(f"The DOCX document is damaged: {exc}.") from None
    except ET.ParseError as exc:
        raise DocumentError(f"The DOCX document's XML is not well formed: {exc}.") from None


def _allowed(info: zipfile.ZipInfo, limits: DocumentLimits) -> int:
    """Bytes the member may inflate to; refused at once if it says it inflates to more."""
    allowed = min(
        limits.max_inflated_bytes, limits.max_compression_ratio * max(info.compress_size, 1)
    )
    if info.file_size > allowed:
        raise _too_large(info.file_size, info.compress_size, limits)
    return allowed


def _too_large(inflated: int, compressed: int, limits: DocumentLimits) -> DocumentError:
    return DocumentError(
        f"The DOCX document's XML inflates to at least {size(inflated)} from "
        f"{size(compressed)}: over MAX_INFLATED_BYTES="
        f"{size(limits.max_inflated_bytes)} or MAX_COMPRESSION_RATIO="
        f"{limits.max_compression_ratio}."
    )


def _paragraphs(member: IO[bytes], allowed: int, limits: DocumentLimits) -> str:
    parser: ET.XMLPullParser[Any] = ET.XMLPullParser(events=("end",))
    lines: list[str] = []
    current: list[str] = []
    inflated = 0
    tail = b""
    # The declared size may lie: the bytes actually inflated are counted as they come.
    while chunk := member.read(_CHUNK):
        inflated += len(chunk)
        if inflated > allowed:
            raise _too_large(inflated, allowed // limits.max_compression_ratio, limits)
        if b"<!DOCTYPE" in tail + chunk or b"<!ENTITY" in tail + chunk:
            raise DocumentError("The DOCX document's XML declares a DTD, which DOCX never does.")
        tail = chunk[-16:]
        parser.feed(chunk)
        events: Iterator[Any] = parser.read_events()  # ("end", element) only
        for _event, element in events:
            tag = element.tag
            if tag == _W + "t":
                current.append(element.text or "")
            elif tag == _W + "tab":
                current.append("\t")
            elif tag in (_W + "br", _W + "cr"):
                current.append("\n")
            elif tag == _W + "p":
                lines.append("".join(current))
                current = []
                element.clear()  # the paragraph's runs are read: free them
            elif tag in (_W + "tbl", _W + "body"):
                element.clear()
    parser.close()
    return "\n".join(lines)
