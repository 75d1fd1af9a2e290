"""The system's state as Prometheus gauges, read from PostgreSQL and Redis at each scrape.

Outbox backlog, active jobs, the events stream and its consumer groups, the broker's stage
queues and the dead-letter stream. Each source is read in one short round trip; a source that
does not answer is reported by `gateway_metrics_source_up` instead of failing the scrape.
"""

from __future__ import annotations

from collections.abc import Iterator

import redis
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from gateway.db import Database
from gateway.models import ACTIVE_JOB_STATUSES, JOBS, OUTBOX, JobStatus, utcnow
from gateway.stages import STAGES

_UNPUBLISHED = select(func.count(), func.min(OUTBOX.c.created_at)).where(
    OUTBOX.c.published_at.is_(None)
)
# One index range per status (ix_jobs_status_created_id): cheap whatever the table's size.
_ACTIVE = {
    status: select(func.count(), func.min(JOBS.c.updated_at)).where(JOBS.c.status == status)
    for status in ACTIVE_JOB_STATUSES
}


class SystemGauges(Collector):
    """Gauges of the shared state, the same whichever process serves them."""

    def __init__(
        self, database: Database, client: redis.Redis, stream: str, dead_letter_stream: str
    ) -> None:
        self.database = database
        self.client = client
        self.stream = stream
        self.dead_letter_stream = dead_letter_stream

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "gateway_metrics_source_up", "Whether a source answered this scrape.", labels=["source"]
        )
        try:
            yield from self._database()
            up.add_metric(["database"], 1)
        except SQLAlchemyError:
            up.add_metric(["database"], 0)
        try:
            yield from self._redis()
            up.add_metric(["redis"], 1)
        except redis.RedisError:
            up.add_metric(["redis"], 0)
        yield up

    def _database(self) -> list[Metric]:
        now = utcnow()
        with self.database.reader() as session:
            backlog, oldest = session.execute(_UNPUBLISHED).one()
            active = {status: session.execute(q).one() for status, q in _ACTIVE.items()}
        unpublished = GaugeMetricFamily(
            "gateway_outbox_unpublished_events", "Outbox events not yet appended to the stream."
        )
        unpublished.add_metric([], backlog)
        age = GaugeMetricFamily(
            "gateway_outbox_oldest_unpublished_age_seconds",
            "Age of the oldest outbox event not yet appended (0 when there is none).",
        )
        age.add_metric([], (now - oldest).total_seconds() if oldest else 0.0)
        jobs = GaugeMetricFamily(
            "gateway_jobs_active", "Jobs pending or processing.", labels=["status"]
        )
        idle = GaugeMetricFamily(
            "gateway_jobs_processing_idle_seconds",
            "Time since the least recently moved processing job last changed (0 when none).",
        )
        for status, (count, _) in active.items():
            jobs.add_metric([status], count)
        least_recent = active[JobStatus.PROCESSING.value][1]
        idle.add_metric([], (now - least_recent).total_seconds() if least_recent else 0.0)
        return [unpublished, age, jobs, idle]

    def _redis(self) -> list[Metric]:
        pipe = self.client.pipeline(transaction=False)
        pipe.xlen(self.stream)
        pipe.xlen(self.dead_letter_stream)
        for queue in STAGES:
            pipe.llen(queue)
        stream_length, dead, *queued = pipe.execute()
        try:
            groups = self.client.xinfo_groups(self.stream)
        except redis.ResponseError:  # no stream yet, hence no group
            groups = []
        length = GaugeMetricFamily("gateway_events_stream_length", "Entries in the events stream.")
        length.add_metric([], stream_length)
        letters = GaugeMetricFamily(
            "gateway_dead_letter_entries", "Entries in the dead-letter stream."
        )
        letters.add_metric([], dead)
        depth = GaugeMetricFamily(
            "gateway_broker_queue_depth",
            "Stage messages waiting in each stage's queue.",
            labels=["queue"],
        )
        for queue, count in zip(STAGES, queued, strict=True):
            depth.add_metric([queue], count)
        pending = GaugeMetricFamily(
            "gateway_consumer_group_pending",
            "Entries delivered to a consumer group and not yet acknowledged.",
            labels=["group"],
        )
        lag = GaugeMetricFamily(
            "gateway_consumer_group_lag",
            "Entries of the stream a consumer group has not read yet (Redis 7 and later).",
            labels=["group"],
        )
        for group in groups:
            pending.add_metric([group["name"]], group["pending"])
            if group.get("lag") is not None:
                lag.add_metric([group["name"]], group["lag"])
        return [length, letters, depth, pending, lag]
