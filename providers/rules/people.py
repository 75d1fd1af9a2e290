"""People's names: after greetings, titles and introductions, in signatures and header fields.

Names are recognised by where they stand, not from a list of names: a capitalised word is
taken only after a cue, and never when it is a known non-name (a role, a weekday, "Team").
Every other mention of a name found so, in full or its last part alone, counts too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from providers.rules.lexicon import (
    APPOSITIVES,
    CLOSING_WORDS,
    CLOSINGS,
    NAME_PARTICLES,
    NOT_NAMES,
    PEOPLE_LISTS,
    PERSON_CUES,
    PERSON_FIELDS,
    ROLE_MAILBOXES,
    TITLES,
)
from providers.rules.spans import Span, alternation

# Gaps between the parts of a pattern are bounded ([ \t]{0,3}): two adjacent unbounded runs of
# spaces would let a long run of spaces cost quadratic time.
_UPPER = "A-ZÀ-ÖØ-ÞĀ-Ž"
_LOWER = "a-zß-öø-ÿā-ž"
# "Anna", "Jean-Pierre", "O'Brien", "McKenzie"
_TOKEN = rf"(?:[{_UPPER}]['\u2019])?[{_UPPER}][{_LOWER}]+(?:['\u2019-]?[{_UPPER}][{_LOWER}]+)?"
_PARTICLES = "|".join(sorted(NAME_PARTICLES, key=len, reverse=True))
_NAME = rf"(?P<name>{_TOKEN}(?:[ \t]{{1,3}}(?:(?:{_PARTICLES})[ \t]{{1,3}}){{0,2}}(?:[{_UPPER}]\.[ \t]{{1,3}})?{_TOKEN}){{0,3}})"
_TITLE = rf"(?:{alternation(TITLES)})(?:\.|(?=\s))"
_TITLES = rf"(?:[ \t]{{0,3}}{_TITLE})*[ \t]{{0,3}}"
_CUED = re.compile(
    rf"(?:(?<![\w.])(?i:{alternation(PERSON_CUES)})[ \t]{{0,3}},?|(?<![\w.]){_TITLE}){_TITLES}{_NAME}(?!\w)"
)
# Markup around a field's label: "**Reported by:** …", "- Kunde: …", "(owner: …)".
_MARKUP = r"[ \t*_#>|-]{0,8}"
_FIELD = re.compile(
    rf"(?:^|\()({_MARKUP})(?i:{alternation(PERSON_FIELDS)})[ \t]{{0,3}}:[*_]*[ \t]{{0,3}}{_TITLES}{_NAME}"
    rf"[ \t]{{0,3}}(?:<(?P<mailbox>[^@\s>]{{1,64}})@|\(|\)|,|;|$)",
    re.MULTILINE,
)
# A list of people after a label: "Attendees: Rachel Adams, Kevin O'Brien and Sofia Marquez".
_LIST = re.compile(
    rf"^{_MARKUP}(?i:{alternation(PEOPLE_LISTS)})[ \t]{{0,3}}:[*_]*[ \t]{{0,3}}(?P<list>[^\n]{{1,300}})$",
    re.MULTILINE,
)
_LIST_SEPARATOR = re.compile(
    r",?[ \t]{1,3}(?:and|und|et|y|e)[ \t]{1,3}|,[ \t]{0,3}|[ \t]{0,3};[ \t]{0,3}"
)
_LIST_NAME = re.compile(rf"{_TITLES}{_NAME}")
# A title alone on its line, the name on the next: the address block of a letter ("Herrn\n
# Markus Brandt").
_ADDRESSEE = re.compile(
    rf"^[ \t]{{0,3}}{_TITLE}[ \t]{{0,3}}\n[ \t]{{0,3}}{_NAME}[ \t]{{0,3}}$", re.MULTILINE
)
_CLOSING = re.compile(
    rf"^[ \t]{{0,3}}(?i:{alternation(CLOSINGS)})[ \t]{{0,3}}[,.!]?[ \t]{{0,3}}(?:\n[ \t]{{0,3}}){{1,3}}{_TITLES}{_NAME}[ \t]{{0,3}},?$",
    re.MULTILINE,
)
_CLOSING_LINE = re.compile(
    rf"^[^\n]{{0,30}}(?<!\w)(?i:{alternation(CLOSING_WORDS)})[^\n]{{0,30}}\n(?:[ \t]{{0,3}}\n){{0,2}}"
    rf"[ \t]{{0,3}}{_TITLES}{_NAME}[ \t]{{0,3}},?$",
    re.MULTILINE,
)
_CLOSING_INLINE = re.compile(
    rf"^[ \t]{{0,3}}(?i:{alternation(CLOSINGS)})[ \t]{{0,3}},[ \t]{{0,3}}{_TITLES}{_NAME}[ \t]{{0,3}}$",
    re.MULTILINE,
)
# A short line ending in a comma (a closing or a role: "Le chef de service,"), then a line that
# is a name of two words or more: a signature.
_SIGNED = re.compile(
    rf"^[^\n]{{1,40}},[ \t]{{0,3}}\n[ \t]{{0,3}}(?P<name>{_TOKEN}(?:[ \t]{{1,3}}{_TOKEN}){{1,2}})[ \t]{{0,3}}$",
    re.MULTILINE,
)
# A name of two words or more, then a role: "Sandrine Lemoine, notre responsable commerciale".
_APPOSED = re.compile(
    rf"(?<![\w.])(?P<name>{_TOKEN}(?:[ \t]{{1,3}}{_TOKEN}){{1,2}}),[ \t]{{1,3}}"
    rf"(?i:{alternation(APPOSITIVES)})[ \t]"
)
# A name addressed at the end of a sentence: "Good news, Daniel!", "¡Gracias, Sergio!".
_VOCATIVE = re.compile(rf",[ \t]{{1,3}}{_NAME}[ \t]{{0,3}}[!?]")
# A speaker in a transcript: "**Kunde (Stefan Horn):** …", "Agent (Lea): …".
_SPEAKER = re.compile(
    rf"^{_MARKUP}[^\W\d][\w \t]{{0,30}}\({_NAME}\)[*_]*[ \t]{{0,3}}:", re.MULTILINE
)


def find_people(text: str) -> Iterator[Span]:
    """Names found by their cues, then their other mentions in the text."""
    found: dict[str, Span] = {}
    patterns = (
        _CUED,
        _FIELD,
        _CLOSING,
        _CLOSING_LINE,
        _CLOSING_INLINE,
        _SIGNED,
        _ADDRESSEE,
        _SPEAKER,
        _APPOSED,
        _VOCATIVE,
    )
    for pattern in patterns:
        for match in pattern.finditer(text):
            if _organisation(match):
                continue
            start, name = _trimmed(match.start("name"), match["name"])
            if name:
                found.setdefault(f"{start}", Span("PERSON", start, start + len(name)))
    for match in _LIST.finditer(text):
        for start, name in _listed(match.start("list"), match["list"]):
            found.setdefault(f"{start}", Span("PERSON", start, start + len(name)))
    yield from found.values()
    yield from _mentions(text, {text[s.start : s.end] for s in found.values()})


def _organisation(match: re.Match[str]) -> bool:
    """Whether a header's name is an organisation's: its address is a role mailbox (info@…)."""
    mailbox = match.groupdict().get("mailbox")
    if not mailbox:
        return False
    return re.split(r"[._+-]", mailbox.lower())[0] in ROLE_MAILBOXES


def _listed(start: int, items: str) -> Iterator[tuple[int, str]]:
    """The names that begin the items of a list, with their offsets."""
    position = 0
    for separator in [*_LIST_SEPARATOR.finditer(items), None]:
        end = separator.start() if separator else len(items)
        match = _LIST_NAME.match(items, position, end)
        if match:
            yield _trimmed(start + match.start("name"), match["name"])
        if separator is None:
            break
        position = separator.end()


def _trimmed(start: int, name: str) -> tuple[int, str]:
    """The name up to its first non-name word (and without a dangling particle)."""
    words = name.split()
    kept: list[str] = []
    for word in words:
        if word.lower() in NOT_NAMES and word.lower() not in NAME_PARTICLES:
            break
        kept.append(word)
    while kept and kept[-1] in NAME_PARTICLES:
        kept.pop()
    if not kept or kept[0] in NAME_PARTICLES:
        return start, ""
    # Rebuild from the text: the words were separated by spaces or tabs only.
    end = 0
    for word in kept:
        end = name.index(word, end) + len(word)
    return start, name[:end]


def _mentions(text: str, names: set[str]) -> Iterator[Span]:
    """Other occurrences of each name, in full or by its last word (a surname)."""
    forms = set(names)
    forms.update(n.split()[-1] for n in names if " " in n and len(n.split()[-1]) > 2)
    forms.update(n.split()[0] for n in names if " " in n and len(n.split()[0]) > 2)
    if not forms:
        return
    pattern = re.compile(rf"(?<!\w)(?:{alternation(forms)})(?!\w)")
    for match in pattern.finditer(text):
        yield Span("PERSON", match.start(), match.end())
