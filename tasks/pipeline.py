"""Builds a job's chain of stage tasks, sends it once, revokes what has not run, and meters the queues."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta

import redis
from celery import Celery
from celery.canvas import Signature
from kombu.exceptions import OperationalError
from sqlalchemy.exc import SQLAlchemyError

from events.outage import Outage
from gateway import dispatch
from gateway.db import Database
from gateway.jobs import JobSnapshot, RunSnapshot
from gateway.models import StageStatus, utcnow
from gateway.stages import STAGES
from tasks.broker import held_task_ids
from tasks.stages import task_name

log = logging.getLogger(__name__)

QUEUE_CHECK_INTERVAL = 0.5  # seconds a process reuses its reading of the queues' length

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
    celery: Celery,
    job: JobSnapshot,
    providers: dict[str, str],
    runs: list[RunSnapshot] | None = None,
) -> Signature:
    """The first stage's signature, carrying the rest of the chain, with the runs' task ids.

    Each stage names its provider: the job's choice (`job.providers`), else `providers`.

    Immutable signatures, one per stage (or per run of `runs`). The rest rides in the first
    message's `chain` option, as Celery's own chain would put it (next stage last), without the
    canvas's cloning and freezing on every send. The tasks are looked up on `celery` itself:
    the shared-task proxies resolve to whichever app is current, which in a process holding
    several apps need not be this one.
    """
    chosen = {**providers, **(job.providers or {})}  # the job's own choice wins
    first, *rest = (
        celery.tasks[task_name(run.name)]
        .si(job.id, chosen[run.name])
        .set(
            task_id=run.task_id,
            **({"retry_policy": NEXT_STAGE_RETRY} if i else {}),
            **_LEAN_PUBLISH,
            argsrepr=repr([job.id, chosen[run.name]]),
        )
        for i, run in enumerate(job.runs if runs is None else runs)
    )
    return first.set(chain=rest[::-1])


# Spared on every publish, the API's and each stage's: kombu binding a copy of the queue to
# declare it (a stage goes to the anonymous exchange, which delivers to the queue's list
# whether or not it was declared; the workers declare their queues), and Celery's `saferepr`
# of the arguments, which for two short strings is their plain `repr` (Flower shows it).
_LEAN_PUBLISH = {"declare": [], "kwargsrepr": "{}"}


class Pipeline:
    """Hands jobs to Celery outside any transaction; the API and the relay both use it."""

    def __init__(
        self,
        celery: Celery,
        database: Database,
        providers: dict[str, str],
        *,
        client: redis.Redis,
        outage: Outage,
        max_queued: int,
    ) -> None:
        self.celery = celery
        self.database = database
        self.providers = providers
        self.client = client
        self.outage = outage
        self.max_queued = max_queued
        self._queued = (0.0, 0)  # (when read, stage messages waiting)
        self._lock = threading.Lock()
        self._missing: dict[str, str] = {}  # job id -> task id the last lost-stage pass missed

    def has_room(self) -> bool:
        """Whether fewer than `max_queued` stage messages wait in the queues.

        Read at most every QUEUE_CHECK_INTERVAL seconds per process. While Redis is down
        there is room: jobs then wait pending in the database, which is what outages are for.
        """
        now = time.monotonic()
        with self._lock:
            read_at, queued = self._queued
            if not self.outage.worth_trying():
                return True
            if now - read_at < QUEUE_CHECK_INTERVAL:
                return queued < self.max_queued
            self._queued = (now, queued)  # one reader at a time; the others use the last value
        try:
            pipe = self.client.pipeline(transaction=False)
            for queue in STAGES:
                pipe.llen(queue)
            queued = sum(pipe.execute())
        except redis.RedisError as exc:
            self.outage.down(exc, now)
            return True
        with self._lock:
            self._queued = (now, queued)
        return queued < self.max_queued

    def start(self, job: JobSnapshot, runs: list[RunSnapshot] | None = None) -> bool:
        """Send the chain of a job claimed for dispatch (or `runs`, the rest of it); never raises.

        If the broker refuses it, a pending job goes back to the relay (`release_dispatch`);
        a job that is already processing is resent by the next stalled-job sweep.
        """
        if self._send(build_chain(self.celery, job, self.providers, runs)):
            return True
        try:
            with self.database.session() as session:
                dispatch.release_dispatch(session, job.id)
        except SQLAlchemyError as exc:
            log.warning("job %s neither sent nor released (%s); the stalled-job sweep resends it",
                        job.id, exc, extra={"job_id": job.id})  # fmt: skip
        return False

    def dispatch(self, job_id: str) -> bool:
        """Claim a pending job no chain was sent for and send it; False if claimed or refused."""
        with self.database.session() as session:
            job = dispatch.claim_dispatch(session, job_id)
        if job is None or not self.start(job):
            return False
        log.info("job sent to the workers by the relay", extra={"job_id": job_id})
        return True

    def dispatch_undispatched(self, grace: float) -> int:
        """Relay pass: dispatch jobs left pending for `grace` seconds without a chain."""
        if not self.outage.worth_trying():
            return 0
        with self.database.session() as session:
            job_ids = dispatch.undispatched_job_ids(
                session, created_before=utcnow() - timedelta(seconds=grace)
            )
        return sum(self.dispatch(job_id) for job_id in job_ids)

    def resume_stalled(self, bound_seconds: float) -> int:
        """Relay pass: resend the unfinished stages of active jobs idle for `bound_seconds`.

        Covers a chain stored but never sent (a process that died right after the commit), a
        next stage never sent (a worker whose complete_stage committed but whose connection
        dropped before it heard back) and a final failure the database could not record.
        Each resend reuses the runs' task ids, so a cancel still revokes it; a duplicate is
        harmless, since start_stage refuses a finished stage.
        """
        if not self.outage.worth_trying():
            return 0
        bound = utcnow() - timedelta(seconds=bound_seconds)
        with self.database.session() as session:
            job_ids = dispatch.stalled_job_ids(session, updated_before=bound)
        return sum(self._resume(job_id, bound, bound_seconds) for job_id in job_ids)

    def resend_lost(self, bound_seconds: float) -> int:
        """Relay pass: resend the unfinished stages of active jobs idle for `bound_seconds` whose
        awaited stage message the broker holds nowhere, neither queued nor delivered.

        That is a message lost at the transport's pop (`tasks.broker`). A message is also
        missing for a moment while it is published, or popped by a live worker; so a job is
        resent only when two passes in a row missed the same message (a pass runs every few
        seconds). Should a message be missed that still existed, the resend is a duplicate,
        which start_stage turns away once either copy finished the stage.
        """
        if not self.outage.worth_trying():
            return 0
        bound = utcnow() - timedelta(seconds=bound_seconds)
        with self.database.session() as session:
            awaited = dispatch.awaited_messages(session, updated_before=bound)
        if not awaited:
            self._missing = {}
            return 0
        try:
            held = held_task_ids(self.client, STAGES)
        except redis.RedisError as exc:
            self.outage.down(exc)
            return 0
        missing = {job: task for job, task in awaited.items() if task not in held}
        confirmed = [job for job, task in missing.items() if self._missing.get(job) == task]
        self._missing = missing
        return sum(self._resume(job, bound, bound_seconds, lost=True) for job in confirmed)

    def _resume(self, job_id: str, bound: datetime, idle: float, *, lost: bool = False) -> bool:
        """Claim one stalled job, then send its chain from the first unfinished stage."""
        with self.database.session() as session:
            job = dispatch.claim_stalled(session, job_id, updated_before=bound)
        if job is None:
            return False  # finished, cancelled, or claimed by another relay meanwhile
        done = StageStatus.COMPLETED.value
        rest = [run for run in job.runs if run.status != done]
        if not rest or not self._send(build_chain(self.celery, job, self.providers, rest)):
            return False
        log.warning(
            "job %s %s but idle for over %g s%s: resent its stages from %s",
            job_id,
            job.status,
            idle,
            ", its stage message held nowhere by the broker" if lost else "",
            rest[0].name,
            extra={"job_id": job_id, "stage": rest[0].name},
        )
        return True

    def _send(self, signature: Signature) -> bool:
        """Publish a chain; False, with the outage noted, if the broker is unreachable."""
        if not self.outage.worth_trying():
            return False
        started = time.monotonic()
        try:
            signature.apply_async()
        except OperationalError as exc:
            self.outage.down(exc, started)
            return False
        except Exception:  # called after a commit: the job is stored, the sweeps resend it
            log.exception("sending a chain failed")
            return False
        self.outage.up(started)
        return True

    def revoke(self, task_ids: list[str]) -> None:
        """Ask the workers to drop these stage tasks; stages also check the job status themselves."""
        if not task_ids:
            return
        try:
            self.celery.control.revoke(task_ids)
        except OperationalError as exc:
            log.warning("could not broadcast revoke of %d tasks: %s", len(task_ids), exc)
