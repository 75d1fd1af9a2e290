"""What the enricher writes from a text: a redacted copy, an extractive summary, a reading time."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from providers.rules.topics import stop_words, words

# The entity types a redacted text hides, and what stands in their place.
REDACTED = {"EMAIL": "[EMAIL]", "PHONE": "[PHONE]", "IBAN": "[IBAN]", "PERSON": "[PERSON]"}
WORDS_PER_MINUTE = 230
# A sentence ends at . ! ? followed by a space and a capital (or an opening mark), or at a line
# end; "z. B.", "Dr. Weber" and "20. März" do not end one: the word before the dot is no
# abbreviation or number.
_BOUNDARY = re.compile(r"(?<=[.!?])(?<!\b\w\.)(?<!\d\.)[ \t]+(?=[\"'«¿¡(]?[A-ZÀ-ÖØ-Þ])|\n+")
_ABBREVIATION = re.compile(
    r"(?:\b(?:Dr|Mr|Mrs|Ms|Prof|Nr|No|Hr|Fr|Sr|Sra|St|ca|bzw|inkl|ggf|etc|vs|M|Mme)\.)$"
)


def redact(text: str, entities: Iterable[Mapping[str, Any]]) -> str:
    """`text` with each e-mail, phone, IBAN and person replaced by its placeholder.

    Entities whose offsets do not point at their text in `text` are ignored.
    """
    pieces: list[str] = []
    position = 0
    for entity in sorted(entities, key=lambda e: int(e["start"])):
        placeholder = REDACTED.get(entity["type"])
        start, end = int(entity["start"]), int(entity["end"])
        if placeholder is None or start < position or text[start:end] != entity["text"]:
            continue
        pieces += [text[position:start], placeholder]
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def sentences(text: str) -> list[str]:
    """The sentences of `text`, and its lines that are no sentence (headings, list items)."""
    found: list[str] = []
    for piece in _BOUNDARY.split(text):
        piece = piece.strip()
        if not piece:
            continue
        if found and _ABBREVIATION.search(found[-1]):
            found[-1] = f"{found[-1]} {piece}"
        else:
            found.append(piece)
    return found


def summary(text: str, language: str, limit: int, count: int = 2) -> str:
    """The `count` sentences that share most words with the whole text, in text order.

    Sentences of fewer than four words (signatures, headings) and lines ending in a comma or
    colon (greetings) are passed over; the result is cut to `limit` characters.
    """
    stop = stop_words(language) | stop_words("en")
    candidates = [s for s in sentences(text) if len(words(s)) >= 4 and not s.endswith((",", ":"))]
    frequency = Counter(w for s in candidates for w in words(s) if w not in stop)

    def score(sentence: str) -> float:
        content = [w for w in words(sentence) if w not in stop]
        return sum(frequency[w] for w in set(content)) / (len(content) ** 0.5 or 1)

    ranked = sorted(range(len(candidates)), key=lambda i: (-score(candidates[i]), i))
    chosen = sorted(set(ranked[:count]))
    result = " ".join(candidates[i] for i in chosen)
    return result if len(result) <= limit else result[: limit - 1].rstrip() + "…"


def reading_time_seconds(word_count: int) -> int:
    """Seconds an adult takes to read `word_count` words (WORDS_PER_MINUTE), at least 1 if any."""
    return max(1, round(word_count * 60 / WORDS_PER_MINUTE)) if word_count else 0
