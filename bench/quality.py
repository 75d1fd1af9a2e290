"""Entity quality and stage times of the real providers on the labelled corpus.

Runs every document of tests/data/corpus (and its PDF and DOCX copies) through the
extraction, analysis and enrichment providers in this process, as a worker would, and
prints precision, recall and F1 per entity type and overall, the language and category
accuracy, and p50/p95 time per stage per format.

The corpus was written in batches: each was scored as it was, before the rules were made more
general where they failed on it (docs/quality.md keeps those first scores); the overall line
per batch shows where each stands now.

An entity counts as found when the analysis reports its type and its text (whitespace
runs made one space); each distinct (type, text) of a document counts once.

The extractor is EXTRACTOR (default: the `default` extractor when one is registered). The
text extractors `fast` and `slow` read text only: the formats they cannot read are skipped,
and said so, and the language is then the analyzer's own guess.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import providers
from bench.corpus import Document, load
from providers.rules.spans import TYPES

TEXT_FORMATS = ("txt", "eml", "md")
STAGES = ("extraction", "analysis", "enrichment")


@dataclass
class Score:
    """True positives, false positives and false negatives of one entity type."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass
class Report:
    """What a run over the corpus measured."""

    scores: dict[str, Score] = field(default_factory=lambda: defaultdict(Score))
    languages: Counter[bool] = field(default_factory=Counter)
    categories: Counter[bool] = field(default_factory=Counter)
    times: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    by_batch: dict[int, Score] = field(default_factory=lambda: defaultdict(Score))
    misses: list[str] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    language_source: str = "extraction"

    @property
    def overall(self) -> Score:
        total = Score()
        for score in self.scores.values():
            total.tp, total.fp, total.fn = (
                total.tp + score.tp,
                total.fp + score.fp,
                total.fn + score.fn,
            )
        return total


def squeeze(text: str) -> str:
    """`text` with each run of whitespace made one space."""
    return " ".join(text.split())


def evaluate(documents: list[Document], extractor: str) -> Report:
    """Run the documents through the providers and score what the analysis found."""
    stages = {
        # No simulated sleep: the times are those of the computation.
        "extraction": providers.create("extraction", extractor, latency_scale=0.0),
        "analysis": providers.create("analysis", "default"),
        "enrichment": providers.create("enrichment", "default"),
    }
    text_only = extractor in ("fast", "slow")
    report = Report()
    for document in documents:
        if text_only and document.format not in TEXT_FORMATS:
            report.skipped[document.format] += 1
            continue
        data: Any = document.content.decode("utf-8") if text_only else document.content
        results: dict[str, Any] = {}
        for stage in STAGES:
            began = time.perf_counter()
            results[stage] = stages[stage].process(data, timeout=60)
            report.times[(stage, document.format)].append(time.perf_counter() - began)
            data = results[stage]
            if stage == "analysis":  # the pipeline hands the enrichment the text as well
                data = {**data, "text": results["extraction"]["text"]}
        _score(report, document, results)
    return report


def _score(report: Report, document: Document, results: dict[str, Any]) -> None:
    language = results["extraction"].get("language")
    if language is None:
        report.language_source = "the analyzer's guess (the extractor gives none)"
        language = results["analysis"]["language"]
    report.languages[language == document.language] += 1
    category = results["analysis"]["category"]
    report.categories[category == document.category] += 1
    if category != document.category:
        report.misses.append(f"  category {document.name}: {category}, not {document.category}")
    gold = {(kind, squeeze(text)) for kind, text in document.entities}
    found = {(e["type"], squeeze(e["text"])) for e in results["analysis"]["entities"]}
    for kind in TYPES:
        tp = len({g for g in gold if g[0] == kind} & found)
        fp = len({f for f in found if f[0] == kind} - gold)
        fn = len({g for g in gold if g[0] == kind} - found)
        for score in (report.scores[kind], report.by_batch[document.batch]):
            score.tp, score.fp, score.fn = score.tp + tp, score.fp + fp, score.fn + fn
    where = f"{document.name}.{document.format}"
    report.misses += [f"  missed  {where}: {k} {t!r}" for k, t in sorted(gold - found)]
    report.misses += [f"  extra   {where}: {k} {t!r}" for k, t in sorted(found - gold)]


def percentile(values: list[float], share: float) -> float:
    """The `share` quantile of `values` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def print_report(report: Report, extractor: str, verbose: bool) -> None:
    """The tables of a run, in Markdown."""
    documents = sum(report.languages.values())
    print(f"Quality on the labelled corpus: {documents} documents, extractor {extractor!r}")
    for fmt, count in sorted(report.skipped.items()):
        print(f"  skipped {count} {fmt} document(s): extractor {extractor!r} reads text only")
    print("\n| entity type | precision | recall | F1 | gold |\n|---|---|---|---|---|")
    for kind in TYPES:
        s = report.scores[kind]
        print(f"| {kind} | {s.precision:.2f} | {s.recall:.2f} | {s.f1:.2f} | {s.tp + s.fn} |")
    s = report.overall
    print(
        f"| **overall** | **{s.precision:.2f}** | **{s.recall:.2f}** | **{s.f1:.2f}** | {s.tp + s.fn} |"
    )
    for batch, s in sorted(report.by_batch.items()):
        row = f"{s.precision:.2f} | {s.recall:.2f} | {s.f1:.2f} | {s.tp + s.fn}"
        print(f"| overall, batch {batch} | {row} |")
    language = report.languages[True] / documents
    category = report.categories[True] / documents
    print(f"\nlanguage accuracy {language:.2f} (from {report.language_source}), "
          f"category accuracy {category:.2f}")  # fmt: skip
    print("\n| stage | format | p50 ms | p95 ms | documents |\n|---|---|---|---|---|")
    for (stage, fmt), times in sorted(
        report.times.items(), key=lambda i: (STAGES.index(i[0][0]), i[0][1])
    ):
        p50, p95 = percentile(times, 0.5) * 1000, percentile(times, 0.95) * 1000
        print(f"| {stage} | {fmt} | {p50:.1f} | {p95:.1f} | {len(times)} |")
    if verbose:
        print("\nDifferences from the gold labels:", *report.misses, sep="\n")


def main(argv: list[str] | None = None) -> int:
    """Score the corpus and print the tables."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    default = "default" if "default" in providers.available("extraction") else "fast"
    parser.add_argument("--extractor", default=default, help=f"extraction provider ({default})")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every difference")
    args = parser.parse_args(argv)
    report = evaluate(load(), args.extractor)
    print_report(report, args.extractor, args.verbose)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
