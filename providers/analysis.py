"""Analyzers: extracted text in, entities and the document's intent out."""

from __future__ import annotations

import re
from typing import Any

from providers.base import SimulatedProvider
from providers.registry import register

_PATTERNS = {
    "emails": re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
    "phone_numbers": re.compile(r"\+?\d[\d\s().-]{7,}\d"),
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


@register("analysis", "default")
class DefaultAnalyzer(SimulatedProvider):
    """Finds people, emails, phone numbers and identifiers, and classifies the intent."""

    latency = (0.1, 0.5)

    def compute(self, data: Any) -> dict[str, Any]:
        text = str((data or {}).get("text", ""))
        lowered = text.lower()
        entities = {
            "people": _PATTERNS["people"].findall(text),
            "emails": _PATTERNS["emails"].findall(text),
            "phone_numbers": [p.strip() for p in _PATTERNS["phone_numbers"].findall(text)],
            "identifiers": [
                {"type": kind, "value": value}
                for kind, value in _PATTERNS["identifiers"].findall(text)
            ],
        }
        intent = next(
            (name for name, words in _INTENTS if any(w in lowered for w in words)), "general"
        )
        return {"entities": entities, "intent": intent, "word_count": len(text.split())}
