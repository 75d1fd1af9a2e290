"""The event_id dedupe helper under a real consumer group: replays, reclaims, crashes, TTLs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import uuid
from typing import Any

import redis

from events.consumer import Consumer, ConsumerOptions
from events.dedupe import Deduplicator
from events.model import Event
from tests.support import PROJECT_DIR, drain, running_in_thread, wait_until


class Effects:
    """A handler that is not idempotent: it counts what it did, per event_id."""

    def __init__(self, fail_first: bool = False) -> None:
        self.done: dict[str, int] = {}
        self.fail_first = fail_first
        self.calls = 0

    def __call__(self, event: Event) -> None:
        self.calls += 1
        if self.fail_first and self.calls == 1:
            raise RuntimeError("downstream hiccup")
        self.done[event.event_id] = self.done.get(event.event_id, 0) + 1


def options(services: Any, consumer: str, **changes: Any) -> ConsumerOptions:
    values: dict[str, Any] = {
        "stream": services.settings.events_stream,
        "group": "billing",
        "consumer": consumer,
        "dead_letter_stream": services.settings.events_stream + ":dead",
        "claim_idle": 0.3,
        "max_deliveries": 5,
        "block_ms": 50,
    }
    values.update(changes)
    return ConsumerOptions(**values)


def dedupe(services: Any, handler: Any, **changes: Any) -> Deduplicator:
    prefix = f"{services.settings.events_stream}:handled"
    return Deduplicator(services.redis, handler, key_prefix=prefix, **changes)


def append(client: redis.Redis, stream: str, event: Event) -> str:
    return str(client.xadd(stream, event.to_fields()))  # type: ignore[arg-type]


def new_event() -> Event:
    return Event("job.completed", str(uuid.uuid4()), {"stages": ["extraction"]})


def settled(services: Any, group: str = "billing") -> bool:
    stream = services.settings.events_stream
    return int(services.redis.xpending(stream, group)["pending"]) == 0


def poll_until_settled(services: Any, consumer: Consumer) -> None:
    """Poll until the group has nothing pending (reclaims come once entries are idle enough)."""
    wait_until(lambda: consumer.poll() >= 0 and settled(services), timeout=5)


def test_an_event_appended_twice_is_handled_once_and_both_entries_are_acknowledged(services):
    # Given an event on the stream, and the same event again (the relay appended it twice)
    stream = services.settings.events_stream
    event, other = new_event(), new_event()
    for e in (event, event, other, event):
        append(services.redis, stream, e)
    effects = Effects()

    # When a consumer of the group handles them through the helper
    drain(Consumer(services.redis, options(services, "c1"), dedupe(services, effects)))

    # Then each event had its effect once, and nothing is left pending or dead-lettered
    assert effects.done == {event.event_id: 1, other.event_id: 1}
    assert settled(services)
    assert services.redis.xlen(stream + ":dead") == 0


def test_an_event_whose_handler_failed_is_handled_by_the_consumer_that_reclaims_it(services):
    # Given a consumer whose handler fails on its first event: the entry stays pending
    stream = services.settings.events_stream
    event = new_event()
    append(services.redis, stream, event)
    failing = Effects(fail_first=True)
    first = options(services, "c1", claim_idle=60)  # it leaves the reclaim to the other one
    drain(Consumer(services.redis, first, dedupe(services, failing)))
    assert failing.done == {} and not settled(services)

    # When another consumer claims it once it was idle (XAUTOCLAIM)
    effects = Effects()
    survivor = Consumer(services.redis, options(services, "c2"), dedupe(services, effects))
    poll_until_settled(services, survivor)

    # Then it had its effect once, there
    assert effects.done == {event.event_id: 1}


def test_an_event_handled_but_not_acknowledged_is_not_handled_again_when_reclaimed(services):
    # Given a consumer that handled an event and died before its ack
    stream = services.settings.events_stream
    event = new_event()
    append(services.redis, stream, event)
    Consumer(services.redis, options(services, "c1")).ensure_group()
    [[_, [(entry_id, fields)]]] = services.redis.xreadgroup("billing", "dead", {stream: ">"})
    effects = Effects()
    dedupe(services, effects)(Event.from_fields(fields))

    # When a live consumer claims the entry (XAUTOCLAIM, second delivery)
    survivor = Consumer(services.redis, options(services, "c2"), dedupe(services, effects))
    poll_until_settled(services, survivor)

    # Then the effect is not repeated, and the entry is acknowledged
    assert effects.done == {event.event_id: 1}
    assert services.redis.xpending_range(stream, "billing", "-", "+", 10) == []
    assert services.redis.xrange(stream)[0][0] == entry_id


def test_a_copy_delivered_while_the_event_is_being_handled_waits_then_is_skipped(services):
    # Given a slow handler busy with an event in one consumer
    stream = services.settings.events_stream
    event = new_event()
    append(services.redis, stream, event)
    release, busy = threading.Event(), threading.Event()
    effects = Effects()

    def slow(e: Event) -> None:
        busy.set()
        release.wait(10)
        effects(e)

    first = Consumer(services.redis, options(services, "c1", claim_idle=60), dedupe(services, slow))
    with running_in_thread(first):
        assert busy.wait(5)

        # When a copy of the event arrives at another consumer meanwhile
        append(services.redis, stream, event)
        second = Consumer(services.redis, options(services, "c2"), dedupe(services, effects))
        second.poll()

        # Then the copy is left pending, not handled
        assert effects.done == {}
        assert not settled(services)
        release.set()
        wait_until(lambda: effects.done)

        # And once the first handling finished, the copy is reclaimed and skipped
        poll_until_settled(services, second)
    assert effects.done == {event.event_id: 1}


# A consumer process whose handler dies (os._exit) in the middle of handling its first event.
DYING_CONSUMER = textwrap.dedent(
    """
    import os, sys
    import redis
    from events.consumer import Consumer, ConsumerOptions
    from events.dedupe import Deduplicator
    url, stream, prefix = sys.argv[1:4]
    client = redis.Redis.from_url(url, decode_responses=True)
    options = ConsumerOptions(stream=stream, group="billing", consumer="doomed",
                              dead_letter_stream=stream + ":dead", block_ms=50)
    handler = Deduplicator(client, lambda event: os._exit(9), key_prefix=prefix, lease=0.2)
    Consumer(client, options, handler).poll()
    """
)


def test_an_event_whose_consumer_died_mid_handling_is_handled_again_once_its_lease_expired(
    services,
):
    # Given a consumer process that dies in the middle of handling an event
    stream = services.settings.events_stream
    event = new_event()
    append(services.redis, stream, event)
    prefix = f"{stream}:handled"
    died = subprocess.run(
        [sys.executable, "-c", DYING_CONSUMER, services.settings.redis_url, stream, prefix],
        cwd=PROJECT_DIR,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert died.returncode == 9, died.stderr
    assert not settled(services)

    # When a live consumer claims the entry after the idle time (XAUTOCLAIM)
    effects = Effects()
    survivor = Consumer(
        services.redis, options(services, "c2"), dedupe(services, effects, lease=0.2)
    )
    poll_until_settled(services, survivor)

    # Then the event was handled: the dead consumer's lease did not swallow it
    assert effects.done == {event.event_id: 1}


def test_a_handled_event_is_remembered_for_the_ttl_then_forgotten(services):
    # Given an event handled with a one-day memory
    event = new_event()
    effects = Effects()
    helper = dedupe(services, effects)
    helper(event)
    assert 86_390 < services.redis.ttl(helper.key(event.event_id)) <= 86_400

    # When its memory expires (a short TTL here), a copy delivered later is handled again
    short = dedupe(services, effects, ttl=0.2)
    late = new_event()
    short(late)
    short(late)
    assert effects.done[late.event_id] == 1
    wait_until(lambda: not services.redis.exists(short.key(late.event_id)), timeout=5)
    short(late)
    assert effects.done == {event.event_id: 1, late.event_id: 2}
