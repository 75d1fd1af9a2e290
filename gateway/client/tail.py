"""Follow the events stream as readable lines (XREAD BLOCK), optionally one job's or tenant's."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from rich.text import Text

from events.display import printable, summarise
from events.model import Event

BLOCK_MS = 1000
STYLES = {
    "job.completed": "green",
    "job.failed": "red",
    "job.cancelled": "yellow",
    "job.stage_retrying": "yellow",
    "job.retried": "magenta",
    "job.created": "bold",
}

Fields = dict[str, str]


def line(entry_id: str, fields: Fields) -> Text:
    """`time event_type job=… [tenant=…] payload…`; a malformed entry shows its raw fields."""
    try:
        event = Event.from_fields(fields)
    except (KeyError, ValueError, TypeError):
        raw = " ".join(f"{printable(k)}={printable(v)}" for k, v in fields.items())
        return Text(f"{entry_id} (malformed) {raw}", style="red")
    moment = event.timestamp.strftime("%H:%M:%S.%f")[:-3]
    text = Text(f"{moment} ")
    text.append(printable(event.event_type), style=STYLES.get(event.event_type, "cyan"))
    text.append(f" job={printable(event.job_id)}")
    if event.tenant_id:
        text.append(f" tenant={printable(event.tenant_id)}")
    if summary := summarise(event.payload):
        text.append(f" {summary}")
    return text


def as_json(entry_id: str, fields: Fields) -> str:
    """The entry as one JSON object: its id and its fields as stored."""
    return json.dumps({"entry_id": entry_id, **fields}, ensure_ascii=False)


@dataclass
class Tail:
    """Reads `stream` after `after` ('$': from now on) and hands matching entries to `show`."""

    client: redis.Redis
    stream: str
    show: Callable[[str, Fields], None]
    note: Callable[[str], None]
    job: str | None = None
    tenant: str | None = None

    def wanted(self, fields: Fields) -> bool:
        """Whether the entry is of the job and tenant asked for."""
        if self.job is not None and fields.get("job_id") != self.job:
            return False
        return self.tenant is None or fields.get("tenant_id") == self.tenant

    def latest(self) -> str:
        """The id of the stream's last entry ('0-0' when empty), so that an outage skips nothing."""
        newest = self.client.xrevrange(self.stream, count=1)
        return str(newest[0][0]) if newest else "0-0"

    def run(self, from_start: bool) -> None:
        """Show entries until interrupted; a Redis outage is noted once and waited out."""
        after: str | None = "0-0" if from_start else None
        outage = ""
        while True:
            try:
                if after is None:
                    after = self.latest()
                reply: Any = self.client.xread({self.stream: after}, count=100, block=BLOCK_MS)
            except redis.RedisError as error:
                if str(error) != outage:
                    outage = str(error)
                    self.note(f"Redis: {outage}; still trying")
                time.sleep(1)
                continue
            if outage:
                outage = ""
                self.note("Redis is back")
            for _, entries in reply or []:
                for entry_id, fields in entries:
                    after = entry_id
                    if self.wanted(fields):
                        self.show(entry_id, fields)
