"""Analyzers: extracted text in, entities and the document's intent out."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any

from providers.base import SimulatedProvider
from providers.limits import MAX_ENTITIES, MAX_ENTITY_LENGTH, bounded_text
from providers.registry import register

# Each pattern runs in time linear in the text: wherever a match attempt can scan far
# ahead, it can only start at the beginning of a run of the characters it scans (a
# lookbehind or \b sees to that), so no run is scanned once per character in it.
_PATTERNS = {
    # Without the lookbehind, a run of n word characters and no "@" takes n²/2 steps.
    "emails": re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
    "phone_numbers": re.compile(r"\+?\d[\d\s().-]{7,30}\d"),
    "identifiers": re.compile(r"\b([A-Z][A-Za-z]*(?:ID|Id|Number|No))[\s:#]*([A-Za-z0-9-]+)"),
    # The introduction in any case ("This is", "my name is"), the name capitalised.
    "people": re.compile(r"\b(?i:my name is|i am|i'm|this is)\s+([A-Z][a-z]+(?:\s[A-Z][a-z]+)?)"),
}

_INTENTS = (
    ("cancellation", ("cancel", "terminate", "unsubscribe", "close my account")),
    ("refund", ("refund", "money back", "chargeback")),
    ("complaint", ("complain", "unhappy", "disappointed", "terrible")),
    ("support", ("help", "problem", "issue", "error", "broken")),
    ("purchase", ("buy", "order", "purchase", "upgrade")),
)


def _found(kind: str, text: str) -> Iterator[tuple[str, ...]]:
    """The first MAX_ENTITIES matches of a pattern no longer than MAX_ENTITY_LENGTH, as groups."""
    matches = (m for m in _PATTERNS[kind].finditer(text) if len(m[0]) <= MAX_ENTITY_LENGTH)
    # Scanning stops once enough are found: a text full of matches costs no more.
    return (m.groups() or (m[0],) for m in itertools.islice(matches, MAX_ENTITIES))


@register("analysis", "default")
class DefaultAnalyzer(SimulatedProvider):
    """Finds people, emails, phone numbers and identifiers, and classifies the intent.

    Reads the first MAX_TEXT_LENGTH characters of the text (`"truncated": true` when there
    were more) and keeps the first MAX_ENTITIES findings of each kind, each at most
    MAX_ENTITY_LENGTH characters long.
    """

    latency = (0.1, 0.5)

    def compute(self, data: Any) -> dict[str, Any]:
        text, truncated = bounded_text(str(data.get("text", "") if isinstance(data, dict) else ""))
        lowered = text.lower()
        entities = {
            "people": [name for (name,) in _found("people", text)],
            "emails": [email for (email,) in _found("emails", text)],
            "phone_numbers": [number.strip() for (number,) in _found("phone_numbers", text)],
            "identifiers": [
                {"type": kind, "value": value} for kind, value in _found("identifiers", text)
            ],
        }
        intent = next(
            (name for name, words in _INTENTS if any(w in lowered for w in words)), "general"
        )
        result = {"entities": entities, "intent": intent, "word_count": len(text.split())}
        if truncated:
            result["truncated"] = True
        return result
