"""The consumer: groups, ack after handling, reclaiming idle entries, dead-lettering, clean stops."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from typing import Any

import pytest
import redis

from events.consumer import Consumer, ConsumerOptions, parse_autoclaim
from events.display import summarise
from events.model import Event
from gateway import jobs
from tests.factories import make_job
from tests.support import drain, running_in_thread, stream_entries, wait_until


class Recorder:
    """A handler that remembers what it handled, and fails for the job ids it is told to."""

    def __init__(self, failing: frozenset[str] = frozenset()) -> None:
        self.failing = failing
        self.handled: list[Event] = []
        self.attempts: dict[str, int] = {}

    def __call__(self, event: Event) -> None:
        self.attempts[event.event_id] = self.attempts.get(event.event_id, 0) + 1
        if event.job_id in self.failing:
            raise RuntimeError(f"cannot handle job {event.job_id}")
        self.handled.append(event)

    @property
    def event_ids(self) -> list[str]:
        return [e.event_id for e in self.handled]


def options(services: Any, **changes: Any) -> ConsumerOptions:
    """Consumer options on the test's stream, with short times."""
    values: dict[str, Any] = {
        "stream": services.settings.events_stream,
        "group": "downstream",
        "consumer": "c1",
        "dead_letter_stream": services.settings.events_stream + ":dead",
        "claim_idle": 0.2,
        "max_deliveries": 3,
        "block_ms": 50,
    }
    values.update(changes)
    return ConsumerOptions(**values)


def add_event(client: redis.Redis, stream: str, job_id: str, **payload: Any) -> str:
    """Append a well-formed event straight to the stream; return its event_id."""
    event = Event("job.created", job_id, payload or {"document_name": "d"})
    client.xadd(stream, event.to_fields())  # type: ignore[arg-type]
    return event.event_id


def pending(client: redis.Redis, stream: str, group: str) -> int:
    return int(client.xpending(stream, group)["pending"])


def stream_event_ids(client: redis.Redis, stream: str) -> list[str]:
    return [fields["event_id"] for _, fields in stream_entries(client, stream)]


def test_two_groups_each_receive_every_event(services, session):
    # Given events of real transitions on the stream: five jobs created, two cancelled
    created = [make_job(session) for _ in range(5)]
    for job in created[:2]:
        jobs.cancel_job(session, job.id)
    all_ids = stream_event_ids(services.redis, services.settings.events_stream)
    assert len(all_ids) == 7

    # When two groups read the same stream, one of them with two consumers
    audit, billing_1, billing_2 = Recorder(), Recorder(), Recorder()
    consumers = [
        Consumer(services.redis, options(services, group="audit", consumer="a1"), audit),
        Consumer(services.redis, options(services, group="billing", consumer="b1", batch=3), billing_1),
        Consumer(services.redis, options(services, group="billing", consumer="b2", batch=3), billing_2),
    ]  # fmt: skip
    drain(consumers[0])
    for _ in range(4):  # the two billing consumers take turns
        consumers[1].poll()
        consumers[2].poll()

    # Then each group handled every event exactly once, in stream order, and acked it
    assert audit.event_ids == all_ids
    assert sorted(billing_1.event_ids + billing_2.event_ids) == sorted(all_ids)
    assert billing_1.handled and billing_2.handled
    for group in ("audit", "billing"):
        assert pending(services.redis, services.settings.events_stream, group) == 0
    assert {e.event_type for e in audit.handled} == {"job.created", "job.cancelled"}


def test_entries_of_a_consumer_that_died_before_acking_are_reclaimed_after_the_idle_time(
    services,
):
    # Given a consumer that read three entries and died without acking them
    stream = services.settings.events_stream
    ids = [add_event(services.redis, stream, str(uuid.uuid4())) for _ in range(3)]
    live = Recorder()
    consumer = Consumer(services.redis, options(services, consumer="live", claim_idle=0.5), live)
    consumer.ensure_group()
    services.redis.xreadgroup("downstream", "dead", {stream: ">"}, count=10)
    read_at = time.monotonic()

    # When the live consumer polls before the idle time, it takes nothing from the dead one
    consumer.poll()
    assert live.handled == [] and time.monotonic() - read_at < 0.5

    # Then once the entries were idle long enough, it claims, handles and acks them
    wait_until(lambda: consumer.poll() or live.handled, timeout=5)
    assert live.event_ids == ids
    assert pending(services.redis, stream, "downstream") == 0


