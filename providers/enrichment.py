"""Enrichers: entities in, metadata for routing and search out."""

from __future__ import annotations

from typing import Any

from providers.base import SimulatedProvider
from providers.limits import MAX_ENTITIES, MAX_SUMMARY_LENGTH
from providers.registry import register

_PRIORITY = {"cancellation": "high", "refund": "high", "complaint": "high", "support": "medium"}
_QUEUE = {
    "cancellation": "retention",
    "refund": "billing",
    "complaint": "customer-care",
    "support": "support",
    "purchase": "sales",
}


@register("enrichment", "default")
class DefaultEnricher(SimulatedProvider):
    """Derives priority, routing, tags and a summary from the analysis.

    Looks at the first MAX_ENTITIES identifiers; the summary is cut to MAX_SUMMARY_LENGTH
    characters.
    """

    latency = (0.1, 0.5)

    def compute(self, data: Any) -> dict[str, Any]:
        analysis = data or {}
        entities: dict[str, list[Any]] = analysis.get("entities", {})
        intent = analysis.get("intent", "general")
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
