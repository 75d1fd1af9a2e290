"""The dead-letter stream: list its entries, replay them onto their stream, purge it.

A letter is the entry a consumer gave up on (`Consumer.dead_letter`): the entry's own fields
plus why (`reason`), where it came from (`original_id`, `original_stream`), which group gave
up (`group`) and after how many deliveries (`deliveries`). Replaying appends the entry's own
fields to its stream again, as a new entry with the same `event_id`, and deletes the letter,
in one MULTI: every group reads it again, and those that had handled it drop it by
`event_id` (`events.dedupe`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis

LETTER_FIELDS = ("reason", "original_id", "original_stream", "group", "deliveries")


@dataclass(frozen=True)
class Letter:
    """One dead-lettered entry."""

    id: str
    fields: dict[str, str]

    @property
    def entry(self) -> dict[str, str]:
        """The original entry's fields, without the letter's own."""
        return {k: v for k, v in self.fields.items() if k not in LETTER_FIELDS}

    def get(self, name: str) -> str:
        return self.fields.get(name, "")


def letters(client: redis.Redis, stream: str, group: str | None = None) -> list[Letter]:
    """Every letter, oldest first (of one group's only, if `group` is given)."""
    entries: list[tuple[str, dict[str, str]]] = client.xrange(stream)  # type: ignore[assignment]
    found = [Letter(entry_id, fields) for entry_id, fields in entries]
    return [letter for letter in found if group is None or letter.get("group") == group]


def replay(client: redis.Redis, stream: str, chosen: Sequence[Letter]) -> list[str]:
    """Append each letter's entry to its original stream and delete the letter, atomically
    per letter; the new entry ids, in order."""
    appended = []
    for letter in chosen:
        pipe = client.pipeline(transaction=True)
        pipe.xadd(letter.get("original_stream"), letter.entry)  # type: ignore[arg-type]
        pipe.xdel(stream, letter.id)
        new_id, _ = pipe.execute()
        appended.append(str(new_id))
    return appended


def purge(client: redis.Redis, stream: str, chosen: Sequence[Letter] | None = None) -> int:
    """Delete the chosen letters (every letter if None); how many were deleted."""
    if chosen is None:
        return int(client.xtrim(stream, maxlen=0, approximate=False))
    return int(client.xdel(stream, *[letter.id for letter in chosen])) if chosen else 0