def test_a_hung_consumer_loses_its_entry_to_a_live_one_and_its_late_ack_changes_nothing(services):
    # Given a consumer stuck inside its handler
    stream = services.settings.events_stream
    event_id = add_event(services.redis, stream, str(uuid.uuid4()))
    release = threading.Event()
    stuck_on: list[str] = []

    def hang(event: Event) -> None:
        stuck_on.append(event.event_id)
        release.wait(10)

    hung = Consumer(services.redis, options(services, consumer="hung"), hang)
    thread = threading.Thread(target=hung.poll)
    thread.start()
    wait_until(lambda: stuck_on)

    # When a live consumer of the same group polls after the idle time
    live = Recorder()
    other = Consumer(services.redis, options(services, consumer="live"), live)
    wait_until(lambda: other.poll() or live.handled, timeout=5)

    # Then the live one handled it; the hung one's late ack is harmless
    assert live.event_ids == [event_id]
    release.set()
    thread.join(5)
    assert pending(services.redis, stream, "downstream") == 0


def test_a_poison_entry_is_dead_lettered_after_max_deliveries_and_the_rest_flows(services):
    # Given an entry its handler always rejects, between two good ones
    stream = services.settings.events_stream
    poison_job = str(uuid.uuid4())
    good_1 = add_event(services.redis, stream, str(uuid.uuid4()))
    poison = add_event(services.redis, stream, poison_job)
    good_2 = add_event(services.redis, stream, str(uuid.uuid4()))
    poison_entry_id = services.redis.xrange(stream)[1][0]
    handler = Recorder(failing=frozenset({poison_job}))
    opts = options(services, max_deliveries=3, claim_idle=0.1)
    consumer = Consumer(services.redis, opts, handler)

    # When the consumer keeps polling
    def dead_lettered() -> int:
        consumer.poll()
        return services.redis.xlen(opts.dead_letter_stream)

    wait_until(dead_lettered, timeout=5)

    # Then the good entries were handled once, the poison one was tried 3 times,
    # copied to the dead-letter stream with its reason, and acked
    assert handler.event_ids == [good_1, good_2]
    assert handler.attempts[poison] == 3
    [(_, letter)] = services.redis.xrange(opts.dead_letter_stream)
    original = dict(services.redis.xrange(stream)[1][1])
    assert {k: letter[k] for k in original} == original
    assert letter["original_id"] == poison_entry_id
    assert letter["original_stream"] == stream
    assert letter["group"] == "downstream"
    assert letter["deliveries"] == "3"
    assert letter["reason"] == f"handler failed: RuntimeError('cannot handle job {poison_job}')"
    assert pending(services.redis, stream, "downstream") == 0
    drain(consumer)
    assert handler.attempts[poison] == 3


def test_an_unparseable_entry_is_dead_lettered_at_once_without_stopping_the_consumer(services):
    # Given a malformed entry (payload is not a JSON object) before a good one
    stream = services.settings.events_stream
    services.redis.xadd(stream, {"event_id": "x", "event_type": "job.created", "job_id": "j",
                                 "timestamp": "2026-01-01T00:00:00Z", "payload": "[1, 2"})  # fmt: skip
    services.redis.xadd(stream, {"hello": "world"})
    good = add_event(services.redis, stream, str(uuid.uuid4()))
    handler = Recorder()
    opts = options(services)
    consumer = Consumer(services.redis, opts, handler)

    # When it consumes them
    drain(consumer)

    # Then both bad entries are in the dead-letter stream, acked, and the good one was handled
    letters = [fields for _, fields in services.redis.xrange(opts.dead_letter_stream)]
    assert [letter["reason"].split(":")[0] for letter in letters] == ["malformed entry"] * 2
    assert letters[0]["payload"] == "[1, 2" and letters[1]["hello"] == "world"
    assert "JSONDecodeError" in letters[0]["reason"] and "KeyError" in letters[1]["reason"]
    assert handler.event_ids == [good]
    assert pending(services.redis, stream, "downstream") == 0


