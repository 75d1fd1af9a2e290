"""Providers under hostile documents: every stage finishes quickly and its output stays small."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.analysis import SimulatedAnalyzer
from providers.enrichment import SimulatedEnricher
from providers.extraction import FastExtractor, normalise
from providers.limits import (
    MAX_ENTITIES,
    MAX_ENTITY_LENGTH,
    MAX_SUMMARY_LENGTH,
    MAX_TEXT_LENGTH,
    utf8_size,
)

MEGABYTE = 1_000_000
# Each stage below takes well under 0.3 s on a 1 MB text on an idle machine; the bound
# leaves room for a loaded one, and a quadratic pattern (hours on 1 MB) still fails it.
SECONDS = 2.0


def timed(call: Any) -> tuple[Any, float]:
    began = time.perf_counter()
    result = call()
    return result, time.perf_counter() - began


def size(result: dict[str, Any]) -> int:
    return utf8_size(json.dumps(result, ensure_ascii=False))


def analysed(text: str) -> dict[str, Any]:
    return SimulatedAnalyzer(latency_scale=0).process({"text": text}, timeout=1)


@pytest.mark.parametrize("char", ["a", "A", "1", "_", " ", ".", "@", "\n", "é", "\ufdfa", "😀"])
def test_a_megabyte_of_one_character_goes_through_every_stage_quickly(char):
    document = char * MEGABYTE

    extraction, extraction_time = timed(
        lambda: FastExtractor(latency_scale=0).process(document, timeout=1)
    )
    analysis, analysis_time = timed(lambda: analysed(document))
    enrichment, enrichment_time = timed(
        lambda: SimulatedEnricher(latency_scale=0).process(analysis, timeout=1)
    )

    assert max(extraction_time, analysis_time, enrichment_time) < SECONDS
    assert size(extraction) <= utf8_size(document) + 200
    assert size(analysis) < 30_000 and size(enrichment) < 2 * MAX_SUMMARY_LENGTH + 500


def test_a_run_of_word_characters_no_longer_stalls_the_email_pattern():
    # 20,000 word characters and no "@" took 5.7 s (quadratic backtracking); 50,000 take 36 s
    text = "x" * 50_000 + " " + "y" * 50_000 + "@example"

    analysis, seconds = timed(lambda: analysed(text))

    assert seconds < SECONDS
    assert analysis["entities"]["emails"] == []


def test_emails_are_still_found_whole():
    text = "mail jo.park+news@mail.park.io, (ann@x.org) or bob@@y.com and me@here"
    assert analysed(text)["entities"]["emails"] == ["jo.park+news@mail.park.io", "ann@x.org"]


def test_normalisation_cannot_multiply_the_size_of_a_text():
    # U+FDFA is 3 bytes; NFKC makes it 18 characters (33 bytes). 30 KB of it became 930 KB.
    document = "\ufdfa" * 10_000

    extraction = FastExtractor(latency_scale=0).process(document, timeout=1)

    assert extraction["text"] == document
    assert size(extraction) < utf8_size(document) + 200


def test_compatibility_characters_that_do_not_grow_are_still_normalised():
    # full-width letters, ligatures and superscripts shrink; the vulgar fraction would grow
    text = "\uff21\uff22 \ufb01ne x\u00b2 \u00bd \ufdfa"
    assert normalise(text) == "AB fine x2 \u00bd \ufdfa"
    assert normalise("caf\u0065\u0301") == "caf\u00e9"


def test_a_text_over_the_limit_is_processed_up_to_it_and_marked_truncated():
    document = "word " * (MAX_TEXT_LENGTH // 5) + "cancel"

    extraction = FastExtractor(latency_scale=0).process(document, timeout=1)
    analysis = analysed(document)

    assert extraction["truncated"] is True and analysis["truncated"] is True
    assert extraction["stats"]["words"] == MAX_TEXT_LENGTH // 5
    assert analysis["intent"] == "general"  # "cancel" lay past the limit
    assert "truncated" not in FastExtractor(latency_scale=0).process("short", timeout=1)


def test_findings_are_capped_in_number_and_length():
    text = "write to a@b.cc or call +44 20 7946 0958 ok. " * 20_000 + "x" * 200 + "@long.com"

    entities = analysed(text)["entities"]

    assert entities["emails"] == ["a@b.cc"] * MAX_ENTITIES
    assert entities["phone_numbers"] == ["+44 20 7946 0958"] * MAX_ENTITIES


def test_the_enricher_keeps_its_summary_short():
    identifiers = [{"type": "OrderNo", "value": str(n)} for n in range(10_000)]
    analysis = {"entities": {"identifiers": identifiers}, "intent": "purchase"}

    enrichment = SimulatedEnricher(latency_scale=0).process(analysis, timeout=1)

    assert len(enrichment["summary"]) == MAX_SUMMARY_LENGTH
    assert enrichment["summary"].startswith("A customer — purchase (OrderNo 0, OrderNo 1")


@settings(max_examples=40)
@given(st.text(min_size=1, max_size=6))
def test_no_repeated_pattern_makes_a_stage_slow(unit):
    # A pattern that backtracks over a run once per character in it takes minutes on this
    document = unit * (100_000 // len(unit))

    _, extraction_time = timed(lambda: FastExtractor(latency_scale=0).process(document, timeout=1))
    _, analysis_time = timed(lambda: analysed(document))

    assert max(extraction_time, analysis_time) < SECONDS


# Surrogates included: the API refuses them, but a provider must not depend on that.
@given(st.text(st.characters(exclude_categories=[])))
def test_any_text_goes_through_every_stage_with_a_bounded_output(text):
    extraction = FastExtractor(latency_scale=0).process(text, timeout=1)
    analysis = analysed(text)
    SimulatedEnricher(latency_scale=0).process(analysis, timeout=1)

    assert utf8_size(extraction["text"]) <= utf8_size(text)
    for found in analysis["entities"].values():
        assert len(found) <= MAX_ENTITIES
        assert all(
            len(json.dumps(f, ensure_ascii=False)) <= 2 * MAX_ENTITY_LENGTH + 30 for f in found
        )
