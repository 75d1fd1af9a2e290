"""`gateway dlq list|replay|purge`: letters a consumer gave up on, shown, replayed, deleted."""

from __future__ import annotations

from typing import Any

from events.consumer import Consumer, ConsumerOptions
from events.model import Event


class Failing:
    """A handler that fails on one job's events, until it is mended."""

    def __init__(self, poison_job: str) -> None:
        self.poison_job = poison_job
        self.mended = False
        self.handled: list[Event] = []

    def __call__(self, event: Event) -> None:
        if event.job_id == self.poison_job and not self.mended:
            raise RuntimeError("downstream refused")
        self.handled.append(event)


def dead_lettered(services: Any, handler: Failing, job_ids: list[str]) -> Consumer:
    """Append one event per job, and let a group give up on the poison job's."""
    settings = services.settings
    for job_id in job_ids:
        services.redis.xadd(settings.events_stream, Event("job.created", job_id, {}).to_fields())
    consumer = Consumer(
        services.redis,
        ConsumerOptions(
            stream=settings.events_stream,
            group="billing",
            consumer="b1",
            dead_letter_stream=settings.dead_letter_stream,
            claim_idle=0.01,
            max_deliveries=2,
            block_ms=10,
        ),
        handler,
    )
    for _ in range(20):
        consumer.poll()
        if services.redis.xlen(settings.dead_letter_stream):
            break
    return consumer


def test_list_shows_each_letter_with_its_error_and_deliveries(app, services):
    dead_lettered(services, Failing("job-poison"), ["job-ok", "job-poison"])
    result = app.test_cli_runner().invoke(args=["dlq", "list"])
    assert result.exit_code == 0, result.output
    assert "1 letter(s)" in result.output
    row = next(line for line in result.output.splitlines() if "job-poison" in line)
    for shown in (
        "job.created",
        "billing",
        "2",
        "handler failed: RuntimeError('downstream refused')",
    ):
        assert shown in row
    assert "job-ok" not in result.output


def test_replay_puts_a_letter_back_where_its_group_handles_it(app, services):
    handler = Failing("job-poison")
    consumer = dead_lettered(services, handler, ["job-poison"])
    letter_id = services.redis.xrange(services.settings.dead_letter_stream)[0][0]
    handler.mended = True

    result = app.test_cli_runner().invoke(args=["dlq", "replay", letter_id])

    assert result.exit_code == 0, result.output
    assert f"replayed {letter_id} onto {services.settings.events_stream}" in result.output
    assert services.redis.xlen(services.settings.dead_letter_stream) == 0
    consumer.poll()
    assert [event.job_id for event in handler.handled] == ["job-poison"]


def test_replay_needs_ids_or_all_and_names_unknown_ids(app, services):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["dlq", "replay"]).exit_code == 2
    unknown = runner.invoke(args=["dlq", "replay", "1-1"])
    assert unknown.exit_code == 1 and "no such letter" in unknown.output and "1-1" in unknown.output


def test_replay_all_of_one_group_and_purge(app, services):
    dead_lettered(services, Failing("job-a"), ["job-a"])
    services.redis.xadd(services.settings.dead_letter_stream, {"group": "audit", "reason": "x"})
    runner = app.test_cli_runner()

    replayed = runner.invoke(args=["dlq", "replay", "--all", "--group", "billing"])

    assert replayed.exit_code == 0 and "1 letter(s) replayed" in replayed.output
    assert services.redis.xlen(services.settings.dead_letter_stream) == 1
    assert runner.invoke(args=["dlq", "purge"], input="n\n").exit_code == 1
    purged = runner.invoke(args=["dlq", "purge", "--yes"])
    assert purged.exit_code == 0 and "1 letter(s) deleted" in purged.output
    assert services.redis.xlen(services.settings.dead_letter_stream) == 0