def test_an_entry_nested_too_deep_to_parse_is_dead_lettered_and_the_consumer_goes_on(services):
    # Given an entry whose payload is an array nested 5000 deep, before a good one
    stream = services.settings.events_stream
    services.redis.xadd(stream, {"event_id": "x", "event_type": "job.created", "job_id": "j",
                                 "timestamp": "2026-01-01T00:00:00Z",
                                 "payload": "[" * 5000 + "]" * 5000})  # fmt: skip
    good = add_event(services.redis, stream, str(uuid.uuid4()))
    handler = Recorder()
    opts = options(services)
    consumer = Consumer(services.redis, opts, handler)

    # When the consumer runs
    with running_in_thread(consumer) as thread:
        wait_until(lambda: handler.event_ids == [good])
        assert thread.is_alive()

    # Then the deep entry went to the dead-letter stream, saying why, and nothing is pending
    [(_, letter)] = services.redis.xrange(opts.dead_letter_stream)
    assert letter["reason"].startswith("malformed entry: RecursionError(")
    assert letter["payload"] == "[" * 5000 + "]" * 5000
    assert pending(services.redis, stream, "downstream") == 0


def test_an_entry_whose_consumers_keep_dying_is_dead_lettered_without_handling_it_again(services):
    # Given an entry delivered three times (max) to consumers that died each time
    stream = services.settings.events_stream
    add_event(services.redis, stream, str(uuid.uuid4()))
    handler = Recorder()
    consumer = Consumer(
        services.redis, options(services, max_deliveries=3, claim_idle=0.05), handler
    )
    consumer.ensure_group()
    services.redis.xreadgroup("downstream", "dead-1", {stream: ">"})
    for dead in ("dead-2", "dead-3"):
        time.sleep(0.06)
        services.redis.xautoclaim(stream, "downstream", dead, min_idle_time=50, start_id="0-0")

    # When a live consumer claims it for the fourth delivery
    time.sleep(0.06)
    drain(consumer)

    # Then it goes straight to the dead-letter stream: handling it once more could kill us too
    assert handler.handled == []
    [(_, letter)] = services.redis.xrange(options(services).dead_letter_stream)
    assert letter["deliveries"] == "4"
    assert letter["reason"] == "not acknowledged after delivery"
    assert pending(services.redis, stream, "downstream") == 0


def test_a_consumer_restarted_under_its_name_handles_what_it_left_pending(services):
    # Given a consumer that read a batch and stopped after the first entry
    stream = services.settings.events_stream
    ids = [add_event(services.redis, stream, str(uuid.uuid4())) for _ in range(4)]
    stop = threading.Event()
    first = Recorder()

    def handle_then_stop(event: Event) -> None:
        first(event)
        stop.set()  # as SIGTERM would, in the middle of a batch

    Consumer(services.redis, options(services, claim_idle=60), handle_then_stop, stop).run()
    assert first.event_ids == ids[:1]
    assert pending(services.redis, stream, "downstream") == 3

    # When it starts again under the same name (no idle time to wait for)
    again = Recorder()
    drain(Consumer(services.redis, options(services, claim_idle=60), again))

    # Then it handles the three it left, and nothing is pending
    assert again.event_ids == ids[1:]
    assert pending(services.redis, stream, "downstream") == 0


def test_the_default_handler_logs_one_line_per_event(services, session, caplog):
    # Given a job.created event of a real job
    job = make_job(session, document_name="Quarterly report\nQ3")
    consumer = Consumer(services.redis, options(services))

    # When the consumer handles it with its default handler
    with caplog.at_level(logging.INFO, logger="events.consumer"):
        drain(consumer)

    # Then one line names the type, job, event and a summary of the payload
    [fields] = [f for _, f in services.redis.xrange(services.settings.events_stream)]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("job.")]
    assert lines == [
        f"job.created job={job.id} event={fields['event_id']} "
        'document_name="Quarterly report\\nQ3" document_type=important '
        "stages=extraction,analysis,enrichment"
    ]


