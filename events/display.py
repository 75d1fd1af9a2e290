"""Untrusted text made safe for a log line: no control characters reach a terminal."""

from __future__ import annotations

import json
import re
from typing import Any

# Everything str.isprintable() refuses except the space: C0 and C1 controls (ESC starts
# terminal escape sequences), line and paragraph separators, format characters (bidi
# overrides reorder what a reader sees), surrogates and unassigned code points.
_UNPRINTABLE = re.compile(r"[^ -~]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char.isprintable():
        return char
    code = ord(char)
    return (
        f"\\x{code:02x}"
        if code < 0x100
        else f"\\u{code:04x}"
        if code < 0x10000
        else f"\\U{code:08x}"
    )


def printable(text: str) -> str:
    """`text` with each non-printable character escaped as \\xhh, \\uhhhh or \\Uhhhhhhhh (ESC is \\x1b)."""
    return _UNPRINTABLE.sub(_escape, text)


def summarise(payload: dict[str, Any], width: int = 60) -> str:
    """The payload as `key=value` pairs on one line; objects show their keys, long values are cut.

    Values come from clients (a document name): non-printable characters are escaped, so
    that none reaches the terminal or splits the line.
    """
    parts = []
    for key in sorted(payload, key=str):
        value = payload[key]
        if isinstance(value, dict):
            text = "{" + ",".join(sorted(str(k)[:width] for k in value)) + "}"
        elif isinstance(value, list):
            text = ",".join(str(item)[:width] for item in value[:width])
        elif isinstance(value, str):
            text = value[: width + 1]
            if not text or any(c.isspace() for c in text):
                text = json.dumps(text, ensure_ascii=False)  # quotes spaces, escapes newlines
        else:
            text = str(value)
        if len(text) > width:
            text = text[: width - 1] + "…"
        parts.append(f"{printable(str(key)[:width])}={printable(text)}")
    return " ".join(parts)
