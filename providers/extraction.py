"""Extractors: raw document content in, normalised text and basic statistics out."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from providers.base import SimulatedProvider
from providers.limits import bounded_text, utf8_size
from providers.registry import register


def normalise(text: str) -> str:
    """NFKC-normalised `text`, never larger in UTF-8 than `text` itself.

    NFKC maps compatibility characters to their plain form (full-width letters, ligatures),
    but a few expand enormously: U+FDFA becomes 18 characters, 11 times its UTF-8 size. A
    character whose NFKC form is larger than itself is kept as it is, and the rest is
    normalised around it. Should the result still be larger (a combining mark can split a
    precomposed letter), the text is returned unnormalised. Linear in the length of `text`.
    """
    if unicodedata.is_normalized("NFKC", text):
        return text
    expanding = [c for c in set(text) if utf8_size(unicodedata.normalize("NFKC", c)) > utf8_size(c)]
    if expanding:
        keep = re.compile("([" + "".join(map(re.escape, expanding)) + "]+)")
        pieces = keep.split(text)  # odd indexes hold the runs of characters kept as they are
        normalised = "".join(
            piece if i % 2 else unicodedata.normalize("NFKC", piece)
            for i, piece in enumerate(pieces)
        )
    else:
        normalised = unicodedata.normalize("NFKC", text)
    return normalised if utf8_size(normalised) <= utf8_size(text) else text


class _Extractor(SimulatedProvider):
    """Normalises the first MAX_TEXT_LENGTH characters of the content (see `normalise`) and
    counts characters, words, sentences and lines; `"truncated": true` when the content was
    longer. The text out is never larger than the text read.
    """

    def compute(self, data: Any) -> dict[str, Any]:
        text, truncated = bounded_text(str(data))
        text = normalise(text)
        text = re.sub(r"[ \t]+", " ", text).strip()
        words = re.findall(r"\w+", text)
        sentences = [s for s in re.split(r"[.!?]+", text) if s.strip()]
        result: dict[str, Any] = {
            "text": text,
            "stats": {
                "characters": len(text),
                "words": len(words),
                "sentences": len(sentences),
                "lines": text.count("\n") + 1 if text else 0,
            },
        }
        if truncated:
            result["truncated"] = True
        return result


@register("extraction", "fast")
class FastExtractor(_Extractor):
    """A low-latency extractor (~100 ms)."""

    latency = (0.08, 0.12)


@register("extraction", "slow")
class SlowExtractor(_Extractor):
    """A high-latency extractor (~2 s), e.g. an OCR service."""

    latency = (1.8, 2.2)