def test_control_characters_of_a_document_name_are_escaped_in_the_log_line(
    services, session, caplog
):
    # Given a job whose name holds a terminal escape sequence, a bidi override and C1 controls
    name = "report\x1b]0;owned\x07\x1b[2Jdone\u202etxt.exe\x9b31m"
    job = make_job(session, document_name=name)
    consumer = Consumer(services.redis, options(services))

    # When the consumer logs its job.created event
    with caplog.at_level(logging.INFO, logger="events.consumer"):
        drain(consumer)

    # Then the line shows every one of them escaped, and holds no control character
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("job.created")]
    assert f"job={job.id}" in line
    assert "document_name=report\\x1b]0;owned\\x07\\x1b[2Jdone\\u202etxt.exe\\x9b31m" in line
    assert line.isprintable()


def test_summaries_escape_control_characters_in_keys_lists_and_objects():
    payload = {"k\x1b": ["a\x1bb", 1], "o": {"x\ny": 1}, "s": "two words\x85"}
    summary = summarise(payload)
    assert summary == 'k\\x1b=a\\x1bb,1 o={x\\x0ay} s="two words\\x85"'
    assert summary.isprintable()


def test_payload_summaries_show_object_keys_and_cut_long_values():
    summary = summarise({"stage": "analysis", "result": {"text": "…", "entities": []}, "n": 3})
    assert summary == "n=3 result={entities,text} stage=analysis"
    assert summarise({"error": "x" * 100}, width=10) == "error=xxxxxxxxx…"


@pytest.mark.parametrize(
    "reply",
    [
        ["0-0", [("1-0", {"a": "1"})]],  # Redis 6.2: cursor, entries
        ["0-0", [("1-0", {"a": "1"})], ["0-5"]],  # Redis 7: cursor, entries, deleted ids
    ],
)
def test_autoclaim_replies_of_redis_6_and_7_are_both_understood(reply):
    assert parse_autoclaim(reply) == ("0-0", [("1-0", {"a": "1"})])


def test_autoclaim_drops_entries_deleted_while_pending_on_redis_6():
    # Redis 6.2 answers a claimed but deleted entry as nil, which redis-py turns into (None, None).
    assert parse_autoclaim(["0-0", [(None, None), ("2-0", {"a": "1"})]]) == (
        "0-0",
        [("2-0", {"a": "1"})],
    )


def test_the_group_reads_the_stream_from_its_start_and_creating_it_twice_is_harmless(services):
    # Given events already on the stream before the group exists
    stream = services.settings.events_stream
    first = add_event(services.redis, stream, str(uuid.uuid4()))
    consumer = Consumer(services.redis, options(services), Recorder())
    consumer.ensure_group()
    consumer.ensure_group()

    # Then the group starts at the beginning: the earlier event is delivered
    drain(consumer)
    assert consumer.handler.event_ids == [first]  # type: ignore[attr-defined]
    assert json.loads(services.redis.xrange(stream)[0][1]["payload"]) == {"document_name": "d"}


def test_a_consumer_whose_stream_was_deleted_creates_its_group_again_and_goes_on(services, caplog):
    # Given a running consumer that handled one event
    stream = services.settings.events_stream
    handler = Recorder()
    consumer = Consumer(services.redis, options(services), handler)
    thread = threading.Thread(target=consumer.run)
    thread.start()
    try:
        first = add_event(services.redis, stream, str(uuid.uuid4()))
        wait_until(lambda: handler.event_ids == [first])

        # When the stream disappears with its group (deleted, or a Redis without persistence)
        services.redis.delete(stream)
        time.sleep(0.2)
        second = add_event(services.redis, stream, str(uuid.uuid4()))

        # Then it recreates the group and handles what comes next, without stopping
        wait_until(lambda: handler.event_ids == [first, second])
        assert thread.is_alive()
    finally:
        consumer.stop.set()
        thread.join(5)
    assert not thread.is_alive()
    assert any("creating it again" in r.getMessage() for r in caplog.records)
