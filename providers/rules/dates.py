"""Calendar dates as written in English, German, French and Spanish, and their ISO 8601 form."""

from __future__ import annotations

import re
from collections.abc import Iterator

from providers.rules.lexicon import MONTHS
from providers.rules.spans import Span, alternation

# An abbreviation's dot belongs to the date when a number follows ("févr. 2024"), not when it
# ends the sentence ("le 6 février.").
_MONTH = rf"(?P<month>{alternation(MONTHS)})(?:\.(?=\s{{0,3}}\d))?"
_DAY = r"(?P<day>[0-3]?\d)(?:\.|st|nd|rd|th|er|º|°)?"
_YEAR = r"(?P<year>(?:19|20)\d\d)"
_PATTERNS = (
    # 2024-03-20
    re.compile(r"(?<![\d.-])(?P<year>(?:19|20)\d\d)-(?P<month>[01]?\d)-(?P<day>[0-3]?\d)(?![\d-])"),
    # 20.03.2024, 20/03/24, 02/16/2024 (order decided by the values, then the language)
    re.compile(
        r"(?<![\d./-])(?P<a>[0-3]?\d)(?P<sep>[./-])(?P<b>[0-3]?\d)(?P=sep)"
        r"(?P<year>(?:19|20)?\d\d)(?![\d]|[./-]\d)"
    ),
    # 20. März 2024, 12 avril 2024, 1 de junio de 2024, 3rd of May 2024, 1er mai 2024
    re.compile(
        rf"(?i:(?<![\w.]){_DAY}\s*(?:of\s+|de\s+)?{_MONTH}(?:,?\s+(?:de\s+|del\s+)?{_YEAR})?)"
        r"(?!\w)"
    ),
    # March 20, 2024; March 20th 2024; March 2024
    re.compile(rf"(?i:(?<![\w.]){_MONTH}\s+(?:{_DAY},?\s+)?(?:de\s+)?{_YEAR})(?!\w)"),
)
_NAMED = (2, 3)  # the patterns that name the month
_DAY_FIRST = ("de", "fr", "es")


def find_dates(text: str, language: str | None) -> Iterator[Span]:
    """Dates with a real day and month; a month name with a day and no year counts too."""
    for index, pattern in enumerate(_PATTERNS):
        for match in pattern.finditer(text):
            if index in _NAMED and not match.group("year") and not match.groupdict().get("day"):
                continue
            if index == 2 and not match.group("year") and match.group("month").lower() == "may":
                continue  # "2 may …" is far more often a verb than a date
            if iso_date(match[0], language) is not None:
                yield Span("DATE", match.start(), match.end())


def iso_date(text: str, language: str | None) -> str | None:
    """The ISO 8601 form of a date found by `find_dates` (`YYYY-MM-DD`, `YYYY-MM` or `--MM-DD`
    when a part is missing), or None when the numbers are no date."""
    for index, pattern in enumerate(_PATTERNS):
        match = pattern.fullmatch(text.strip())
        if match is None:
            continue
        parts = match.groupdict()
        if index == 1:
            a, b = int(parts["a"]), int(parts["b"])
            if a > 12 or b > 12:
                day, month = max(a, b), min(a, b)  # 13/14/2024 then fails as no date
            elif parts["sep"] == "/" and language not in _DAY_FIRST:
                day, month = b, a  # 02/03/2024 in English is the 3rd of February
            else:
                day, month = a, b
        else:
            month_text = parts["month"]
            month = MONTHS[month_text.lower()] if index in _NAMED else int(month_text)
            day = int(parts["day"]) if parts.get("day") else 0
        year_text = parts.get("year")
        year = int(year_text) if year_text else None
        if year is not None and year < 100:
            year += 2000 if year < 70 else 1900
        return _iso(year, month, day)
    return None


def _iso(year: int | None, month: int, day: int) -> str | None:
    """The ISO form, or None if the month or the day cannot exist."""
    days = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
    if not 1 <= month <= 12 or day > days[month - 1]:
        return None
    if day and year is not None:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        if month == 2 and day == 29 and not leap:
            return None
        return f"{year:04d}-{month:02d}-{day:02d}"
    if year is not None:
        return f"{year:04d}-{month:02d}" if not day else None
    return f"--{month:02d}-{day:02d}" if day else None
