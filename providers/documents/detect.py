"""What a document is, told from its bytes (never from its name), and its text when it is text."""

from __future__ import annotations

import io
import re
import zipfile

import charset_normalizer

from providers.base import DocumentError
from providers.documents.mail import is_email

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
RTF = "application/rtf"
HTML = "text/html"
MARKDOWN = "text/markdown"
TEXT = "text/plain"
EMAIL = "message/rfc822"

# The short name of each supported type: what its size limit is named after.
KINDS = {
    PDF: "pdf", DOCX: "docx", RTF: "rtf", HTML: "html", MARKDOWN: "text", TEXT: "text",
    EMAIL: "text",
}  # fmt: skip

# Formats recognised only to be refused with their name.
_UNSUPPORTED = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"\x1f\x8b", "application/gzip"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage (a legacy Office file)"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"Rar!", "application/vnd.rar"),
)
_BOMS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
_HTML_START = re.compile(
    rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b", re.I | re.S
)
_HTML_TAGS = re.compile(r"<(?:p|div|span|a|table|br|h[1-6]|ul|li|script|style)\b[^>]*>", re.I)
_MARKDOWN = re.compile(
    r"^(?:#{1,6} \S|[-*+] \S|\d+\. \S|```|> \S)|\[[^\]\n]+\]\([^)\s]+\)|\*\*[^*\n]+\*\*", re.M
)
SNIFF_LENGTH = 4096  # bytes of a document looked at to tell HTML and Markdown from plain text


def sniff(data: bytes) -> str:
    """The media type of `data`: one of the supported ones, or DocumentError naming what it is."""
    if not data.strip():
        raise DocumentError("The document is empty.")
    if b"%PDF-" in data[:1024]:
        return PDF
    if data.startswith(b"PK\x03\x04"):
        if _is_docx(data):
            return DOCX
        raise DocumentError("Unsupported document type application/zip (not a DOCX).")
    if data.startswith(b"{\\rtf"):
        return RTF
    for magic, kind in _UNSUPPORTED:
        if data.startswith(magic):
            raise DocumentError(f"Unsupported document type {kind}.")
    head = decode_text(data[:SNIFF_LENGTH], partial=True)
    return EMAIL if is_email(data[:SNIFF_LENGTH]) else text_type(head)


def needs_parser(data: bytes) -> bool:
    """Whether `data` must go to the sandbox: anything but plain text, and text too large or
    too strange to read in the worker (the sandbox then says what it is)."""
    head = data[:SNIFF_LENGTH]
    if not head.strip() or b"%PDF-" in data[:1024] or head.startswith((b"PK\x03\x04", b"{\\rtf")):
        return True
    if any(head.startswith(magic) for magic, _ in _UNSUPPORTED) or b"\x00" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:  # another encoding: charset-normalizer, in the sandbox
        return not (exc.start >= len(head) - 3 and exc.reason == "unexpected end of data")
    return False


def _is_docx(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "word/document.xml" in archive.NameToInfo
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DocumentError(f"The document is a damaged ZIP archive: {exc}.") from None


def text_type(head: str) -> str:
    """HTML, Markdown or plain text, told from the start of a text."""
    if _HTML_START.match(head.encode("utf-8", "replace")) or len(_HTML_TAGS.findall(head)) >= 3:
        return HTML
    if len(_MARKDOWN.findall(head)) >= 2:
        return MARKDOWN
    return TEXT


def decode_text(data: bytes, *, partial: bool = False) -> str:
    """The text of `data`: UTF-8 or a byte order mark, else the encoding charset-normalizer
    finds. DocumentError for bytes that are no text. `partial`: `data` may end mid-character.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, "replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if partial and exc.start >= len(data) - 3 and exc.reason == "unexpected end of data":
            return data[: exc.start].decode("utf-8")
    if b"\x00" in data[:SNIFF_LENGTH]:
        raise DocumentError("Unsupported document type application/octet-stream (binary data).")
    best = charset_normalizer.from_bytes(data).best()
    if best is None:
        raise DocumentError("Unsupported document type application/octet-stream (not text).")
    return str(best)
