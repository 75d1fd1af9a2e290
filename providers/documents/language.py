"""The language of a text, as an ISO 639-1 code from a configured set (langdetect, seeded)."""

from __future__ import annotations

import re
import threading
from pathlib import Path

from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory
from langdetect.lang_detect_exception import LangDetectException

# Characters of a text looked at: plenty to tell a language, and a bound on the time it takes.
SAMPLE_LENGTH = 5000
# langdetect's answer is random-walk based; a fixed seed makes it the same on every run.
SEED = 0
_NOT_WORDS = re.compile(r"\S+@\S+|\b(?:https?://|www\.)\S+")
SUPPORTED = frozenset(
    path.name for path in Path(PROFILES_DIRECTORY).iterdir() if len(path.name) == 2
)


class LanguageDetector:
    """Tells which of `languages` a text is in; built once per process (loading takes ~0.1 s
    per language), then safe to share between threads."""

    def __init__(self, languages: tuple[str, ...]) -> None:
        unknown = sorted(set(languages) - SUPPORTED)
        if unknown or not languages:
            raise ValueError(
                f"no language profile for {', '.join(unknown) or 'an empty set'}; "
                f"supported: {', '.join(sorted(SUPPORTED))}"
            )
        self.languages = tuple(dict.fromkeys(languages))
        self._factory: DetectorFactory | None = None
        self._lock = threading.Lock()

    def _loaded(self) -> DetectorFactory:
        with self._lock:
            if self._factory is None:
                factory = DetectorFactory()
                directory = Path(PROFILES_DIRECTORY)
                factory.load_json_profile(
                    [(directory / code).read_text("utf-8") for code in self.languages]
                )
                factory.set_seed(SEED)
                self._factory = factory
            return self._factory

    def detect(self, text: str) -> str | None:
        """The language of `text` among the configured ones; None for a text without letters.

        Addresses and links are left out: their letters belong to no language.
        """
        sample = _NOT_WORDS.sub(" ", text[: SAMPLE_LENGTH * 2])[:SAMPLE_LENGTH]
        if len(self.languages) == 1:
            return self.languages[0] if any(c.isalpha() for c in sample) else None
        detector = self._loaded().create()
        detector.append(sample)
        try:
            return str(detector.detect())
        except LangDetectException:  # no features: digits, symbols, empty
            return None
