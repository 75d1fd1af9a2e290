"""Found spans of text, and how overlapping findings are settled."""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from typing import Any, NamedTuple

# Entity types, most trusted first: where two findings overlap, the earlier type wins (an
# IBAN's digits are no phone number, a date's digits no identifier).
TYPES = ("EMAIL", "URL", "IBAN", "DATE", "MONEY", "PHONE", "IDENTIFIER", "PERSON")
_RANK = {kind: rank for rank, kind in enumerate(TYPES)}


class Span(NamedTuple):
    """One finding: its type and its [start, end) offsets in the text; `label` names the kind
    of an identifier as the text does ("Kundennummer"); `rank` overrides its type's place in
    TYPES when a rule is more or less sure than its type's usual."""

    type: str
    start: int
    end: int
    label: str | None = None
    rank: float | None = None


def rank(kind: str, shift: float = 0.0) -> float:
    """The place of `kind` in TYPES, moved by `shift` (-0.5: just before it)."""
    return _RANK[kind] + shift


def resolve(spans: Iterable[Span]) -> list[Span]:
    """The spans that overlap no more trusted (then longer, then earlier) one, in text order."""
    kept: list[Span] = []  # in text order, never overlapping
    starts: list[int] = []

    def order(s: Span) -> tuple[float, int, int]:
        return (_RANK[s.type] if s.rank is None else s.rank, s.start - s.end, s.start)

    for span in sorted(spans, key=order):
        at = bisect.bisect_left(starts, span.start)
        clear_before = at == 0 or kept[at - 1].end <= span.start
        clear_after = at == len(kept) or span.end <= kept[at].start
        if span.end > span.start and clear_before and clear_after:
            kept.insert(at, span)
            starts.insert(at, span.start)
    return kept


def alternation(phrases: Iterable[str]) -> str:
    """A regex matching any of `phrases`, factored as a trie; spaces match any run of spaces.

    Python's regex engine tries the branches of an alternation one by one at every position;
    sharing the prefixes makes a list of a hundred words cost a few comparisons instead.
    """
    trie: dict[str, Any] = {}
    for phrase in phrases:
        node = trie
        for char in phrase:
            node = node.setdefault(char, {})
        node[""] = {}
    return _pattern(trie)


def _pattern(node: dict[str, Any]) -> str:
    """The regex of one trie node: its branches, optional when a phrase may end here."""
    ends = "" in node
    branches = [
        (r"\s+" if char == " " else re.escape(char)) + _pattern(child)
        for char, child in sorted(node.items())
        if char
    ]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if ends:
        return f"(?:{body})?" if len(branches) > 1 or len(branches[0]) > 1 else f"{body}?"
    return body
