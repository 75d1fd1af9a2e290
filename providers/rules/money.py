"""Amounts of money with their currency, and their decimal value and ISO 4217 code."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation

from providers.rules.spans import Span

# Currency signs and words to ISO 4217 codes (lowercased keys).
CURRENCIES = {
    "€": "EUR", "eur": "EUR", "euro": "EUR", "euros": "EUR",
    "$": "USD", "us$": "USD", "usd": "USD", "dollar": "USD", "dollars": "USD", "dólares": "USD",
    "£": "GBP", "gbp": "GBP", "pound": "GBP", "pounds": "GBP",
    "chf": "CHF", "fr.": "CHF", "sfr": "CHF",
    "¥": "JPY", "jpy": "JPY", "cad": "CAD", "c$": "CAD", "aud": "AUD", "a$": "AUD",
    "mxn": "MXN", "sek": "SEK", "nok": "NOK", "dkk": "DKK", "pln": "PLN", "czk": "CZK",
}  # fmt: skip
_SIGN = r"(?:US\$|C\$|A\$|[$€£¥])"
_CODE = r"(?:EUR|USD|GBP|CHF|JPY|CAD|AUD|MXN|SEK|NOK|DKK|PLN|CZK)"
_WORD = r"(?i:euros?|dollars?|dólares|pounds?|sfr)"
# 1.249,90 / 1,188.00 / 1 249,90 / 1'200.50 / 1249.9 / 12,- : groups of three after the first.
# A plain space separates thousands in French only: elsewhere "1 780,00 €" is more likely a
# quantity and a price whose column gap the extraction made one space.
_GROUPS = {False: "[.,\u00a0\u202f'\u2019]", True: "[.,\u00a0\u202f '\u2019]"}


def _amount_pattern(spaced: bool) -> re.Pattern[str]:
    number = (
        rf"\d{{1,3}}(?:{_GROUPS[spaced]}\d{{3}})+(?:[.,]\d{{1,2}})?(?:,-|,\u2013)?"
        r"|\d+(?:[.,]\d{1,2})?(?:,-|,\u2013)?"
    )
    return re.compile(
        # A letter may touch the number: an extracted table row joins its cells ("Total104,49 €").
        rf"(?<![\d.,])(?:"
        rf"(?P<pre>{_SIGN}|{_CODE})\s?-?(?P<n1>{number})"
        rf"|(?P<n2>{number})\s?(?P<post>{_SIGN}|{_CODE}|{_WORD})"
        rf")(?![\w$€£¥])"
    )


_AMOUNT = _amount_pattern(spaced=False)
_SPACED_AMOUNT = _amount_pattern(spaced=True)
_SPACES = "\u00a0\u202f '\u2019"


def find_amounts(text: str, language: str | None) -> Iterator[Span]:
    """Numbers with a currency sign, code or word before or after them."""
    pattern = _SPACED_AMOUNT if language == "fr" else _AMOUNT
    for match in pattern.finditer(text):
        if amount(match[0]) is not None:
            yield Span("MONEY", match.start(), match.end())


def amount(text: str) -> tuple[str, str] | None:
    """The decimal value (as a string, e.g. "1249.90") and ISO 4217 code of an amount."""
    match = _SPACED_AMOUNT.fullmatch(text.strip())
    if match is None:
        return None
    number = match["n1"] or match["n2"]
    currency = CURRENCIES.get((match["pre"] or match["post"]).lower())
    value = decimal_value(number)
    if currency is None or value is None:
        return None
    return str(value), currency


def decimal_value(number: str) -> Decimal | None:
    """The value of a number written with either decimal mark and any thousands separator.

    The last mark followed by one or two digits is the decimal mark; a mark followed by
    three digits separates thousands ("1.249" is 1249, "1,5" is 1.5).
    """
    number = number.removesuffix(",-").removesuffix(",\u2013")
    for space in _SPACES:
        number = number.replace(space, "")
    last = max(number.rfind("."), number.rfind(","))
    if last != -1 and len(number) - last - 1 in (1, 2):
        integer, fraction = number[:last], number[last + 1 :]
    else:
        integer, fraction = number, ""
    integer = integer.replace(".", "").replace(",", "")
    try:
        value = Decimal(f"{integer}.{fraction}" if fraction else integer)
    except InvalidOperation:
        return None
    return value.quantize(Decimal("0.01"))
