"""Transactional outbox: record events with the change they report, then append them to the stream.

`record` adds an outbox row in the caller's transaction. After that transaction commits, the
publisher appends the job's pending rows right away; whatever could not be appended (Redis
down, a process that died between commit and append) is left for the relay's `publish_pending`.
Per job, rows are appended in id order, which is commit order because every writer locks the
job row before it inserts an event. Appending claims the rows first (one UPDATE), so two
publishers never interleave one job's events; an append whose commit fails is retried, hence
at-least-once delivery with `event_id` to spot duplicates.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any, cast

import redis
from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, sessionmaker

from events.model import Event
from events.outage import Outage
from gateway.models import OutboxEvent, utcnow

log = logging.getLogger(__name__)

_PENDING_JOBS = "outbox_pending_jobs"


def record(session: Session, event_type: str, job_id: str, payload: dict[str, Any]) -> None:
    """Add an event to the outbox in the caller's (uncommitted) transaction."""
    session.add(OutboxEvent(event_type=event_type, job_id=job_id, payload=payload))
    session.info.setdefault(_PENDING_JOBS, set()).add(job_id)


class StreamPublisher:
    """Appends committed outbox rows to the events stream, trimmed to an approximate bound."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        client: redis.Redis,
        stream: str,
        maxlen: int,
    ) -> None:
        self.sessions = sessions
        self.client = client
        self.stream = stream
        self.maxlen = maxlen
        self.outage = Outage(log, "events stream")

    def publish_job(self, job_id: str) -> int:
        """Append `job_id`'s unpublished events in order; return how many were appended."""
        with self.sessions() as session, session.begin():
            rows = session.execute(
                update(OutboxEvent)
                .where(OutboxEvent.job_id == job_id, OutboxEvent.published_at.is_(None))
                .values(published_at=utcnow())
                .returning(
                    OutboxEvent.id,
                    OutboxEvent.event_id,
                    OutboxEvent.event_type,
                    OutboxEvent.payload,
                    OutboxEvent.created_at,
                )
                .execution_options(synchronize_session=False)
            ).all()
            if not rows:
                return 0
            pipe = self.client.pipeline(transaction=False)
            for row in sorted(rows, key=lambda r: r.id):
                entry = Event(
                    event_type=row.event_type,
                    job_id=job_id,
                    payload=row.payload,
                    event_id=row.event_id,
                    timestamp=row.created_at,
                )
                fields: dict[Any, Any] = entry.to_fields()
                pipe.xadd(self.stream, fields, maxlen=self.maxlen, approximate=True)
            # A failure here rolls the claim back: the rows stay pending for the relay.
            pipe.execute()
            return len(rows)

    def publish_pending(self, batch: int = 200) -> int:
        """Relay pass: append every job's leftover events; return how many were appended."""
        with self.sessions() as session:
            job_ids = session.scalars(
                select(OutboxEvent.job_id)
                .where(OutboxEvent.published_at.is_(None))
                .order_by(OutboxEvent.id)
                .limit(batch)
            ).all()
        appended = 0
        for job_id in dict.fromkeys(job_ids):
            appended += self.try_publish_job(job_id)
            if self.outage.is_down:
                break  # the other jobs would fail the same way; the next pass tries again
        return appended

    def purge_published(self, older_than: timedelta) -> int:
        """Delete rows appended to the stream more than `older_than` ago; return how many."""
        cutoff = utcnow() - older_than
        with self.sessions() as session, session.begin():
            result = session.execute(
                delete(OutboxEvent).where(OutboxEvent.published_at < cutoff),
                execution_options={"synchronize_session": False},
            )
        return cast(CursorResult[Any], result).rowcount

    def try_publish_job(self, job_id: str) -> int:
        """`publish_job`, logging a Redis outage once instead of raising."""
        started = time.monotonic()
        try:
            appended = self.publish_job(job_id)
        except redis.RedisError as exc:
            self.outage.down(exc, started)
            return 0
        self.outage.up(started)
        return appended

    def publish_after_commit(self) -> None:
        """Append each committed transaction's events right away (the relay covers failures)."""
        sa_event.listen(self.sessions, "after_commit", self._after_commit)
        sa_event.listen(self.sessions, "after_rollback", _forget_pending)

    def _after_commit(self, session: Session) -> None:
        job_ids = session.info.pop(_PENDING_JOBS, ())
        if not self.outage.worth_trying():
            return  # the relay retries; do not make every request wait on a dead Redis
        for job_id in job_ids:
            self.try_publish_job(job_id)


def _forget_pending(session: Session) -> None:
    session.info.pop(_PENDING_JOBS, None)
