"""People's names: after greetings, titles and introductions, in signatures and header fields.

Names are recognised by where they stand, not from a list of names: a capitalised word is
taken only after a cue, and never when it is a known non-name (a role, a weekday, "Team").
Every other mention of a name found so, in full or its last part alone, counts too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from providers.rules.lexicon import (
    CLOSINGS,
    NAME_PARTICLES,
    NOT_NAMES,
    PEOPLE_LISTS,
    PERSON_CUES,
    PERSON_FIELDS,
    TITLES,
)
from providers.rules.spans import Span, alternation

_UPPER = "A-ZÀ-ÖØ-ÞĀ-Ž"
_LOWER = "a-zß-öø-ÿā-ž"
# "Anna", "Jean-Pierre", "O'Brien", "McKenzie"
_TOKEN = rf"(?:[{_UPPER}]['\u2019])?[{_UPPER}][{_LOWER}]+(?:['\u2019-]?[{_UPPER}][{_LOWER}]+)?"
_PARTICLES = "|".join(sorted(NAME_PARTICLES, key=len, reverse=True))
_NAME = rf"(?P<name>{_TOKEN}(?:[ \t]+(?:(?:{_PARTICLES})[ \t]+){{0,2}}(?:[{_UPPER}]\.[ \t]+)?{_TOKEN}){{0,3}})"
_TITLE = rf"(?:{alternation(TITLES)})(?:\.|(?=\s))"
_TITLES = rf"(?:[ \t]*{_TITLE})*[ \t]*"
_CUED = re.compile(
    rf"(?:(?<![\w.])(?i:{alternation(PERSON_CUES)})[ \t]*,?|(?<![\w.]){_TITLE}){_TITLES}{_NAME}(?!\w)"
)
# Markup around a field's label: "**Reported by:** …", "- Kunde: …", "(owner: …)".
_MARKUP = r"[ \t]*(?:[*_#>|-]+[ \t]*)*"
_FIELD = re.compile(
    rf"(?:^|\()({_MARKUP})(?i:{alternation(PERSON_FIELDS)})[ \t]*:[*_]*[ \t]*{_TITLES}{_NAME}"
    rf"[ \t]*(?:<|\(|\)|,|;|$)",
    re.MULTILINE,
)
# A list of people after a label: "Attendees: Rachel Adams, Kevin O'Brien and Sofia Marquez".
_LIST = re.compile(
    rf"^{_MARKUP}(?i:{alternation(PEOPLE_LISTS)})[ \t]*:[*_]*[ \t]*(?P<list>[^\n]{{1,300}})$",
    re.MULTILINE,
)
_LIST_SEPARATOR = re.compile(r",?[ \t]+(?:and|und|et|y|e)[ \t]+|,[ \t]*|[ \t]*;[ \t]*")
_LIST_NAME = re.compile(rf"{_TITLES}{_NAME}")
# A title alone on its line, the name on the next: the address block of a letter ("Herrn\n
# Markus Brandt").
_ADDRESSEE = re.compile(rf"^[ \t]*{_TITLE}[ \t]*\n[ \t]*{_NAME}[ \t]*$", re.MULTILINE)
_CLOSING = re.compile(
    rf"^[ \t]*(?i:{alternation(CLOSINGS)})[ \t]*[,.!]?[ \t]*(?:\n[ \t]*)+{_TITLES}{_NAME}[ \t]*,?$",
    re.MULTILINE,
)
_CLOSING_INLINE = re.compile(
    rf"^[ \t]*(?i:{alternation(CLOSINGS)})[ \t]*,[ \t]*{_TITLES}{_NAME}[ \t]*$", re.MULTILINE
)
# A short line ending in a comma (a closing or a role: "Le chef de service,"), then a line that
# is a name of two words or more: a signature.
_SIGNED = re.compile(
    rf"^[^\n]{{1,40}},[ \t]*\n[ \t]*(?P<name>{_TOKEN}(?:[ \t]+{_TOKEN}){{1,2}})[ \t]*$",
    re.MULTILINE,
)
# A speaker in a transcript: "**Kunde (Stefan Horn):** …", "Agent (Lea): …".
_SPEAKER = re.compile(rf"^{_MARKUP}[^\W\d][\w \t]{{0,30}}\({_NAME}\)[*_]*[ \t]*:", re.MULTILINE)


def find_people(text: str) -> Iterator[Span]:
    """Names found by their cues, then their other mentions in the text."""
    found: dict[str, Span] = {}
    for pattern in (_CUED, _FIELD, _CLOSING, _CLOSING_INLINE, _SIGNED, _ADDRESSEE, _SPEAKER):
        for match in pattern.finditer(text):
            start, name = _trimmed(match.start("name"), match["name"])
            if name:
                found.setdefault(f"{start}", Span("PERSON", start, start + len(name)))
    for match in _LIST.finditer(text):
        for start, name in _listed(match.start("list"), match["list"]):
            found.setdefault(f"{start}", Span("PERSON", start, start + len(name)))
    yield from found.values()
    yield from _mentions(text, {text[s.start : s.end] for s in found.values()})


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
