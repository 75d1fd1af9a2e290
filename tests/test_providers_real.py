"""The real analyzer and enricher: their result shapes, and their bounds on any text."""

from __future__ import annotations

import time
from typing import Any

import pytest

import providers
from providers import ProviderTimeoutError
from providers.analysis import RuleAnalyzer, SimulatedAnalyzer
from providers.enrichment import RuleEnricher, SimulatedEnricher
from providers.limits import MAX_ENTITIES, MAX_REDACTED_LENGTH, MAX_SUMMARY_LENGTH
from providers.rules.spans import TYPES

LETTER = """From: Anna Weber <anna.weber@beispiel.de>

Sehr geehrte Damen und Herren,

hiermit kündige ich meinen Vertrag (Kundennummer K-448210) zum 31. März 2024. Die letzte
Rechnung INV-2024-0042 über 1.249,90 EUR wurde von meinem Konto DE89 3704 0044 0532 0130 00
abgebucht. Sie erreichen mich unter Tel. 030 12345678.

Mit freundlichen Grüßen
Anna Weber
"""


def analyse(text: str, language: str | None = "de") -> dict[str, Any]:
    return RuleAnalyzer().process({"text": text, "language": language}, timeout=5)


def test_the_analysis_lists_typed_entities_with_offsets_a_category_and_keywords():
    result = analyse(LETTER)

    assert set(result) == {"language", "entities", "category", "keywords"}
    assert (result["language"], result["category"]) == ("de", "cancellation")
    assert [(e["type"], e["text"]) for e in result["entities"]] == [
        ("PERSON", "Anna Weber"),
        ("EMAIL", "anna.weber@beispiel.de"),
        ("IDENTIFIER", "K-448210"),
        ("DATE", "31. März 2024"),
        ("IDENTIFIER", "INV-2024-0042"),
        ("MONEY", "1.249,90 EUR"),
        ("IBAN", "DE89 3704 0044 0532 0130 00"),
        ("PHONE", "030 12345678"),
        ("PERSON", "Anna Weber"),
    ]
    for entity in result["entities"]:
        assert LETTER[entity["start"] : entity["end"]] == entity["text"]
        assert entity["type"] in TYPES
    assert result["entities"][2]["label"] == "Kundennummer"
    assert "kündige" in result["keywords"] and "weber" not in result["keywords"]


def test_the_seed_document_gives_the_customer_the_subscription_and_the_intent():
    text = "Hi, my name is Gabriela, I want to cancel my subscription. SubscriptionID 2342"
    result = analyse(text, None)

    assert result["language"] == "en"  # guessed: the extractor gave none
    assert result["entities"] == [
        {"type": "PERSON", "text": "Gabriela", "start": 15, "end": 23},
        {"type": "IDENTIFIER", "text": "2342", "start": 74, "end": 78, "label": "SubscriptionID"},
    ]
    assert result["category"] == "cancellation"


def test_the_enrichment_normalises_flags_redacts_and_summarises():
    analysis = analyse(LETTER)

    result = RuleEnricher().process({**analysis, "text": LETTER}, timeout=5)

    assert set(result) == {
        "language", "category", "normalized", "pii", "redacted_text", "summary", "word_count",
        "reading_time_seconds",
    }  # fmt: skip
    normalized = result["normalized"]
    assert normalized["phones"] == [
        {"text": "030 12345678", "e164": "+493012345678", "region": "DE", "valid": True}
    ]
    assert normalized["dates"] == [{"text": "31. März 2024", "iso": "2024-03-31"}]
    assert normalized["amounts"] == [
        {"text": "1.249,90 EUR", "value": "1249.90", "currency": "EUR"}
    ]
    assert normalized["ibans"] == [
        {"text": "DE89 3704 0044 0532 0130 00", "iban": "DE89370400440532013000", "country": "DE"}
    ]
    assert normalized["emails"] == [
        {"text": "anna.weber@beispiel.de", "address": "anna.weber@beispiel.de"}
    ]
    assert result["pii"] == {
        "email": True,
        "phone": True,
        "iban": True,
        "person": True,
        "any": True,
    }
    redacted = result["redacted_text"]
    assert redacted.startswith("From: [PERSON] <[EMAIL]>")
    assert "[IBAN]" in redacted and "Tel. [PHONE]" in redacted and redacted.endswith("[PERSON]\n")
    assert "Anna" not in redacted and "K-448210" in redacted
    assert "kündige" in result["summary"] and "Anna" not in result["summary"]
    assert result["word_count"] > 40 and result["reading_time_seconds"] >= 10


