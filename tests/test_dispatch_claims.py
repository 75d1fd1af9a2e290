"""Claims on sending a job's chain (gateway.dispatch): which jobs the relay's sweeps pick, and
that each chain is claimed once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway import dispatch, jobs, retries, runs
from gateway.models import utcnow
from tests.factories import make_job, make_job_in

MOMENT = timedelta(microseconds=1)


def create(session):
    """A job as the API stores it: pending, already claimed for its first send."""
    return jobs.create_job(
        session,
        document_name="n",
        document_type="t",
        document_content="c",
        stages=["extraction"],
    )


def test_a_new_job_is_stored_claimed_so_no_sweep_sends_it_a_second_time(session):
    job = create(session)
    assert job.dispatched_at is not None
    assert dispatch.claim_dispatch(session, job.id) is None
    assert dispatch.undispatched_job_ids(session, created_before=utcnow()) == []


def test_a_released_job_is_claimed_once_then_never_again(session):
    # Given two jobs whose sends the broker refused, handed back to the relay
    job, other = create(session), create(session)
    assert dispatch.release_dispatch(session, job.id)
    assert dispatch.release_dispatch(session, other.id)
    assert jobs.get_job(session, job.id).dispatched_at is None

    # When two sweeps claim one in turn, only the first gets it
    claimed = dispatch.claim_dispatch(session, job.id)
    assert claimed is not None and claimed.id == job.id and claimed.dispatched_at is not None
    assert dispatch.claim_dispatch(session, job.id) is None
    # And the other job is still there to claim
    assert jobs.get_job(session, other.id).dispatched_at is None


@pytest.mark.parametrize("status", ["processing", "completed", "failed", "cancelled"])
def test_only_a_pending_job_is_claimed_or_released(session, status):
    job = make_job_in(session, status)
    assert not dispatch.release_dispatch(session, job.id)
    assert dispatch.claim_dispatch(session, job.id) is None
    assert dispatch.undispatched_job_ids(session, created_before=utcnow()) == []


def test_the_undispatched_sweep_takes_released_jobs_older_than_its_bound_oldest_first(session):
    # Given two released jobs, a claimed one and a cancelled one
    first, second = make_job(session), make_job(session)
    create(session)
    jobs.cancel_job(session, make_job(session).id)

    # Then the sweep lists the released ones, oldest first, up to its limit
    ids = dispatch.undispatched_job_ids
    assert ids(session, created_before=utcnow()) == [first.id, second.id]
    assert ids(session, created_before=utcnow(), limit=1) == [first.id]
    # And none created at or after its bound
    assert ids(session, created_before=second.created_at) == [first.id]
    assert ids(session, created_before=first.created_at) == []


def test_the_stalled_sweep_takes_processing_and_claimed_pending_jobs_idle_past_its_bound(session):
    # Given one job in each status, and a claimed pending one
    by_status = {status: make_job_in(session, status) for status in ("pending", "processing")}
    for status in ("completed", "failed", "cancelled"):
        make_job_in(session, status)
    claimed = create(session)
    # and a job that was sent (claimed) and has completed since
    sent_and_done = create(session)
    runs.start_stage(session, sent_and_done.id, "extraction")
    assert runs.complete_stage(session, sent_and_done.id, "extraction", {"text": "x"})
    now = utcnow()

    # Then the sweep lists the processing job and the claimed pending one, least recent first
    stalled = dispatch.stalled_job_ids(session, updated_before=now)
    assert stalled == [by_status["processing"].id, claimed.id]
    assert dispatch.stalled_job_ids(session, updated_before=now, limit=1) == stalled[:1]
    # But not one touched at or after its bound
    processing = jobs.get_job(session, by_status["processing"].id)
    assert dispatch.stalled_job_ids(session, updated_before=processing.updated_at) == []
    assert dispatch.stalled_job_ids(session, updated_before=processing.updated_at + MOMENT) == [
        processing.id
    ]


def test_a_stalled_job_is_claimed_once_per_period_and_its_idle_clock_restarts(session):
    job, other = make_job_in(session, "processing"), make_job_in(session, "processing")
    bound = utcnow()

    claimed = dispatch.claim_stalled(session, job.id, updated_before=bound)

    assert claimed is not None and claimed.id == job.id
    assert claimed.updated_at >= bound
    assert dispatch.claim_stalled(session, job.id, updated_before=bound) is None
    # The other stalled job is left for its own claim
    assert dispatch.stalled_job_ids(session, updated_before=bound) == [other.id]


def test_a_job_touched_after_the_bound_is_not_claimed_as_stalled(session):
    job = make_job_in(session, "processing")
    assert dispatch.claim_stalled(session, job.id, updated_before=job.updated_at) is None
    assert jobs.get_job(session, job.id).updated_at == job.updated_at


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled", "pending"])
def test_a_finished_or_unclaimed_job_is_never_claimed_as_stalled(session, status):
    # A pending job made by the factory was handed back: no chain was sent, so none stalled
    job = make_job_in(session, status)
    assert dispatch.claim_stalled(session, job.id, updated_before=utcnow()) is None
    assert jobs.get_job(session, job.id).updated_at == job.updated_at


def test_each_idle_active_job_awaits_the_message_of_its_first_unfinished_stage(session):
    # Given a pending job (awaiting its extraction), one at its analysis, one that was retried
    # from its analysis (awaiting the new message), and finished ones
    pending = create(session)
    running = make_job_in(session, "processing", at="analysis")
    retried = make_job_in(session, "failed", at="analysis")
    retry = retries.retry_job(session, retried.id)
    for status in ("completed", "failed", "cancelled"):
        make_job_in(session, status)
    now = utcnow()

    # Then each active job idle past the bound is listed with the task id the broker must hold
    assert dispatch.awaited_messages(session, updated_before=now) == {
        pending.id: pending.runs[0].task_id,
        running.id: running.runs[1].task_id,
        retried.id: retry.rest[0].task_id,
    }
    assert len(dispatch.awaited_messages(session, updated_before=now, limit=2)) == 2
    # And none touched at or after the bound
    assert dispatch.awaited_messages(session, updated_before=pending.updated_at) == {}
