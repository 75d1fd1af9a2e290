"""Analyzers: extracted text in, entities and what the document is about out."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

from providers.base import Deadline, LocalProvider, SimulatedProvider
from providers.limits import MAX_ENTITIES, MAX_ENTITY_LENGTH, MAX_FINDINGS, bounded_text
from providers.registry import register
from providers.rules.contacts import find_emails, find_phones, find_urls
from providers.rules.dates import find_dates
from providers.rules.lexicon import LANGUAGES
from providers.rules.money import find_amounts
from providers.rules.people import find_people
from providers.rules.references import find_ibans, find_identifiers
from providers.rules.spans import Span, resolve
from providers.rules.topics import category, guess_language, keywords

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


@register("analysis", "simulated")
class SimulatedAnalyzer(SimulatedProvider):
    """A stand-in: finds people, emails, phone numbers and identifiers, classifies the intent.

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


@register("analysis", "default")
class RuleAnalyzer(LocalProvider):
    """Finds entities with offline rules for English, German, French and Spanish.

    Reads the extraction result's `text` and `language` (guessed from stop words when the
    extractor gives none). Answers `language`, `entities` (each `{"type", "text", "start",
    "end"}`, offsets into the text, identifiers with the `label` they were found after),
    `category` and `keywords`. Keeps the first MAX_ENTITIES of each type, each at most
    MAX_ENTITY_LENGTH characters, from the first MAX_TEXT_LENGTH characters of the text.
    """

    def compute(self, data: Any, deadline: Deadline) -> dict[str, Any]:
        source = data if isinstance(data, dict) else {}
        text, truncated = bounded_text(str(source.get("text") or ""))
        language = source.get("language")
        if language not in LANGUAGES:
            language = guess_language(text)
        spans: list[Span] = []
        for find in (
            find_emails,
            find_urls,
            find_ibans,
            lambda t: find_dates(t, language),
            lambda t: find_amounts(t, language),
            lambda t: find_phones(t, language),
            find_identifiers,
            find_people,
        ):
            spans.extend(itertools.islice(find(text), MAX_FINDINGS))
            deadline.check()
        found = list(_bounded(resolve(spans)))
        result: dict[str, Any] = {
            "language": language,
            "entities": [_entity(text, s) for s in found],
            "category": category(text),
            "keywords": keywords(_without(text, found), language),
        }
        if truncated:
            result["truncated"] = True
        return result


def _bounded(spans: list[Span]) -> Iterator[Span]:
    """The first MAX_ENTITIES spans of each type no longer than MAX_ENTITY_LENGTH."""
    kept: Counter[str] = Counter()
    for span in spans:
        if span.end - span.start <= MAX_ENTITY_LENGTH and kept[span.type] < MAX_ENTITIES:
            kept[span.type] += 1
            yield span


def _without(text: str, spans: list[Span]) -> str:
    """`text` with the spans blanked out: names and numbers make no keywords."""
    pieces, position = [], 0
    for span in spans:
        pieces += [text[position : span.start], " "]
        position = span.end
    return "".join(pieces) + text[position:]


def _entity(text: str, span: Span) -> dict[str, Any]:
    """A span as the analysis result shows it."""
    entity: dict[str, Any] = {
        "type": span.type,
        "text": text[span.start : span.end],
        "start": span.start,
        "end": span.end,
    }
    if span.label:
        entity["label"] = span.label
    return entity
