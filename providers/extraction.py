"""Extractors: raw document content in, normalised text and basic statistics out."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from providers.base import SimulatedProvider
from providers.registry import register


class _Extractor(SimulatedProvider):
    def compute(self, data: Any) -> dict[str, Any]:
        text = unicodedata.normalize("NFKC", str(data))
        text = re.sub(r"[ \t]+", " ", text).strip()
        words = re.findall(r"\w+", text)
        sentences = [s for s in re.split(r"[.!?]+", text) if s.strip()]
        return {
            "text": text,
            "stats": {
                "characters": len(text),
                "words": len(words),
                "sentences": len(sentences),
                "lines": text.count("\n") + 1 if text else 0,
            },
        }


@register("extraction", "fast")
class FastExtractor(_Extractor):
    """A low-latency extractor (~100 ms)."""

    latency = (0.08, 0.12)


@register("extraction", "slow")
class SlowExtractor(_Extractor):
    """A high-latency extractor (~2 s), e.g. an OCR service."""

    latency = (1.8, 2.2)
