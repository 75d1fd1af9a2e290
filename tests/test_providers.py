"""Providers: outputs derived from the input, the simulation knobs, the time limit, the registry."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

import providers
from gateway.errors import ConfigError
from gateway.services import get_services
from providers.analysis import SimulatedAnalyzer
from providers.base import ProviderError, ProviderTimeoutError
from providers.enrichment import SimulatedEnricher
from providers.extraction import FastExtractor, SlowExtractor
from providers.registry import register
from tests.factories import DOCUMENT, make_job
from tests.support import wait_for_job


@register("extraction", "shouting")
class ShoutingExtractor:
    """A provider written from scratch, as an integrator would: a class with `process`."""

    def __init__(self, **_options: Any) -> None:
        pass  # the simulation knobs (latency_scale, failure_rate) mean nothing to it

    def process(self, data: Any, *, timeout: float) -> dict[str, Any]:
        return {"text": str(data).upper(), "timeout": timeout}


def test_extractors_normalise_the_text_and_count_it():
    result = FastExtractor(latency_scale=0).process("  Hi,   you.\tSecond line?\nYes!  ", timeout=1)

    assert result == {
        "text": "Hi, you. Second line?\nYes!",
        "stats": {"characters": 26, "words": 5, "sentences": 3, "lines": 2},
    }
    assert SlowExtractor(latency_scale=0).process("a  b", timeout=1)["text"] == "a b"


def test_the_simulated_analyzer_finds_people_contacts_identifiers_and_intent():
    text = "I'm Jo Park. Refund please! Call +44 20 7946 0958 or jo@park.io, InvoiceNo: 88-1"

    result = SimulatedAnalyzer(latency_scale=0).process({"text": text}, timeout=1)

    assert result["entities"] == {
        "people": ["Jo Park"],
        "emails": ["jo@park.io"],
        "phone_numbers": ["+44 20 7946 0958"],
        "identifiers": [{"type": "InvoiceNo", "value": "88-1"}],
    }
    assert result["intent"] == "refund"
    assert result["word_count"] == len(text.split())


def test_the_simulated_analyzer_reads_the_seed_document():
    result = SimulatedAnalyzer(latency_scale=0).process({"text": DOCUMENT}, timeout=1)

    assert result["entities"]["people"] == ["Gabriela"]
    assert result["entities"]["identifiers"] == [{"type": "SubscriptionID", "value": "2342"}]
    assert result["intent"] == "cancellation"


def test_the_simulated_enricher_routes_by_intent_and_summarises_the_entities():
    analysis = SimulatedAnalyzer(latency_scale=0).process({"text": DOCUMENT}, timeout=1)

    result = SimulatedEnricher(latency_scale=0).process(analysis, timeout=1)

    assert result == {
        "priority": "high",
        "routing_queue": "retention",
        "tags": ["cancellation", "identifiers", "people"],
        "entity_counts": {"people": 1, "emails": 0, "phone_numbers": 0, "identifiers": 1},
        "summary": "Gabriela — cancellation (SubscriptionID 2342)",
    }
    plain = SimulatedEnricher(latency_scale=0).process(
        {"entities": {}, "intent": "general"}, timeout=1
    )
    assert (plain["priority"], plain["routing_queue"], plain["summary"]) == (
        "low",
        "general",
        "A customer — general",
    )


def test_the_simulated_enricher_also_reads_the_default_analyzers_output():
    analysis = providers.create("analysis", "default").process({"text": DOCUMENT}, timeout=5)

    result = SimulatedEnricher(latency_scale=0).process(analysis, timeout=1)

    assert result["routing_queue"] == "retention"
    assert result["entity_counts"]["people"] == 1
    assert result["summary"].startswith("Gabriela")


def test_latency_scale_multiplies_the_simulated_latency():
    began = time.monotonic()
    FastExtractor(latency_scale=1.0).process("x", timeout=5)
    normal = time.monotonic() - began

    began = time.monotonic()
    FastExtractor(latency_scale=0.0).process("x", timeout=5)
    instant = time.monotonic() - began

    assert 0.08 <= normal < 0.5
    assert instant < 0.01


def test_failure_rate_is_the_share_of_calls_that_fail():
    def failures(rate: float, calls: int = 400) -> int:
        provider = SimulatedAnalyzer(latency_scale=0.0, failure_rate=rate, rng=random.Random(7))
        failed = 0
        for _ in range(calls):
            try:
                provider.process({"text": "hi"}, timeout=1)
            except ProviderError as exc:
                assert str(exc) == "SimulatedAnalyzer failed: provider unavailable"
                failed += 1
        return failed

    assert failures(0.0) == 0
    assert failures(1.0) == 400
    assert 160 <= failures(0.5) <= 240


def test_a_call_slower_than_its_timeout_gives_up_at_the_timeout():
    provider = SlowExtractor(latency_scale=1.0)  # 1.8-2.2 s

    began = time.monotonic()
    with pytest.raises(ProviderTimeoutError, match="Provider timeout"):
        provider.process("x", timeout=0.2)

    assert 0.2 <= time.monotonic() - began < 0.5
    assert issubclass(ProviderTimeoutError, ProviderError)  # hence retried like a failure


def test_the_registry_names_the_choices_of_each_stage():
    assert {"fast", "slow"} <= set(providers.available("extraction"))
    assert {"default", "simulated"} <= set(providers.available("analysis"))
    assert {"default", "simulated"} <= set(providers.available("enrichment"))
    assert isinstance(providers.create("extraction", "slow"), SlowExtractor)
    with pytest.raises(KeyError, match=r"no analysis provider named 'gpt'; choices: .*default"):
        providers.create("analysis", "gpt")


def test_an_unknown_provider_name_stops_startup_naming_the_variable(make_app):
    with pytest.raises(ConfigError, match="EXTRACTOR_PROVIDER='ocr' is invalid: must be one of"):
        make_app(extractor_provider="ocr")
    with pytest.raises(ConfigError, match="ENRICHER_PROVIDER='fast' is invalid"):
        make_app(enricher_provider="fast")


def test_a_registered_provider_is_chosen_by_configuration_alone(make_app, worker_for):
    # Given a provider registered under a new name, chosen by EXTRACTOR_PROVIDER
    app = make_app(extractor_provider="shouting", stage_time_limit=7.0)
    worker_for(app)
    with get_services(app).database.session() as session:
        job = make_job(session, ["extraction", "analysis"])

    # When a job runs
    assert get_services(app).pipeline.dispatch(job.id)
    stored = wait_for_job(app, job.id, "completed")

    # Then its stage used the new provider, with the stage time limit, and the next stage its output
    extraction, analysis = (run.result for run in stored.runs)
    assert analysis is not None
    assert extraction == {"text": DOCUMENT.upper(), "timeout": 7.0}
    assert analysis["word_count"] == len(DOCUMENT.split())
    assert analysis["entities"]["identifiers"] == [{"type": "SUBSCRIPTIONID", "value": "2342"}]
