"""The real analyzer on the labelled corpus (tests/data/corpus) keeps its measured quality."""

from __future__ import annotations

import json

from bench.corpus import CORPUS, FORMATS, load
from bench.quality import TEXT_FORMATS, evaluate
from providers.rules.spans import TYPES


def test_every_corpus_document_has_gold_labels_of_known_types():
    sidecars = sorted(CORPUS.glob("*.json"))
    assert len(sidecars) >= 30
    for sidecar in sidecars:
        labels = json.loads(sidecar.read_text("utf-8"))
        assert labels["language"] in ("en", "de", "fr", "es")
        assert labels["category"] in (
            "billing",
            "cancellation",
            "technical",
            "sales",
            "account",
            "other",
        )
        assert all(kind in TYPES for kind, _ in labels["entities"])
        documents = [p for p in CORPUS.glob(f"{sidecar.stem}.*") if p.suffix in FORMATS]
        assert len(documents) == 1, sidecar.name


def test_the_text_documents_of_the_corpus_score_an_entity_f1_of_at_least_0_9():
    documents = [d for d in load() if d.format in TEXT_FORMATS]

    report = evaluate(documents, "fast")

    assert report.overall.f1 >= 0.9
    assert all(report.scores[kind].f1 >= 0.8 for kind in TYPES), {
        kind: round(score.f1, 2) for kind, score in report.scores.items()
    }
    assert report.languages[True] / sum(report.languages.values()) >= 0.95
    assert report.categories[True] / sum(report.categories.values()) >= 0.8