def test_the_enrichment_of_a_text_without_personal_data_flags_none():
    text = "The quarterly report is attached. Revenue grew in every region this year."
    result = RuleEnricher().process({**analyse(text, "en"), "text": text}, timeout=5)

    assert result["pii"] == {
        "email": False, "phone": False, "iban": False, "person": False, "any": False
    }  # fmt: skip
    assert result["redacted_text"] == text
    assert result["summary"] == text


def test_the_enrichment_skips_entities_of_another_shape_and_works_without_the_text():
    result = RuleEnricher().process(
        {
            "entities": [
                {"type": "EMAIL"},
                "x",
                {"type": "DATE", "text": "1 May 2024", "start": 0, "end": 10},
            ]
        },
        timeout=5,
    )
    assert result["normalized"]["dates"] == [{"text": "1 May 2024", "iso": "2024-05-01"}]
    assert (result["redacted_text"], result["summary"], result["word_count"]) == ("", "", 0)


def test_a_long_text_of_look_alikes_is_analysed_within_bounds():
    line = "Tel. 030 1234567, 1.249,90 EUR, 20.03.2024, K-448210, Herr Max Muster, a@b.de\n"
    text = line * 1_500  # 120 kB, a thousand and more findings of every type

    began = time.monotonic()
    result = RuleAnalyzer().process({"text": text, "language": "de"}, timeout=30)
    analysed = time.monotonic() - began
    enriched = RuleEnricher().process({**result, "text": text}, timeout=30)

    assert analysed < 20  # about 2 s alone; a loaded machine may take several times that
    counts = {t: sum(e["type"] == t for e in result["entities"]) for t in TYPES}
    assert max(counts.values()) == MAX_ENTITIES
    assert len(enriched["redacted_text"]) == MAX_REDACTED_LENGTH
    assert enriched["redacted_truncated"] is True
    assert len(enriched["summary"]) <= MAX_SUMMARY_LENGTH


@pytest.mark.parametrize(
    "text",
    [
        "a" * 200_000,
        "1" * 200_000,
        "Herr " * 40_000,
        "DE89 " * 40_000,
        "x@" * 100_000,
        "1." * 100_000,
        "Kundennummer " * 20_000,
        # A cue or label, then a long run of spaces: adjacent unbounded gaps cost n² here.
        "Kundennummer" + " " * 100_000 + "x",
        "Dear" + " " * 100_000 + "x",
        "Regards\n" + " " * 100_000 + "x",
        "*" * 100_000 + "x",
    ],
)
def test_hostile_runs_cost_linear_time(text):
    began = time.monotonic()
    RuleAnalyzer().process({"text": text, "language": "de"}, timeout=60)
    # At most about 2 s alone, 20 on a loaded machine; a quadratic pattern takes hours here.
    assert time.monotonic() - began < 20


def test_the_analysis_times_out_past_its_deadline():
    with pytest.raises(ProviderTimeoutError, match="Provider timeout"):
        RuleAnalyzer().process({"text": LETTER * 100}, timeout=0)


def test_default_is_the_rule_based_provider_and_simulated_the_stand_in():
    assert isinstance(providers.create("analysis", "default"), RuleAnalyzer)
    assert isinstance(providers.create("enrichment", "default"), RuleEnricher)
    assert isinstance(providers.create("analysis", "simulated"), SimulatedAnalyzer)
    assert isinstance(providers.create("enrichment", "simulated"), SimulatedEnricher)
    # The simulation knobs the gateway builds every provider with are accepted.
    assert isinstance(
        providers.create("analysis", "default", latency_scale=1.0, failure_rate=1.0), RuleAnalyzer
    )
