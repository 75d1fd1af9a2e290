"""`gateway consume` as a real process: a signal stops it cleanly, a kill loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

from events.consumer import Consumer, ConsumerOptions
from events.model import Event
from gateway.config import Settings
from tests.support import HANDLED, PROJECT_DIR, settings_env, wait_until


class ConsumeProcess:
    """`gateway consume ...` with the test's settings, its log in a file."""

    def __init__(self, settings: Settings, log_path: Path, *args: str) -> None:
        env = {**os.environ, **settings_env(settings.replace(log_level="INFO"))}
        script = Path(sys.executable).with_name("gateway")
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(script), "consume", *args], cwd=PROJECT_DIR, env=env,
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def handled(self) -> list[str]:
        """The event ids it logged as handled, in order."""
        return HANDLED.findall(self.log())

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def add_events(client: redis.Redis, stream: str, count: int) -> list[str]:
    """Append `count` well-formed events in one round trip; return their event ids."""
    events = [Event("job.created", str(uuid.uuid4()), {"n": i}) for i in range(count)]
    pipe = client.pipeline(transaction=False)
    for event in events:
        pipe.xadd(stream, event.to_fields())  # type: ignore[arg-type]
    pipe.execute()
    return [e.event_id for e in events]


def handle_rest(services: Any, group: str, consumer: str, claim_idle: float) -> list[str]:
    """Drain the group as `consumer` (in process); return the event ids it handled."""
    handled: list[str] = []
    options = ConsumerOptions(
        stream=services.settings.events_stream,
        group=group,
        consumer=consumer,
        dead_letter_stream=services.settings.dead_letter_stream,
        claim_idle=claim_idle,
        block_ms=50,
        batch=200,
    )
    reader = Consumer(services.redis, options, lambda e: handled.append(e.event_id))
    stream = services.settings.events_stream
    wait_until(
        lambda: reader.poll() == 0 and services.redis.xpending(stream, group)["pending"] == 0,
        timeout=claim_idle + 10,
    )
    return handled


@pytest.fixture
def consume(settings: Settings, tmp_path: Path) -> Any:
    started: list[ConsumeProcess] = []

    def start(*args: str) -> ConsumeProcess:
        started.append(ConsumeProcess(settings, tmp_path / f"consume-{len(started)}.log", *args))
        return started[-1]

    yield start
    for process in started:
        process.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_gateway_consume_with_exit_0_and_no_entry_lost(services, consume, signum):
    # Given `gateway consume` reading a stream that keeps growing
    stream = services.settings.events_stream
    produced: list[str] = []
    producing = threading.Event()
    producing.set()

    def produce() -> None:
        while producing.is_set():
            produced.extend(add_events(services.redis, stream, 20))
            time.sleep(0.01)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        process = consume("--group", "g", "--consumer", "c1", "--batch", "100", "--block-ms", "200")
        wait_until(lambda: len(process.handled()) >= 200, timeout=20)

        # When it receives the signal mid-stream
        signalled = time.monotonic()
        process.process.send_signal(signum)
        code = process.process.wait(10)
        stopped_after = time.monotonic() - signalled
    finally:
        producing.clear()
        producer.join()

    # Then it exits 0, promptly, saying why
    log = process.log()
    assert code == 0, log
    assert stopped_after < 5.0  # one short read (200 ms) plus process exit, on a busy box
    assert f"{signal.Signals(signum).name} received" in log and "stopped" in log
    assert "Traceback" not in log

    # And what it logged was acked, what it read but did not handle is still pending
    first = process.handled()
    pending = {
        p["message_id"] for p in services.redis.xpending_range(stream, "g", "-", "+", 10_000)
    }
    ids = {fields["event_id"]: entry_id for entry_id, fields in services.redis.xrange(stream)}
    assert not {ids[e] for e in first} & pending
    assert len(first) == len(set(first))

    # And the same consumer, started again, handles the rest: every entry exactly once
    rest = handle_rest(services, "g", "c1", claim_idle=60)
    assert sorted(first + rest) == sorted(produced)


def test_entries_of_a_killed_gateway_consume_are_reclaimed_by_another_consumer(services, consume):
    # Given `gateway consume` busy with a big backlog, read in large batches
    stream = services.settings.events_stream
    produced = add_events(services.redis, stream, 5000)
    process = consume("--group", "g", "--consumer", "doomed", "--batch", "1000")
    wait_until(lambda: process.handled(), timeout=20, interval=0.005)

    # When it is killed (no chance to finish or ack anything)
    process.process.kill()
    process.process.wait(10)
    left = services.redis.xpending(stream, "g")
    assert left["pending"] > 0, "killed between batches; nothing to reclaim"
    assert [c["name"] for c in left["consumers"]] == ["doomed"]

    # Then another consumer of the group reclaims its entries after the idle time,
    # and together they handled every entry (those of the batch in flight at the kill maybe
    # twice: a batch is acknowledged once handled)
    rest = handle_rest(services, "g", "survivor", claim_idle=0.5)
    handled = process.handled() + rest
    assert set(handled) == set(produced)
    assert len(handled) - len(produced) <= 1000
    assert services.redis.xpending(stream, "g")["pending"] == 0


def test_gateway_consume_dead_letters_what_it_cannot_parse_into_a_capped_stream(services, tmp_path):
    # Given a dead-letter stream capped at about 20 entries, and 300 entries nobody can parse,
    # the last one an array nested 5000 deep, followed by a good one
    stream = services.settings.events_stream
    settings = services.settings.replace(dead_letter_maxlen=20)
    dead = settings.dead_letter_stream
    pipe = services.redis.pipeline(transaction=False)
    for i in range(299):
        pipe.xadd(stream, {"event_id": str(i), "payload": "not json"})
    pipe.xadd(stream, {"event_id": "x", "event_type": "job.created", "job_id": "j",
                       "timestamp": "2026-01-01T00:00:00Z", "payload": "[" * 5000 + "]" * 5000})  # fmt: skip
    pipe.execute()
    [good] = add_events(services.redis, stream, 1)

    # When `gateway consume` reads them
    process = ConsumeProcess(settings, tmp_path / "consume.log", "--group", "g")
    try:
        wait_until(lambda: good in process.handled(), timeout=30)

        # Then it is still running, every entry was acknowledged, and the dead-letter stream
        # kept only the newest letters (trimmed by whole nodes: MAXLEN ~)
        assert process.process.poll() is None, process.log()
        assert services.redis.xpending(stream, "g")["pending"] == 0
        letters = services.redis.xrange(dead)
        assert 20 <= len(letters) <= 20 + 100, len(letters)
        assert letters[-1][1]["reason"].startswith("malformed entry: RecursionError(")
    finally:
        process.close()
