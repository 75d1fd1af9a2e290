"""E-mail addresses, URLs and phone numbers."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from providers.rules.lexicon import PHONE_CUES, PHONE_REGIONS
from providers.rules.spans import Span, alternation, rank

# A candidate starts where no address character precedes it, so a long run is scanned once.
_EMAIL = re.compile(r"(?<![\w.+%-])[\w.+%-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}")
_URL = re.compile(r"(?<![\w@/.])(?:https?://|www\.)[^\s<>\"'()\[\]{}]{2,500}", re.IGNORECASE)
_TRAILING = ".,;:!?…»\u201c\u201d\u2019'"
_PHONE_CUE = re.compile(rf"(?i:\b(?:{alternation(PHONE_CUES)}))[\w.]*\s*[:.]?\s*(?:\(\w+\)\s*)?$")
# Phones are looked for only in runs of digits and separators long enough to be one.
_MIN_DIGITS = 7
MAX_PHONE_RUNS = 300
_RUN = re.compile(r"(?<![\w+(])(?:\+|\()?\d[\d \t().\-/]{4,28}\d(?!\d)")


def find_emails(text: str) -> Iterator[Span]:
    """Syntactically valid addresses (no DNS lookup)."""
    for match in _EMAIL.finditer(text):
        address = match[0].rstrip(".-")
        try:
            validate_email(address, check_deliverability=False)
        except EmailNotValidError:
            continue
        yield Span("EMAIL", match.start(), match.start() + len(address))


def find_urls(text: str) -> Iterator[Span]:
    """Web addresses with a scheme or starting with www., without trailing punctuation."""
    for match in _URL.finditer(text):
        url = match[0].rstrip(_TRAILING)
        if "." in url.split("//")[-1]:
            yield Span("URL", match.start(), match.start() + len(url))


def regions(language: str | None) -> tuple[str, ...]:
    """The countries whose national phone formats are tried for a text in `language`."""
    return PHONE_REGIONS.get(language or "", ()) or PHONE_REGIONS["en"]


def find_phones(text: str, language: str | None) -> Iterator[Span]:
    """Phone numbers written nationally in the language's countries, or internationally.

    A number counts when it is written as one (a `+`, `00` or `(` in front) or announced
    ("Tel.", "Telefon", "móvil"), or when it is a valid number with separators in it, or one
    of a possible length written nationally ("07700 900461"): a bare run of digits is more
    often a reference than a phone. Such a number yields to a labelled reference.
    """
    # The matcher reads only runs of digits and separators, each on its own, and at most
    # MAX_PHONE_RUNS of them (about a millisecond each): on a long text of digits it would
    # otherwise spend minutes.
    runs = (r for r in _RUN.finditer(text) if sum(c.isdigit() for c in r[0]) >= _MIN_DIGITS)
    for run in itertools.islice(runs, MAX_PHONE_RUNS):
        seen: set[tuple[int, int]] = set()
        for region in regions(language):
            matcher = phonenumbers.PhoneNumberMatcher(
                run[0], region, leniency=phonenumbers.Leniency.POSSIBLE, max_tries=20
            )
            for match in matcher:
                start, end = run.start() + match.start, run.start() + match.end
                raw = match.raw_string
                if (
                    (start, end) in seen
                    or sum(c.isdigit() for c in raw) < _MIN_DIGITS
                    or _inside_code(text, start, end)
                ):
                    continue
                written = raw[0] in "+(" or raw.startswith("00")
                announced = bool(_PHONE_CUE.search(text[max(0, start - 30) : start]))
                # A valid number, or one of a possible length written nationally (0…), in groups.
                national = raw.startswith("0") and phonenumbers.is_possible_number(match.number)
                valid = phonenumbers.is_valid_number(match.number) or national
                grouped = valid and bool(re.search(r"\D", raw))
                if raw.startswith("(") and ")" not in raw:  # "(06 98 …)": the bracket is prose
                    start, raw = start + 1, raw[1:]
                if written or announced:
                    seen.add((start, end))
                    yield Span("PHONE", start, end)
                elif grouped:  # a labelled identifier is surer ("Rechnung Nr. 2024-1187")
                    seen.add((start, end))
                    yield Span("PHONE", start, end, rank=rank("PHONE", 0.6))


def _inside_code(text: str, start: int, end: int) -> bool:
    """Whether the span continues a word or code around it ("INV-2024-0042" holds no phone)."""
    before = text[start - 1] if start else " "
    after = text[end] if end < len(text) else " "
    return before.isalnum() or before in "-/_" or after.isalnum() or after in "-/_"


def phone_number(raw: str, language: str | None) -> dict[str, str | bool] | None:
    """The E.164 form and region of a phone number as written, and whether it is a valid one.

    Read as a national number of the language's countries in turn (the first where it is
    valid wins, else the first where its length is possible), or as international when it
    has a country code.
    """
    parsed: list[phonenumbers.PhoneNumber] = []
    for region in regions(language):
        try:
            parsed.append(phonenumbers.parse(raw, region))
        except phonenumbers.NumberParseException:
            continue
    if not parsed:
        return None
    number = next(
        (n for n in parsed if phonenumbers.is_valid_number(n)),
        next((n for n in parsed if phonenumbers.is_possible_number(n)), parsed[0]),
    )
    return {
        "e164": phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        # An invalid number has no region of its own: its country code's main one stands in.
        "region": phonenumbers.region_code_for_number(number)
        or phonenumbers.region_code_for_country_code(number.country_code or 0),
        "valid": phonenumbers.is_valid_number(number),
    }
