"""Bounds every built-in provider keeps, whatever the document: its CPU time and output stay small.

A worker runs stages in threads that share the interpreter lock, so one stage that computes
for minutes stalls every job of that worker. The providers therefore read a bounded prefix
of their text, use only patterns that run in linear time, and keep a bounded number of
bounded findings.
"""

from __future__ import annotations

# Characters of text a provider reads. A longer text is processed up to this length and
# the stage result says so with "truncated": true.
MAX_TEXT_LENGTH = 1_000_000
# Findings kept per kind of entity (the first ones in the text), and the longest one kept.
MAX_ENTITIES = 50
MAX_ENTITY_LENGTH = 100
# Candidates a rule may propose before overlaps are settled: a text full of look-alikes
# (digits everywhere) costs no more than this many.
MAX_FINDINGS = 5_000
# Longest summary the enricher writes, in characters.
MAX_SUMMARY_LENGTH = 500
# Characters of redacted text the real enricher returns; a longer one is cut, and its result
# says so with "redacted_truncated": true.
MAX_REDACTED_LENGTH = 65_536


def bounded_text(text: str) -> tuple[str, bool]:
    """The first MAX_TEXT_LENGTH characters of `text`, and whether anything was cut."""
    if len(text) <= MAX_TEXT_LENGTH:
        return text, False
    return text[:MAX_TEXT_LENGTH], True


def utf8_size(text: str) -> int:
    """Bytes of `text` in UTF-8 (a lone surrogate counts three, as it would be stored)."""
    return len(text.encode("utf-8", "surrogatepass"))
