"""Builds a job's chain of stage tasks, dispatches it once, and revokes what has not run."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from celery import Celery, chain
from celery.canvas import Signature
from kombu.exceptions import OperationalError

from events.outage import Outage
from gateway import jobs
from gateway.db import Database
from gateway.models import Job, StageRun, StageStatus, utcnow
from tasks.stages import task_name

log = logging.getLogger(__name__)

# A worker publishes the next stage when one completes. If Redis is restarting then, the
# publish must wait for it (about 75 s at most) rather than fail the job; the API's first
# publish keeps the short task_publish_retry_policy, the relay dispatching what it refused.
NEXT_STAGE_RETRY = {
    "max_retries": 40,
    "interval_start": 0.5,
    "interval_step": 0.5,
    "interval_max": 2.0,
}


def build_chain(
    celery: Celery, job: Job, providers: dict[str, str], runs: list[StageRun] | None = None
) -> Signature:
    """Immutable signatures, one per stage (or per run of `runs`), with the runs' task ids.

    The tasks are looked up on `celery` itself: the shared-task proxies resolve to whichever
    app is current, which in a process holding several apps need not be this one.
    """
    return chain(
        *(
            celery.tasks[task_name(run.name)]
            .si(job.id, providers[run.name])
            .set(task_id=run.task_id, **({"retry_policy": NEXT_STAGE_RETRY} if i else {}))
            for i, run in enumerate(job.runs if runs is None else runs)
        )
    )


class Pipeline:
    """Hands jobs to Celery; the API and the relay both use it."""

    def __init__(self, celery: Celery, database: Database, providers: dict[str, str]) -> None:
        self.celery = celery
        self.database = database
        self.providers = providers
        self.outage = Outage(log, "broker")

    def dispatch(self, job_id: str) -> bool:
        """Send the job's chain unless already sent; False (job stays pending) if the broker is down.

        The claim and the send share one transaction: a refused send rolls the claim back
        for the relay to retry, and the claim stops a second dispatch of the same job.
        """
        try:
            with self.database.session() as session, session.begin():
                job = jobs.claim_dispatch(session, job_id)
                if job is None:
                    return False
                build_chain(self.celery, job, self.providers).apply_async()
        except OperationalError as exc:
            self.outage.down(exc)
            return False
        self.outage.up()
        return True

    def dispatch_undispatched(self, grace: float) -> int:
        """Relay pass: dispatch jobs left pending for `grace` seconds without a chain."""
        with self.database.session() as session:
            job_ids = jobs.undispatched_job_ids(
                session, created_before=utcnow() - timedelta(seconds=grace)
            )
        return sum(self.dispatch(job_id) for job_id in job_ids)

    def resume_stalled(self, bound_seconds: float) -> int:
        """Relay pass: resend the unfinished stages of jobs left processing for `bound_seconds`.

        Covers a next stage never sent (a worker whose complete_stage committed but whose
        connection dropped before it heard back) and a final failure the database could not
        record. Each resend reuses the runs' task ids, so a cancel still revokes it; a
        duplicate is harmless, since start_stage refuses a finished stage.
        """
        bound = utcnow() - timedelta(seconds=bound_seconds)
        with self.database.session() as session:
            job_ids = jobs.stalled_job_ids(session, updated_before=bound)
        return sum(self._resume(job_id, bound, bound_seconds) for job_id in job_ids)

    def _resume(self, job_id: str, bound: datetime, idle: float) -> bool:
        """Claim one stalled job and send its chain from the first unfinished stage, together."""
        try:
            with self.database.session() as session, session.begin():
                job = jobs.claim_stalled(session, job_id, updated_before=bound)
                if job is None:
                    return False  # finished, cancelled, or claimed by another relay meanwhile
                done = StageStatus.COMPLETED.value
                first = next((i for i, run in enumerate(job.runs) if run.status != done), None)
                if first is None:
                    return False
                rest = job.runs[first:]
                build_chain(self.celery, job, self.providers, rest).apply_async()
                log.warning(
                    "job %s processing but idle for over %g s: resent its stages from %s",
                    job_id,
                    idle,
                    rest[0].name,
                )
        except OperationalError as exc:
            self.outage.down(exc)
            return False
        self.outage.up()
        return True

    def revoke(self, task_ids: list[str]) -> None:
        """Ask the workers to drop these stage tasks; stages also check the job status themselves."""
        if not task_ids:
            return
        try:
            self.celery.control.revoke(task_ids)
        except OperationalError as exc:
            log.warning("could not broadcast revoke of %d tasks: %s", len(task_ids), exc)
