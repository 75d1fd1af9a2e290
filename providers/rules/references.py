"""Bank accounts (IBAN, checked with ISO 13616 mod-97) and reference numbers."""

from __future__ import annotations

import re
import string
from collections.abc import Iterator

from providers.rules.lexicon import IDENTIFIER_LABELS
from providers.rules.spans import Span, alternation, rank

# IBAN lengths of the countries most letters come from; any other country needs 15-34.
IBAN_LENGTHS = {
    "AT": 20, "BE": 16, "CH": 21, "DE": 22, "DK": 18, "ES": 24, "FI": 18, "FR": 27, "GB": 22,
    "IE": 22, "IT": 27, "LI": 21, "LU": 20, "MC": 27, "NL": 18, "NO": 15, "PL": 28, "PT": 25,
    "SE": 24,
}  # fmt: skip
# Letters and digits in groups, separated by single spaces: two disjoint classes, so linear.
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d\d(?: ?[A-Z0-9]){11,30}")
_VALUES = {c: str(int(c, 36)) for c in string.digits + string.ascii_uppercase}

# A label ("Kundennummer", "Invoice no.", "N° de commande", "#"), then a code with a digit.
# Its gaps are bounded (\s{0,3}): adjacent unbounded ones would cost quadratic time on a label
# followed by a long run of spaces.
_CONNECTOR = (
    r"(?:\s{0,3}(?:no|nr|n°|nº|n\.º|n\.o|num|number|nummer|numéro|número|id)\b\.?)?"
    r"\s{0,3}[:#.]?[*_]{0,3}\s{0,3}"
    r"(?:(?:is|was|ist|lautet|lautete|est|es|era)(?:\s{1,3}(?:le|el|la))?\s{1,3})?"
)
# A code has a digit; a short capital prefix may stand apart ("SN 2024/08815").
_CODE = (
    r"(?:[A-Z]{1,4} (?=\d))?"
    r"(?=[A-Za-z0-9/._-]{0,40}\d)[A-Za-z0-9](?:[A-Za-z0-9]|[/._-](?=[A-Za-z0-9])){2,39}"
)
_LABELLED = re.compile(
    rf"(?<!\w)(?P<label>(?i:{alternation(IDENTIFIER_LABELS)}))(?:(?<=#)|(?!\w))"
    rf"(?i:{_CONNECTOR})(?P<code>{_CODE})(?![\w-])"
)
# Codes that read as references without a label: INV-2024-0042, K-448210, ES0021000012345678AB.
_STANDALONE = re.compile(
    r"(?<![\w-])(?:[A-Z]{1,6}(?:-[A-Z0-9]+)*-\d{3,}(?:-[A-Z0-9]+)*|[A-Z]{2,4}\d{6,}[A-Z0-9]*)"
    r"(?![\w-])"
)
# A line "Some field: CODE" whose value is one code of five characters or more with a digit
# ("CUPS: ES0021000012345678AB", "SKU: 88-1204-77"); dates, amounts and phones outrank it.
_FIELD_VALUE = re.compile(
    rf"^[ \t*_-]{{0,8}}[^\W\d][\w .-]{{0,25}}:[*_]{{0,3}}[ \t]{{0,3}}"
    rf"(?P<code>(?=[^\s]{{5}}){_CODE})[ \t]{{0,3}}$",
    re.MULTILINE,
)


def iban_valid(compact: str) -> bool:
    """Whether `compact` (no spaces) is an IBAN of the right length whose mod-97 check holds."""
    country = compact[:2]
    if not (15 <= len(compact) <= 34) or IBAN_LENGTHS.get(country, len(compact)) != len(compact):
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(_VALUES[c] for c in rearranged)) % 97 == 1


def find_ibans(text: str) -> Iterator[Span]:
    """Valid IBANs, printed in groups or in one piece; the longest valid prefix of a run."""
    for match in _IBAN.finditer(text):
        candidate = match[0]
        # Try the run, then shorter runs ending on a group: a word may follow the IBAN.
        ends = [i for i, c in enumerate(candidate) if c == " "] + [len(candidate)]
        for end in sorted(ends, reverse=True):
            if iban_valid(candidate[:end].replace(" ", "")):
                yield Span("IBAN", match.start(), match.start() + end)
                break


def find_identifiers(text: str) -> Iterator[Span]:
    """Reference numbers after a label ("SubscriptionID 2342"), and codes shaped like one."""
    for match in _LABELLED.finditer(text):
        label = match["label"]
        # A label makes a code surer than a bare number with separators is a phone.
        yield Span("IDENTIFIER", match.start("code"), match.end("code"), label, rank("PHONE", 0.3))
    for match in _STANDALONE.finditer(text):
        yield Span("IDENTIFIER", match.start(), match.end())
    for match in _FIELD_VALUE.finditer(text):
        yield Span("IDENTIFIER", match.start("code"), match.end("code"))
