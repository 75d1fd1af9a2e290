"""Untrusted text made safe for a log line: no control characters reach a terminal."""

from __future__ import annotations

import re

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
