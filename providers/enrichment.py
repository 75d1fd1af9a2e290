"""Enrichers: entities in, metadata for routing and search out."""

from __future__ import annotations

from typing import Any

from providers.base import Deadline, LocalProvider, SimulatedProvider
from providers.limits import MAX_ENTITIES, MAX_REDACTED_LENGTH, MAX_SUMMARY_LENGTH, bounded_text
from providers.registry import register
from providers.rules.contacts import phone_number
from providers.rules.dates import iso_date
from providers.rules.digest import REDACTED, reading_time_seconds, redact, summary
from providers.rules.lexicon import LANGUAGES
from providers.rules.money import amount
from providers.rules.topics import words

_PRIORITY = {"cancellation": "high", "refund": "high", "complaint": "high", "support": "medium"}
_QUEUE = {
    "cancellation": "retention",
    "refund": "billing",
    "complaint": "customer-care",
    "support": "support",
    "purchase": "sales",
}


@register("enrichment", "simulated")
class SimulatedEnricher(SimulatedProvider):
    """A stand-in for the simulated analyzer's output: derives priority, routing, tags and a summary from the analysis.

    Looks at the first MAX_ENTITIES identifiers; the summary is cut to MAX_SUMMARY_LENGTH
    characters.
    """

    latency = (0.1, 0.5)

    def compute(self, data: Any) -> dict[str, Any]:
        analysis = data or {}
        found = analysis.get("entities") or {}
        # The default analyzer answers a list of typed entities and a category instead
        entities: dict[str, list[Any]] = found if isinstance(found, dict) else _grouped(found)
        intent = analysis.get("intent") or analysis.get("category") or "general"
        counts = {kind: len(found) for kind, found in entities.items()}
        people = entities.get("people", [])
        identifiers = entities.get("identifiers", [])[:MAX_ENTITIES]
        ids = [f"{i['type']} {i['value']}" for i in identifiers]
        tags = sorted({intent, *(kind for kind, n in counts.items() if n)})
        subject = people[0] if people else "A customer"
        summary = f"{subject} — {intent}" + (f" ({', '.join(ids)})" if ids else "")
        if len(summary) > MAX_SUMMARY_LENGTH:
            summary = summary[: MAX_SUMMARY_LENGTH - 1] + "…"
        return {
            "priority": _PRIORITY.get(intent, "low"),
            "routing_queue": _QUEUE.get(intent, "general"),
            "tags": tags,
            "entity_counts": counts,
            "summary": summary,
        }


def _grouped(entities: list[Any]) -> dict[str, list[Any]]:
    """The default analyzer's entities in the simulated analyzer's shape."""
    grouped: dict[str, list[Any]] = {}
    for entity in entities:
        if not isinstance(entity, dict):
            continue
        kind, text = str(entity.get("type", "")), entity.get("text")
        if kind == "PERSON":
            grouped.setdefault("people", []).append(text)
        elif kind == "IDENTIFIER":
            grouped.setdefault("identifiers", []).append({"type": kind, "value": text})
        else:
            grouped.setdefault(kind.lower(), []).append(text)
    return grouped


@register("enrichment", "default")
class RuleEnricher(LocalProvider):
    """Normalises what the analysis found, flags personal data, redacts and summarises.

    Reads the analysis result, and the document's `text` that the pipeline adds to it.
    Answers `normalized` values (phones in E.164 with their region, dates in ISO 8601,
    amounts as a decimal string with an ISO 4217 currency, IBANs compact), `pii` flags,
    `redacted_text` (e-mails, phones, IBANs and people replaced by `[EMAIL]`, `[PHONE]`,
    `[IBAN]`, `[PERSON]`; at most MAX_REDACTED_LENGTH characters), an extractive `summary`
    of the redacted text (at most MAX_SUMMARY_LENGTH characters), `word_count` and
    `reading_time_seconds`, and the analysis' `language` and `category`.
    """

    def compute(self, data: Any, deadline: Deadline) -> dict[str, Any]:
        analysis = data if isinstance(data, dict) else {}
        text, _ = bounded_text(str(analysis.get("text") or ""))
        language = analysis.get("language")
        language = language if language in LANGUAGES else "en"
        entities = [e for e in analysis.get("entities") or [] if _is_entity(e)]
        found = {e["type"] for e in entities}
        redacted = redact(text, entities)
        deadline.check()
        word_count = len(words(text))
        result: dict[str, Any] = {
            "language": language,
            "category": analysis.get("category", "other"),
            "normalized": normalized(entities, language),
            "pii": {kind.lower(): kind in found for kind in REDACTED}
            | {"any": bool(found & set(REDACTED))},
            "redacted_text": redacted[:MAX_REDACTED_LENGTH],
            "summary": summary(redacted, language, MAX_SUMMARY_LENGTH),
            "word_count": word_count,
            "reading_time_seconds": reading_time_seconds(word_count),
        }
        if len(redacted) > MAX_REDACTED_LENGTH:
            result["redacted_truncated"] = True
        return result


def normalized(entities: list[dict[str, Any]], language: str) -> dict[str, list[dict[str, Any]]]:
    """The machine-readable form of each phone, date, amount, IBAN and e-mail, by kind."""
    values: dict[str, list[dict[str, Any]]] = {
        "phones": [], "dates": [], "amounts": [], "ibans": [], "emails": []
    }  # fmt: skip
    for entity in entities[: 8 * MAX_ENTITIES]:
        kind, text = entity["type"], entity["text"]
        if kind == "PHONE" and (phone := phone_number(text, language)):
            values["phones"].append({"text": text, **phone})
        elif kind == "DATE" and (iso := iso_date(text, language)):
            values["dates"].append({"text": text, "iso": iso})
        elif kind == "MONEY" and (money := amount(text)):
            values["amounts"].append({"text": text, "value": money[0], "currency": money[1]})
        elif kind == "IBAN":
            compact = text.replace(" ", "").upper()
            values["ibans"].append({"text": text, "iban": compact, "country": compact[:2]})
        elif kind == "EMAIL":
            local, _, domain = text.rpartition("@")
            values["emails"].append({"text": text, "address": f"{local}@{domain.lower()}"})
    return values


def _is_entity(entity: Any) -> bool:
    """Whether `entity` has the analysis' entity shape (anything else is passed over)."""
    return (
        isinstance(entity, dict)
        and isinstance(entity.get("type"), str)
        and isinstance(entity.get("text"), str)
        and isinstance(entity.get("start"), int)
        and isinstance(entity.get("end"), int)
    )
