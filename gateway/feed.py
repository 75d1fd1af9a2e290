"""One job's events, read live from the events stream after a given entry id.

Every reader does its own `XREAD` from an id it keeps, so a reader that reconnects with the
last id it was given continues exactly after it: nothing missed, nothing repeated. Entries of
other jobs are skipped; the stream is shared by all jobs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis

from events.model import Event

_ENTRY_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


def _key(entry_id: str) -> tuple[int, int]:
    millis, _, sequence = entry_id.partition("-")
    return int(millis), int(sequence)


def is_entry_id(value: str) -> bool:
    """Whether `value` is a complete stream entry id (`<milliseconds>-<sequence>`)."""
    return bool(_ENTRY_ID.match(value))


@dataclass(frozen=True)
class Entry:
    """A job's event with the stream id it was appended under."""

    id: str
    event: Event


class JobFeed:
    """A job's entries after `after`, one blocking read at a time; `after` advances as it reads."""

    def __init__(self, client: redis.Redis, stream: str, job_id: str, after: str) -> None:
        self.client = client
        self.stream = stream
        self.job_id = job_id
        self.after = after

    @classmethod
    def from_now(cls, client: redis.Redis, stream: str, job_id: str) -> JobFeed:
        """A feed of what is appended from now on.

        Take it *before* reading the job's state from the database: an event committed before
        that read may then arrive twice (in the state and in the feed), but none goes missing.
        """
        newest: Any = client.xrevrange(stream, count=1)
        return cls(client, stream, job_id, newest[0][0] if newest else "0-0")

    def resumable(self) -> bool:
        """Whether no entry after `after` was trimmed away (it is at or after the oldest kept)."""
        oldest: Any = self.client.xrange(self.stream, count=1)
        return not oldest or _key(self.after) >= _key(oldest[0][0])

    def read(self, block_ms: int) -> Iterator[Entry]:
        """The job's entries appended after `after`, waiting up to `block_ms` for any entry."""
        answer: Any = self.client.xread({self.stream: self.after}, count=500, block=block_ms)
        for _stream, entries in answer or ():
            for entry_id, fields in entries:
                self.after = entry_id
                if fields.get("job_id") != self.job_id:
                    continue
                try:
                    event = Event.from_fields(fields)
                except (KeyError, ValueError):
                    continue  # a malformed entry is the consumer's to dead-letter, not ours
                yield Entry(entry_id, event)
