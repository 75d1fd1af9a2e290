"""E-mail (RFC 5322, MIME) to text: its main headers, then its body, decoded."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage

import charset_normalizer

# Headers that start a message, and those shown in its text (the people, the date, the subject).
_HEADER = re.compile(
    rb"^(?:From|To|Cc|Subject|Date|Received|Return-Path|Message-ID|MIME-Version|Reply-To)"
    rb":[ \t]*\S",
    re.I | re.M,
)
_SHOWN = ("From", "To", "Cc", "Date", "Subject")


def is_email(head: bytes) -> bool:
    """Whether `head`, the start of a document, is the header block of an e-mail: it begins
    with a header, and at least two of its lines before the first empty one are known headers."""
    block = re.split(rb"\r?\n\r?\n", head, maxsplit=1)[0]
    return bool(_HEADER.match(block)) and len(_HEADER.findall(block)) >= 2


def mail_text(data: bytes) -> tuple[str, str | None]:
    """The text of an e-mail, and the HTML of its body when that is all it has.

    The shown headers come first, one per line, as written; then the plain-text body, its
    transfer encoding and charset decoded. Attachments are left out.
    """
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    lines = [f"{name}: {value}" for name, value in message.items() if name.title() in _SHOWN]
    part = message.get_body(preferencelist=("plain", "html"))
    body, html = "", None
    if part is not None:
        try:
            if part.get_param("charset") is None:  # read as ASCII, it would lose the rest
                raise LookupError("no charset declared")
            content = part.get_content()
        except (LookupError, ValueError):  # none, an unknown charset or a broken encoding
            payload = part.get_payload(decode=True)
            content = _undeclared(payload) if isinstance(payload, bytes) else ""
        if part.get_content_subtype() == "html":
            html = str(content)
        else:
            body = str(content)
    return "\n".join(lines) + "\n\n" + body, html


def _undeclared(payload: bytes) -> str:
    """A body in no known charset: UTF-8 if it is, else what charset-normalizer finds."""
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        best = charset_normalizer.from_bytes(payload).best()
        return str(best) if best is not None else payload.decode("utf-8", "replace")
