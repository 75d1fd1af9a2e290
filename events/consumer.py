"""The consumer-group loop: handle each job event, ack after handling, reclaim and dead-letter.

Delivery is at least once. An entry is acknowledged only after its handler returned; an entry
whose handler raised stays pending and comes back through XAUTOCLAIM once it has been idle for
`claim_idle` seconds, whichever consumer of the group claims it (dead consumers' entries come
back the same way). Redis counts every delivery; an entry delivered `max_deliveries` times
without success is copied to the dead-letter stream and acknowledged, so one bad entry never
blocks the group. An entry that cannot be parsed is dead-lettered at once, whatever the parser
raised: a retry cannot fix it. The dead-letter stream is trimmed to an approximate bound.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from events.display import printable, summarise
from events.model import Event
from events.outage import Outage

log = logging.getLogger(__name__)

Handler = Callable[[Event], None]
Entry = tuple[str, dict[str, str]]

_MAX_PAUSE = 1.0  # seconds between reconnection attempts while Redis is down

# A consumer's record that it is alive, read by `gateway probe consumer`. XINFO CONSUMERS' idle
# time would tell on Redis 7.2 and later only: before, a read that finds nothing new does not
# reset it, so the consumer of a quiet stream looked dead after the probe's 30 s.
SEEN_TTL = 3600  # seconds the record outlives its consumer's last round


def seen_key(stream: str, group: str, consumer: str) -> str:
    return f"{stream}:seen:{group}:{consumer}"


def seconds_since_seen(client: redis.Redis, stream: str, group: str, consumer: str) -> float | None:
    """Seconds since the consumer last polled its group, by Redis's clock; None if never (or
    not for SEEN_TTL seconds)."""
    remaining_ms = int(client.pttl(seen_key(stream, group, consumer)))
    return None if remaining_ms < 0 else SEEN_TTL - remaining_ms / 1000


def _group_gone(exc: redis.ResponseError) -> bool:
    # NOGROUP: no such group or stream; UNBLOCKED: the stream was deleted during a blocking read.
    return str(exc).startswith(("NOGROUP", "UNBLOCKED"))


def log_event(event: Event) -> None:
    """The default handler: one log line per event."""
    if not log.isEnabledFor(logging.INFO):
        return  # the summary costs more than the rest of handling an event
    owner = f" tenant={printable(event.tenant_id)}" if event.tenant_id else ""
    log.info(
        "%s job=%s event=%s%s %s",
        printable(event.event_type),
        printable(event.job_id),
        printable(event.event_id),
        owner,
        summarise(event.payload),
        extra={"job_id": event.job_id},
    )


def parse_autoclaim(reply: Sequence[Any]) -> tuple[str, list[Entry]]:
    """The next cursor and the claimed entries of an XAUTOCLAIM reply.

    Redis 6.2 answers [cursor, entries]; Redis 7 adds a third element, the ids of pending
    entries that were deleted from the stream (Redis already dropped them from the PEL).
    """
    cursor, entries = reply[0], reply[1]
    return str(cursor), [(entry_id, fields) for entry_id, fields in entries if entry_id is not None]


def consumer_client(url: str, timeout: float, block_ms: int) -> redis.Redis:
    """A client whose socket timeout outlasts a blocking read of `block_ms` milliseconds."""
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=timeout + block_ms / 1000,
        socket_connect_timeout=timeout,
        health_check_interval=15,
    )


@dataclass(frozen=True)
class ConsumerOptions:
    """Where to read, as whom, and when to reclaim or give up on an entry."""

    stream: str
    group: str
    consumer: str
    dead_letter_stream: str
    claim_idle: float = 60.0  # seconds an entry stays pending before another consumer claims it
    max_deliveries: int = 5
    dead_letter_maxlen: int = 10_000  # approximate bound of the dead-letter stream (MAXLEN ~)
    block_ms: int = 1000
    batch: int = 10
    # After a read that did not fill a batch, seconds to let more entries arrive before the
    # next: each read and its XACK cost a round trip whatever the batch holds, and under load
    # events trickle in by ones and twos. Delays an event by at most this.
    linger: float = 0.02
    # Handle only this tenant's events; the others are acknowledged unhandled (None: all).
    tenant: str | None = None


class Consumer:
    """Reads the events stream as one consumer of a group until `stop` is set."""

    def __init__(
        self,
        client: redis.Redis,
        options: ConsumerOptions,
        handler: Handler = log_event,
        stop: threading.Event | None = None,
    ) -> None:
        self.client = client
        self.options = options
        self.handler = handler
        self.stop = stop or threading.Event()
        self.outage = Outage(log, "events stream")
        self._group_ready = False
        self._next_claim = 0.0
        self._claim_every = max(0.05, min(options.claim_idle / 2, 5.0))

    def run(self) -> None:
        """Consume until `stop` is set; ride out Redis outages, never stop on a bad entry.

        Stopping finishes the entry being handled; entries read but not handled yet stay
        pending and are reclaimed later (by this consumer's next start or by another one).
        """
        o = self.options
        log.info("consumer %s of group %s reading %s", o.consumer, o.group, o.stream)
        pause = 0.1
        while not self.stop.is_set():
            try:
                done = self.poll()
            except redis.RedisError as exc:
                self._group_ready = False
                if isinstance(exc, redis.ResponseError) and _group_gone(exc):
                    # The stream or its group was deleted (or a Redis without persistence
                    # restarted while we were connected): join it again at once.
                    log.warning("group %s of %s is gone, creating it again", o.group, o.stream)
                    continue
                self.outage.down(exc)
                self.stop.wait(pause)  # never a tight loop against a dead server
                pause = min(pause * 2, _MAX_PAUSE)
            else:
                self.outage.up()
                pause = 0.1
                if 0 < done < o.batch and o.linger > 0:
                    self.stop.wait(o.linger)
        log.info("consumer %s of group %s stopped", o.consumer, o.group)

    def poll(self) -> int:
        """One round: (re)join the group, reclaim idle entries when due, read new entries.

        Returns how many entries were handled, dead-lettered or dropped.
        """
        o = self.options
        done = 0
        if not self._group_ready:
            self.ensure_group()
            self._group_ready = True
            done += self.recover_own()
        if self._claim_due():
            done += self.reclaim()
            self.client.set(seen_key(o.stream, o.group, o.consumer), 1, ex=SEEN_TTL)
        if self.stop.is_set():
            return done
        # Entries read for the first time were delivered once: no need to ask XPENDING.
        return done + self._process_all(self._read(">", self.options.block_ms), deliveries={})

    def ensure_group(self) -> None:
        """Create the group at the start of the stream (and the stream) unless it exists, and
        this consumer in it: listed from its start, so its idle time tells it is alive."""
        o = self.options
        try:
            self.client.xgroup_create(o.stream, o.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self.client.xgroup_createconsumer(o.stream, o.group, o.consumer)

    def recover_own(self) -> int:
        """Handle again the entries this consumer name left pending (a restart after a stop or crash)."""
        done, after = 0, "0"
        while not self.stop.is_set():
            entries = self._read(after)
            if not entries:
                return done
            after = entries[-1][0]
            done += self._process_all(entries, deliveries=self._delivery_counts(entries))
        return done

    def reclaim(self) -> int:
        """Claim the group's entries idle for `claim_idle` seconds (XAUTOCLAIM) and handle them."""
        o = self.options
        done, cursor = 0, "0-0"
        while not self.stop.is_set():
            reply: Any = self.client.xautoclaim(
                o.stream,
                o.group,
                o.consumer,
                min_idle_time=int(o.claim_idle * 1000),
                start_id=cursor,
                count=o.batch,
            )
            cursor, entries = parse_autoclaim(reply)
            if entries:
                log.info("claimed %d idle entries for %s", len(entries), o.consumer)
                done += self._process_all(entries, deliveries=self._delivery_counts(entries))
            if cursor == "0-0":
                break
        return done

    def _read(self, after: str, block: int | None = None) -> list[Entry]:
        """XREADGROUP: new entries (`>`) or this consumer's pending ones after an id."""
        o = self.options
        reply: Any = self.client.xreadgroup(
            o.group, o.consumer, {o.stream: after}, count=o.batch, block=block
        )
        return [
            (entry_id, fields) for _stream, entries in reply or () for entry_id, fields in entries
        ]

    def _claim_due(self) -> bool:
        now = time.monotonic()
        if now < self._next_claim:
            return False
        self._next_claim = now + self._claim_every
        return True

    def _delivery_counts(self, entries: Sequence[Entry]) -> dict[str, int]:
        """How often Redis delivered each entry (XPENDING's times_delivered), in one round trip."""
        o = self.options
        pipe = self.client.pipeline(transaction=False)
        for entry_id, _fields in entries:
            pipe.xpending_range(o.stream, o.group, min=entry_id, max=entry_id, count=1)
        return {
            rows[0]["message_id"]: int(rows[0]["times_delivered"])
            for rows in pipe.execute()
            if rows
        }

    def _process_all(self, entries: Sequence[Entry], deliveries: dict[str, int]) -> int:
        """Handle `entries` in order, then acknowledge the handled ones in one XACK.

        An entry handled but not yet acknowledged when the process dies comes back, as any
        unacknowledged entry does: delivery stays at least once.
        """
        done, handled = 0, []
        try:
            for entry_id, fields in entries:
                if self.stop.is_set():
                    break  # the rest stays pending and is reclaimed: nothing is lost
                if self.process(entry_id, fields, deliveries.get(entry_id, 1)):
                    handled.append(entry_id)
                done += 1
        finally:
            if handled:
                self.client.xack(self.options.stream, self.options.group, *handled)
        return done

    def process(self, entry_id: str, fields: dict[str, str], deliveries: int) -> bool:
        """Handle one entry delivered for the `deliveries`-th time; True if it is to be
        acknowledged, False if it was dead-lettered (and acknowledged) or left pending."""
        o = self.options
        if not fields:
            return True  # trimmed from the stream while pending: nothing left to handle
        if deliveries > o.max_deliveries:
            # Earlier deliveries ended without an answer (the consumer died handling it).
            self.dead_letter(entry_id, fields, deliveries, "not acknowledged after delivery")
            return False
        try:
            event = Event.from_fields(fields)
        except Exception as exc:  # whatever the parser raises (a payload nested too deep
            # raises RecursionError): a retry cannot fix the entry, and it must not stop us
            self.dead_letter(entry_id, fields, deliveries, f"malformed entry: {exc!r}")
            return False
        if o.tenant is not None and event.tenant_id != o.tenant:
            return True  # another tenant's: acknowledged unhandled, in this group
        try:
            self.handler(event)
        except Exception as exc:  # a bad entry must not stop the consumer
            if deliveries >= o.max_deliveries:
                self.dead_letter(entry_id, fields, deliveries, f"handler failed: {exc!r}")
            else:
                log.warning(
                    "handler failed on %s (delivery %d of %d), left pending: %r",
                    entry_id,
                    deliveries,
                    o.max_deliveries,
                    exc,
                )
            return False
        return True

    def dead_letter(
        self, entry_id: str, fields: dict[str, str], deliveries: int, reason: str
    ) -> None:
        """Copy the entry to the dead-letter stream (trimmed to about its bound) and ack it,
        atomically (MULTI)."""
        o = self.options
        letter: dict[Any, Any] = {
            **fields,
            "reason": reason,
            "original_id": entry_id,
            "original_stream": o.stream,
            "group": o.group,
            "deliveries": str(deliveries),
        }
        pipe = self.client.pipeline(transaction=True)
        pipe.xadd(o.dead_letter_stream, letter, maxlen=o.dead_letter_maxlen, approximate=True)
        pipe.xack(o.stream, o.group, entry_id)
        pipe.execute()
        log.error(
            "dead-lettered %s to %s after %d deliveries: %s",
            entry_id,
            o.dead_letter_stream,
            deliveries,
            reason,
            extra={"job_id": fields["job_id"]} if "job_id" in fields else {},
        )
