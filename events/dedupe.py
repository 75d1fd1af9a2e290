"""Handle each event once per `event_id`, for handlers that are not idempotent.

Delivery is at least once: an event comes again when a consumer died before its ack (XAUTOCLAIM
hands the entry to another consumer), when the relay appended it a second time, or when a
stream is replayed. `Deduplicator` wraps a handler and remembers, under one Redis key per
event_id (`SET NX EX`), that the event is being handled, then that it was handled:

- a delivery of an event already handled is skipped (the consumer acknowledges it);
- a delivery of an event another delivery is handling right now raises `EventInFlight`, so the
  consumer leaves it pending and it comes back once that handling ended;
- a handler that raises forgets the event, so a later delivery handles it;
- a consumer that dies mid-handling leaves a lease that expires after `lease` seconds, and the
  event is handled again by whoever claims it next: keep `lease` below the consumer group's
  claim idle time, and above the longest handling.

Events are remembered for `ttl` seconds (a day by default): a copy delivered later than that is
handled again. A handler whose consumer hangs longer than `lease` may run twice; only a handler
that checks a fencing token of its own could prevent that.
"""

from __future__ import annotations

import logging

import redis

from events.consumer import Handler
from events.model import Event

log = logging.getLogger(__name__)

_HANDLING = "handling"
_DONE = "done"


class EventInFlight(Exception):
    """Another delivery of this event is being handled; leave this one pending."""


class Deduplicator:
    """A handler that runs `handler` at most once per event_id within `ttl` seconds."""

    def __init__(
        self,
        client: redis.Redis,
        handler: Handler,
        *,
        key_prefix: str = "job_events:handled",
        ttl: float = 86_400.0,
        lease: float = 30.0,
    ) -> None:
        self.client = client
        self.handler = handler
        self.key_prefix = key_prefix
        self.ttl = ttl
        self.lease = lease

    def key(self, event_id: str) -> str:
        """The Redis key remembering `event_id`."""
        return f"{self.key_prefix}:{event_id}"

    def __call__(self, event: Event) -> None:
        """Handle `event` unless it was handled; raise EventInFlight if it is being handled."""
        key = self.key(event.event_id)
        if not self.client.set(key, _HANDLING, nx=True, px=_ms(self.lease)):
            state = self.client.get(key)
            if state in (_DONE, _DONE.encode()):
                log.debug("event %s already handled, skipped", event.event_id)
                return
            raise EventInFlight(event.event_id)
        try:
            self.handler(event)
        except BaseException:
            self.client.delete(key)  # not handled after all: the next delivery must handle it
            raise
        self.client.set(key, _DONE, px=_ms(self.ttl))


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
