"""The service layer's transition rules on PostgreSQL, under real concurrent sessions."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select, update

from events.model import TERMINAL_TYPES
from gateway import jobs, runs
from gateway.errors import (
    GatewayError,
    IdempotencyMismatchError,
    InvalidPipelineError,
    InvalidTransitionError,
)
from gateway.idempotency import IdempotentRequest
from gateway.models import IdempotencyKey, Job, JobFile, OutboxEvent, utcnow
from providers import registry
from tests.factories import STATUSES, make_job, make_job_in
from tests.support import outbox_event_types, outbox_events, race

ROUNDS = 40


def reload(session: Any, job_id: str) -> jobs.JobSnapshot:
    return jobs.get_job(session, job_id)


def cancelled(outcome: Any) -> bool:
    """Whether a cancel_job outcome applied (anything else must be the refusal)."""
    if isinstance(outcome, jobs.Cancellation):
        return True
    assert isinstance(outcome, InvalidTransitionError), outcome
    return False


@pytest.mark.parametrize(
    "stages", [[], ["analysis"], ["extraction", "enrichment"], ["extraction"] * 2]
)
def test_create_job_refuses_a_stage_list_that_is_not_a_pipeline_and_stores_nothing(session, stages):
    with pytest.raises(InvalidPipelineError) as refused:
        jobs.create_job(
            session, document_name="n", document_type="t", document_content="c", stages=stages
        )
    assert isinstance(refused.value, GatewayError) and refused.value.status == 400
    assert session.scalar(select(func.count()).select_from(Job)) == 0


def test_completing_the_last_stage_races_cancel_and_exactly_one_wins(services, session):
    outcomes: Counter[str] = Counter()
    # Race at least ROUNDS times, and on until each side has won at least once.
    while sum(outcomes.values()) < ROUNDS or len(outcomes) < 2:
        assert sum(outcomes.values()) < 5 * ROUNDS, f"one side never wins: {outcomes}"
        # Given a job whose only stage is running
        job = make_job(session, stages=["extraction"])
        runs.start_stage(session, job.id, "extraction")
        # When a worker completes it while a client cancels it
        completed, cancel = race(
            services,
            lambda s, j=job.id: runs.complete_stage(s, j, "extraction", {"text": "x"}),
            lambda s, j=job.id: jobs.cancel_job(s, j),
        )
        # Then exactly one of them applied, and the job and its events agree with it
        assert completed is not cancelled(cancel)
        final = reload(session, job.id)
        assert final.status == ("completed" if completed else "cancelled")
        assert final.runs[0].status == ("completed" if completed else "cancelled")
        types = outbox_event_types(session, job.id)
        assert types[0] == "job.created"
        assert [t for t in types if t in TERMINAL_TYPES] == [types[-1]]
        outcomes[final.status] += 1
    # Both outcomes happened, so the race was really run
    assert outcomes["completed"] and outcomes["cancelled"], outcomes


def test_failing_a_stage_races_cancel_and_exactly_one_wins(services, session):
    outcomes: Counter[str] = Counter()
    # Race at least ROUNDS / 2 times, and on until each side has won at least once.
    while sum(outcomes.values()) < ROUNDS // 2 or len(outcomes) < 2:
        assert sum(outcomes.values()) < 5 * ROUNDS, f"one side never wins: {outcomes}"
        # Given a job whose first stage is running
        job = make_job(session, stages=["extraction", "analysis"])
        runs.start_stage(session, job.id, "extraction")
        # When its provider fails for good while a client cancels it
        failed, cancel = race(
            services,
            lambda s, j=job.id: runs.fail_stage(s, j, "extraction", "Provider timeout"),
            lambda s, j=job.id: jobs.cancel_job(s, j),
        )
        # Then exactly one of them applied, and the job and its events agree with it
        assert failed is not cancelled(cancel)
        final = reload(session, job.id)
        assert final.status == ("failed" if failed else "cancelled")
        assert [r.status for r in final.runs] == [final.status, "skipped"]
        types = outbox_event_types(session, job.id)
        assert [t for t in types if t in TERMINAL_TYPES] == [types[-1]]
        outcomes[final.status] += 1
    # Both outcomes happened, so the race was really run
    assert outcomes["failed"] and outcomes["cancelled"], outcomes


def test_cancel_racing_a_start_reports_the_status_the_job_had_when_cancelled(services, session):
    outcomes: Counter[str] = Counter()
    while sum(outcomes.values()) < ROUNDS // 2 or len(outcomes) < 2:
        assert sum(outcomes.values()) < 5 * ROUNDS, f"one side never wins: {outcomes}"
        # Given a pending job
        job = make_job(session, stages=["extraction", "analysis"])
        # When its first stage starts while a client cancels it
        started, cancel = race(
            services,
            lambda s, j=job.id: runs.start_stage(s, j, "extraction"),
            lambda s, j=job.id: jobs.cancel_job(s, j),
        )
        assert cancelled(cancel)
        # Then job.cancelled names processing if the start came first, pending otherwise
        events = outbox_events(session, job.id)
        types = [t for t, _ in events]
        previous = "processing" if "job.stage_started" in types else "pending"
        assert (started is not None) == (previous == "processing")
        assert events[-1] == ("job.cancelled", {"previous_status": previous})
        statuses = [r.status for r in reload(session, job.id).runs]
        assert statuses == (["cancelled", "skipped"] if started else ["skipped", "skipped"])
        outcomes[previous] += 1
    assert outcomes["processing"] and outcomes["pending"], outcomes


def test_cancel_returns_the_task_ids_of_every_stage_that_had_not_finished(session):
    # A pending job: every stage, none started
    pending = make_job(session)
    assert jobs.cancel_job(session, pending.id).unfinished_task_ids == [
        r.task_id for r in pending.runs
    ]
    # During analysis: the analysis (running) and the enrichment (skipped), not the extraction
    running = make_job_in(session, "processing", at="analysis")
    cancellation = jobs.cancel_job(session, running.id)
    assert cancellation.unfinished_task_ids == [r.task_id for r in running.runs[1:]]
    assert cancellation.job.status == "cancelled"
    assert outbox_events(session, running.id)[-1] == (
        "job.cancelled",
        {"previous_status": "processing"},
    )


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
def test_a_finished_job_cannot_be_cancelled_and_the_refusal_names_its_status(session, status):
    job = make_job_in(session, status)
    with pytest.raises(InvalidTransitionError, match=f"from status {status}$"):
        jobs.cancel_job(session, job.id)
    assert reload(session, job.id).event_seq == job.event_seq


@pytest.mark.parametrize("remaining", [0, 1])
def test_the_last_page_has_no_cursor_even_when_exactly_limit_jobs_remain(session, remaining):
    # Given limit + remaining jobs
    limit = 3
    made = [make_job(session).id for _ in range(limit + remaining)]
    newest_first = made[::-1]

    # When the list is read page by page
    first = jobs.list_jobs(session, limit=limit)
    assert [j.id for j in first.jobs] == newest_first[:limit]
    if not remaining:
        # Then a full last page has no cursor: no request ends on an empty page
        assert first.next_cursor is None
        return
    assert first.next_cursor is not None
    second = jobs.list_jobs(session, limit=limit, cursor=first.next_cursor)
    assert [j.id for j in second.jobs] == newest_first[limit:]
    assert second.next_cursor is None


def test_a_page_holds_fifty_jobs_unless_the_caller_says_otherwise(session):
    made = [make_job(session).id for _ in range(51)]

    first = jobs.list_jobs(session)
    assert [j.id for j in first.jobs] == made[:0:-1] and first.next_cursor is not None
    rest = jobs.list_jobs(session, cursor=first.next_cursor)
    assert ([j.id for j in rest.jobs], rest.next_cursor) == ([made[0]], None)


def test_a_stage_completed_twice_at_once_records_once(services, session):
    for _ in range(ROUNDS // 2):
        # Given a running stage delivered to two workers
        job = make_job(session, stages=["extraction", "analysis"])
        runs.start_stage(session, job.id, "extraction")
        # When both complete it at the same time
        first, second = race(
            services,
            lambda s, j=job.id: runs.complete_stage(s, j, "extraction", {"text": "one"}),
            lambda s, j=job.id: runs.complete_stage(s, j, "extraction", {"text": "two"}),
        )
        # Then one result is stored, with one event, and the job goes on
        assert sorted([first, second]) == [False, True]
        job = reload(session, job.id)
        assert job.runs[0].result == {"text": "one" if first else "two"}
        assert outbox_event_types(session, job.id).count("job.stage_completed") == 1
        assert job.status == "processing"


def test_single_statement_transitions_race_cancel_and_each_other_all_or_nothing(services, session):
    # Given jobs whose stage is running, completed by two workers at once in autocommit (the
    # workers' one-statement transitions on PostgreSQL) while a client cancels
    outcomes: Counter[str] = Counter()
    while sum(outcomes.values()) < ROUNDS or len(outcomes) < 2:
        assert sum(outcomes.values()) < 5 * ROUNDS, f"one side never wins: {outcomes}"
        job = make_job(session, stages=["extraction", "analysis"])
        with services.database.transition() as s:
            assert runs.start_stage(s, job.id, "extraction") is not None
        first, second, cancel = race(
            services,
            lambda s, j=job.id: runs.complete_stage(s, j, "extraction", {"text": "one"}),
            lambda s, j=job.id: runs.complete_stage(s, j, "extraction", {"text": "two"}),
            lambda s, j=job.id: jobs.cancel_job(s, j),
            transitions=(0, 1),
        )
        # Then at most one completion applied, never with the cancel before it, and the job's
        # events are numbered 1..n with no gap, whatever was refused
        assert not (first and second)
        outcomes["completed" if first or second else "cancelled"] += 1
        stored = reload(session, job.id)
        seqs = list(session.scalars(select(OutboxEvent.seq).where(OutboxEvent.job_id == job.id)
                                    .order_by(OutboxEvent.id)))  # fmt: skip
        assert seqs == list(range(1, stored.event_seq + 1))
        types = outbox_event_types(session, job.id)
        assert types.count("job.stage_completed") == int(first or second)
        assert cancelled(cancel) and stored.status == "cancelled"
        assert types[-1] == "job.cancelled"


def test_a_duplicate_complete_stage_records_once_and_keeps_the_first_result(session):
    job = make_job(session, stages=["extraction"])
    runs.start_stage(session, job.id, "extraction")
    assert runs.complete_stage(session, job.id, "extraction", {"text": "first"})
    assert not runs.complete_stage(session, job.id, "extraction", {"text": "second"})
    job = reload(session, job.id)
    assert job.runs[0].result == {"text": "first"}
    assert outbox_event_types(session, job.id) == [
        "job.created",
        "job.stage_started",
        "job.stage_completed",
        "job.completed",
    ]


def test_a_finished_stage_redelivered_is_not_started_again(session):
    job = make_job(session, stages=["extraction", "analysis"])
    runs.start_stage(session, job.id, "extraction")
    runs.complete_stage(session, job.id, "extraction", {"text": "x"})
    assert runs.start_stage(session, job.id, "extraction") is None
    assert reload(session, job.id).runs[0].attempts == 1


def test_a_completed_stage_whose_next_stage_never_began_hands_back_the_rest_of_its_chain(session):
    # Given extraction completed, and its worker died before it sent the analysis
    job = make_job(session)
    runs.start_stage(session, job.id, "extraction")
    runs.complete_stage(session, job.id, "extraction", {"text": "x"})

    # When the extraction is delivered again, it is refused and hands back the stages after it
    assert runs.start_stage(session, job.id, "extraction") is None
    unsent = runs.unsent_rest(session, job.id, "extraction")
    assert unsent is not None
    stored, rest = unsent
    assert stored.id == job.id
    assert [(r.name, r.task_id) for r in rest] == [(r.name, r.task_id) for r in job.runs[1:]]

    # But once the analysis began, the chain went on: nothing is handed back
    runs.start_stage(session, job.id, "analysis")
    assert runs.unsent_rest(session, job.id, "extraction") is None


def test_no_rest_is_handed_back_for_an_unfinished_stage_or_a_finished_job(session):
    running = make_job(session)
    runs.start_stage(session, running.id, "extraction")
    cancelled_job = make_job(session)
    runs.start_stage(session, cancelled_job.id, "extraction")
    runs.complete_stage(session, cancelled_job.id, "extraction", {"text": "x"})
    jobs.cancel_job(session, cancelled_job.id)
    done = make_job(session, stages=["extraction"])
    runs.start_stage(session, done.id, "extraction")
    runs.complete_stage(session, done.id, "extraction", {"text": "x"})

    assert runs.unsent_rest(session, running.id, "extraction") is None
    two_stages = make_job_in(session, "processing", stages=["extraction", "analysis"])
    assert runs.unsent_rest(session, two_stages.id, "enrichment") is None  # not one of its stages
    assert runs.unsent_rest(session, cancelled_job.id, "extraction") is None
    assert runs.unsent_rest(session, done.id, "extraction") is None
    assert runs.unsent_rest(session, "9e2c4c1e-0000-4000-8000-000000000000", "extraction") is None


def test_only_a_retried_provider_failure_counts_toward_the_retries_not_a_rerun(session):
    # Given an extraction started three times (a redelivery, then a duplicate)
    job = make_job(session)
    for _ in range(3):
        runs.start_stage(session, job.id, "extraction")
    assert runs.provider_failures(session, job.id, "extraction") == 0

    # When its provider fails and the failure is retried
    assert runs.record_retry(session, job.id, "extraction", "Provider timeout", 0.5)
    runs.start_stage(session, job.id, "extraction")

    # Then one failure counts, while every start is an attempt
    assert runs.provider_failures(session, job.id, "extraction") == 1
    assert reload(session, job.id).runs[0].attempts == 4


def test_start_stage_is_refused_after_cancel(session):
    # Given a cancelled job
    job = make_job(session)
    jobs.cancel_job(session, job.id)
    before = outbox_event_types(session, job.id)
    # When its first stage is delivered anyway
    assert runs.start_stage(session, job.id, "extraction") is None
    # Then nothing is recorded and the job stays cancelled
    assert outbox_event_types(session, job.id) == before
    job = reload(session, job.id)
    assert job.status == "cancelled"
    assert [run.status for run in job.runs] == ["skipped"] * 3


def test_start_stage_is_refused_on_completed_and_failed_jobs(session):
    done = make_job(session, stages=["extraction"])
    runs.start_stage(session, done.id, "extraction")
    runs.complete_stage(session, done.id, "extraction", {"text": "x"})
    failed = make_job(session, stages=["extraction", "analysis"])
    runs.fail_stage(session, failed.id, "extraction", "boom")
    assert runs.start_stage(session, done.id, "extraction") is None
    assert runs.start_stage(session, failed.id, "analysis") is None
    assert reload(session, done.id).status == "completed"
    assert reload(session, failed.id).status == "failed"


def test_fail_stage_keeps_earlier_results_and_skips_later_stages(session):
    # Given extraction completed and analysis running
    job = make_job(session)
    runs.start_stage(session, job.id, "extraction")
    runs.complete_stage(session, job.id, "extraction", {"text": "hello"})
    runs.start_stage(session, job.id, "analysis")
    # When analysis fails for good
    assert runs.fail_stage(session, job.id, "analysis", "Provider timeout")
    # Then extraction keeps its result, enrichment never runs, the job says why it failed
    job = reload(session, job.id)
    extraction, analysis, enrichment = job.runs
    assert (extraction.status, extraction.result) == ("completed", {"text": "hello"})
    assert (analysis.status, analysis.error) == ("failed", "Provider timeout")
    assert enrichment.status == "skipped"
    assert (job.status, job.error_stage, job.error_message) == (
        "failed",
        "analysis",
        "Provider timeout",
    )
    assert outbox_event_types(session, job.id)[-1] == "job.failed"
    # And a second failure report (another delivery) changes nothing
    assert not runs.fail_stage(session, job.id, "analysis", "again")
    assert outbox_event_types(session, job.id).count("job.failed") == 1


def test_a_completed_stage_cannot_be_failed_and_its_job_goes_on(session):
    # Given extraction completed and the job processing
    job = make_job(session)
    runs.start_stage(session, job.id, "extraction")
    runs.complete_stage(session, job.id, "extraction", {"text": "hello"})
    before = outbox_event_types(session, job.id)

    # When a failure is reported for the extraction (a stale copy that ran out of attempts)
    assert not runs.fail_stage(session, job.id, "extraction", "Provider timeout")

    # Then nothing changed: the stage keeps its result, the job is still processing
    job = reload(session, job.id)
    assert job.status == "processing"
    assert (job.error_stage, job.error_message) == (None, None)
    assert [(r.status, r.error) for r in job.runs] == [
        ("completed", None),
        ("pending", None),
        ("pending", None),
    ]
    assert job.runs[0].result == {"text": "hello"}
    assert outbox_event_types(session, job.id) == before


def test_a_late_result_after_failure_is_discarded(session):
    job = make_job(session, stages=["extraction", "analysis"])
    runs.start_stage(session, job.id, "extraction")
    runs.fail_stage(session, job.id, "extraction", "boom")
    assert not runs.complete_stage(session, job.id, "extraction", {"text": "late"})
    assert reload(session, job.id).runs[0].result is None


def test_a_pending_job_can_fail_before_any_stage_started(session):
    job = make_job(session)
    assert runs.fail_stage(session, job.id, "extraction", "Internal error: KeyError")
    job = reload(session, job.id)
    assert job.status == "failed"
    assert [run.status for run in job.runs] == ["failed", "skipped", "skipped"]


@pytest.mark.parametrize("status", STATUSES)
def test_every_status_is_reached_by_the_service_layers_own_steps(session, status):
    job = make_job_in(session, status, at="analysis")
    assert job.status == status
    runs_by_status = [run.status for run in job.runs]
    assert (
        runs_by_status
        == {
            "pending": ["pending"] * 3,
            "processing": ["completed", "started", "pending"],
            "completed": ["completed"] * 3,
            "failed": ["completed", "failed", "skipped"],
            "cancelled": ["completed", "cancelled", "skipped"],
        }[status]
    )
    assert (
        outbox_event_types(session, job.id)[-1]
        == {
            "pending": "job.created",
            "processing": "job.stage_started",
            "completed": "job.completed",
            "failed": "job.failed",
            "cancelled": "job.cancelled",
        }[status]
    )


def test_a_create_under_a_used_key_replays_its_job_and_stores_nothing_new(any_session):
    session = any_session
    body = {"document_name": "n", "document_type": "t", "document_content": "c"}
    request = IdempotentRequest.of("key-1", {**body, "stages": ["extraction"]}, ttl=60)

    first = jobs.create_job_once(session, request, stages=["extraction"], **body)
    again = jobs.create_job_once(session, request, stages=["extraction"], **body)

    assert (first.replayed, again.replayed) == (False, True)
    assert again.job.id == first.job.id and again.job.status == "pending"
    assert session.scalar(select(func.count()).select_from(Job)) == 1
    assert outbox_event_types(session, first.job.id) == ["job.created"]


def test_a_key_belongs_to_its_tenant_and_another_body_under_it_is_refused(any_session):
    session = any_session
    body = {"document_name": "n", "document_type": "t", "document_content": "c"}
    request = IdempotentRequest.of("key-1", body, ttl=60)
    acme = jobs.create_job_once(session, request, tenant="acme", stages=["extraction"], **body)

    # Another tenant's request under the same key is its own
    globex = jobs.create_job_once(session, request, tenant="globex", stages=["extraction"], **body)
    assert not globex.replayed and globex.job.id != acme.job.id
    assert (acme.job.tenant_id, globex.job.tenant_id) == ("acme", "globex")
    # The same key with another body is refused, and stores nothing
    other = IdempotentRequest.of("key-1", {**body, "document_name": "m"}, ttl=60)
    with pytest.raises(IdempotencyMismatchError):
        jobs.create_job_once(session, other, tenant="acme", stages=["extraction"], **body)
    assert session.scalar(select(func.count()).select_from(Job)) == 2


def test_a_create_is_one_statement_on_postgresql_and_stores_all_its_rows(services, session):
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        if not statement.startswith("PREPARE"):  # once per connection
            statements.append(statement)

    body: dict[str, Any] = {
        "document_name": "n",
        "document_type": "t",
        "stages": ["extraction", "analysis"],
    }
    upload = jobs.DocumentFile(b"%PDF-1.4 bytes", "application/pdf", "a.pdf")
    request = IdempotentRequest.of("key-1", body, ttl=60)
    engine = services.database.read_engine  # the autocommit pool of Database.transition()
    sa_event.listen(engine, "before_cursor_execute", count)
    try:
        with services.database.transition() as connection:
            plain = jobs.create_job(connection, tenant="acme", **body)
        with services.database.transition() as connection:
            keyed = jobs.create_job_once(
                connection, request, tenant="acme", document_file=upload, **body
            ).job
    finally:
        sa_event.remove(engine, "before_cursor_execute", count)

    assert len(statements) == 2, statements
    for job in (plain, keyed):
        stored = jobs.get_job(session, job.id, "acme")
        assert [(r.name, r.status, r.task_id) for r in stored.runs] == [
            (r.name, "pending", r.task_id) for r in job.runs
        ]
        assert (stored.status, stored.event_seq, stored.dispatched_at) == (
            "pending",
            1,
            job.created_at,
        )
        assert outbox_events(session, job.id) == [
            ("job.created", {"document_name": "n", "document_type": "t", "stages": body["stages"]})
        ]
    assert session.get(JobFile, keyed.id).content == upload.content
    assert session.get(JobFile, plain.id) is None
    key = session.get(IdempotencyKey, ("acme", "key-1"))
    assert (key.job_id, key.fingerprint) == (keyed.id, request.fingerprint)


def test_a_create_under_an_expired_key_takes_the_key_over(session):
    body = {"document_name": "n", "document_type": "t", "document_content": "c"}
    request = IdempotentRequest.of("key-1", body, ttl=60)
    first = jobs.create_job_once(session, request, stages=["extraction"], **body)
    session.execute(update(IdempotencyKey).values(expires_at=utcnow() - timedelta(seconds=1)))
    session.commit()

    other = IdempotentRequest.of("key-1", {**body, "document_name": "m"}, ttl=60)
    second = jobs.create_job_once(session, other, stages=["extraction"], **body)

    assert not second.replayed and second.job.id != first.job.id
    key = session.get(IdempotencyKey, ("", "key-1"))
    assert (key.job_id, key.fingerprint) == (second.job.id, other.fingerprint)
    assert key.expires_at > utcnow()


def test_the_provider_choices_give_each_stage_its_default_and_the_names_a_job_may_use():
    configured = {"extraction": "slow", "analysis": "simulated", "enrichment": "default"}

    choices = jobs.provider_choices(configured)

    assert list(choices) == list(configured)
    assert [choice["default"] for choice in choices.values()] == list(configured.values())
    assert {"fast", "slow", "default"} <= set(choices["extraction"]["available"])
    # Every name listed is one a job may choose for its stage, and only those are
    stages = list(configured)
    for stage, choice in choices.items():
        assert not [
            name for name in choice["available"] if jobs.provider_problems(stages, {stage: name})
        ]
    assert jobs.provider_problems(stages, {"analysis": "no-such-provider"})


@pytest.mark.parametrize("keyed", [False, True], ids=["plain", "under-a-key"])
def test_a_create_stores_the_job_its_runs_its_file_and_one_event(any_session, keyed):
    # (on PostgreSQL one statement, on SQLite the portable inserts: the same rows)
    session = any_session
    body: dict[str, Any] = {
        "document_name": "n",
        "document_type": "t",
        "stages": ["extraction", "analysis"],
        "providers": {"analysis": "simulated"},
    }
    upload = jobs.DocumentFile(b"%PDF-1.4 bytes", "application/pdf", "a.pdf")
    request = IdempotentRequest.of("key-1", body, ttl=60)

    if keyed:
        created = jobs.create_job_once(
            session, request, tenant="acme", document_file=upload, **body
        ).job
    else:
        created = jobs.create_job(session, tenant="acme", document_file=upload, **body)

    stored = session.get(Job, created.id)
    assert (stored.document_name, stored.document_type, stored.document_content) == ("n", "t", "")
    assert (stored.stages, stored.providers, stored.tenant_id) == (
        ["extraction", "analysis"],
        {"analysis": "simulated"},
        "acme",
    )
    assert (stored.status, stored.event_seq, stored.error_stage, stored.error_message) == (
        "pending",
        1,
        None,
        None,
    )
    # Claimed for dispatch at its creation: the relay leaves it to the caller
    assert stored.dispatched_at is not None and stored.dispatched_at == stored.created_at
    job = jobs.get_job(session, created.id, "acme")
    assert [(r.position, r.name, r.status, r.attempts, r.failures) for r in job.runs] == [
        (0, "extraction", "pending", 0, 0),
        (1, "analysis", "pending", 0, 0),
    ]
    assert [r.task_id for r in job.runs] == [r.task_id for r in created.runs]
    assert {r.job_id for r in job.runs} == {created.id}
    assert len({r.task_id for r in job.runs}) == 2
    file = session.get(JobFile, created.id)
    assert (file.content, file.content_type, file.filename, file.size) == (
        upload.content,
        "application/pdf",
        "a.pdf",
        len(upload.content),
    )
    events = session.execute(
        select(OutboxEvent.seq, OutboxEvent.event_type, OutboxEvent.payload).where(
            OutboxEvent.job_id == created.id
        )
    ).all()
    assert [tuple(e) for e in events] == [
        (1, "job.created", {"document_name": "n", "document_type": "t", "stages": body["stages"]})
    ]
    if keyed:
        key = session.get(IdempotencyKey, ("acme", "key-1"))
        assert (key.job_id, key.fingerprint) == (created.id, request.fingerprint)


@pytest.mark.parametrize(
    ("stages", "providers", "message"),
    [
        (["analysis"], None, "Invalid stage combination ['analysis']."),
        (
            ["extraction"],
            {"analysis": "simulated"},
            "Providers given for stage 'analysis', which the job does not run; its stages are: "
            "extraction.",
        ),
    ],
)
def test_a_refused_create_says_why_and_stores_nothing(any_session, stages, providers, message):
    with pytest.raises(InvalidPipelineError) as refused:
        jobs.create_job(
            any_session,
            document_name="n",
            document_type="t",
            document_content="c",
            stages=stages,
            providers=providers,
        )
    assert str(refused.value) == message
    assert any_session.scalar(select(func.count()).select_from(Job)) == 0


def test_bad_provider_choices_are_each_named_with_the_valid_ones(any_session):
    with pytest.raises(InvalidPipelineError) as refused:
        jobs.create_job(
            any_session,
            document_name="n",
            document_type="t",
            document_content="c",
            stages=["extraction", "analysis"],
            providers={"enrichment": "simulated", "analysis": "no-such-provider"},
        )

    valid = ", ".join(registry.available("analysis"))
    assert "," in valid
    assert str(refused.value) == (
        "Providers given for stage 'enrichment', which the job does not run; its stages are: "
        "extraction, analysis. Unknown analysis provider 'no-such-provider'. Valid analysis "
        f"providers are: {valid}."
    )
