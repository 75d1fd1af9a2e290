"""Extractors: raw document content in, normalised text and basic statistics out.

`fast` and `slow` simulate a remote service on the text as given; `default` reads real
documents (see DefaultExtractor).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from providers.base import DocumentError, SimulatedProvider, Upload
from providers.documents.detect import (
    EMAIL,
    HTML,
    SNIFF_LENGTH,
    decode_text,
    needs_parser,
    text_type,
)
from providers.documents.language import LanguageDetector
from providers.documents.limits import DocumentLimits, size
from providers.documents.mail import is_email
from providers.documents.sandbox import parse_sandboxed
from providers.limits import bounded_text, utf8_size
from providers.registry import register

DEFAULT_LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "pt")


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
        if isinstance(data, Upload):  # a file read as UTF-8 text, whatever it is: a simulation
            data = data.content.decode("utf-8", "replace")
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


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # keeps tab and line feed


def tidy(text: str) -> str:
    """Normalised text (see `normalise`): no control characters, inline whitespace collapsed,
    lines trimmed, at most one empty line in a row. Never longer than `text`."""
    text = _CONTROL.sub(" ", normalise(text.replace("\r\n", "\n").replace("\r", "\n")))
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def text_stats(text: str) -> dict[str, int]:
    """Characters, words, sentences and lines of `text`."""
    sentences = [s for s in _SENTENCE_END.split(text) if re.search(r"\w", s)]
    return {
        "characters": len(text),
        "words": len(re.findall(r"\w+", text)),
        "sentences": len(sentences),
        "lines": text.count("\n") + 1 if text else 0,
    }


@register("extraction", "default")
class DefaultExtractor:
    """The real extractor: the document's type told from its bytes, its text parsed in a
    sandboxed child process (PDF, DOCX, HTML, RTF, e-mail, text in other encodings; UTF-8
    plain text and Markdown are read in the worker), normalised and counted, and its
    language among LANGUAGES.

    Output: `text`, `content_type`, `pages` and `pages_processed` (PDF), `title` (HTML),
    `stats`, `language` (ISO 639-1, or null), `truncated` when the text was longer than
    MAX_TEXT_LENGTH. A document over a limit, unsupported or damaged raises DocumentError,
    which fails the stage at once (no retry).
    """

    def __init__(
        self,
        *,
        document_limits: DocumentLimits | None = None,
        languages: tuple[str, ...] = DEFAULT_LANGUAGES,
    ) -> None:
        self.limits = document_limits or DocumentLimits()
        self.language = LanguageDetector(languages)

    def process(self, data: Any, *, timeout: float) -> dict[str, Any]:
        """Extract `data`: an Upload, bytes, or a text (the JSON contract's document_content)."""
        if isinstance(data, Upload | bytes):
            raw = data.content if isinstance(data, Upload) else data
            text = None if needs_parser(raw) else decode_text(raw)
            parsed = (
                parse_sandboxed(raw, self.limits, timeout)
                if text is None
                else self._parse_text(text, timeout, raw)
            )
        else:
            parsed = self._parse_text(str(data), timeout)
        text, truncated = bounded_text(str(parsed.pop("text")))
        # A parser may pass on lone surrogates (a broken PDF font map): no database stores them.
        text = tidy(text).encode("utf-8", "replace").decode("utf-8")
        result: dict[str, Any] = {"text": text, **parsed}
        result["stats"] = text_stats(text)
        # An e-mail's language is its body's: names in its headers would count otherwise.
        body = text.partition("\n\n")[2] if parsed["content_type"] == EMAIL else text
        result["language"] = self.language.detect(body or text)
        if truncated:
            result["truncated"] = True
        return result

    def _parse_text(self, text: str, timeout: float, raw: bytes | None = None) -> dict[str, Any]:
        """A text (sent as text, or the decoded bytes `raw`): plain text and Markdown are read
        here, HTML and e-mail (MIME encodings to decode) in the sandbox."""
        head = text[:SNIFF_LENGTH]
        content_type = text_type(head)
        if content_type == HTML or is_email(head.encode("utf-8", "surrogatepass")):
            data = text.encode("utf-8", "surrogatepass") if raw is None else raw
            return parse_sandboxed(data, self.limits, timeout)
        length = utf8_size(text) if raw is None else len(raw)
        for maximum, setting in (
            (self.limits.max_document_bytes, "MAX_DOCUMENT_BYTES"),
            self.limits.max_bytes("text"),
        ):
            if length > maximum:
                raise DocumentError(
                    f"The text is {size(length)}: more than {setting}={size(maximum)}."
                )
        return {"content_type": content_type, "text": text}
