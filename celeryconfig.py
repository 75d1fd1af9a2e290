"""Celery settings, all taken from the gateway's Settings (nothing is read at import time)."""

from __future__ import annotations

from typing import Any

from kombu.entity import Queue

from gateway.config import Settings
from gateway.stages import STAGES


def from_settings(settings: Settings) -> dict[str, Any]:
    """Lowercase Celery configuration for these settings."""
    return {
        "broker_url": settings.redis_url,
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": settings.redis_timeout,
        "broker_transport_options": {
            # Above the longest retry countdown plus the longest stage run (checked in Settings),
            # else a stage still waiting or running would be delivered a second time.
            "visibility_timeout": settings.broker_visibility_timeout,
            # kombu sweeps unacked messages every ~100 s by default; a dead worker's stage
            # should come back soon after its visibility timeout instead.
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
            "socket_timeout": settings.redis_timeout,
            "socket_connect_timeout": settings.redis_timeout,
            "retry_on_timeout": True,
        },
        # The API must not hang on a dead broker: one quick retry, then the relay takes over.
        "task_publish_retry_policy": {
            "max_retries": 1,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.2,
        },
        # One queue per stage, named after it: CPU-heavy and I/O-bound stages can be served by
        # differently sized workers (`celery -A worker worker -Q extraction`), on other machines.
        "task_queues": [Queue(stage) for stage in STAGES],
        "task_routes": {f"gateway.{stage}": {"queue": stage} for stage in STAGES},
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "event_serializer": "json",
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # A stage running when the broker connection drops runs on. Celery 6 stops it (its
        # default for AMQP, whose broker requeues it at once), but on Redis an ack is an HDEL of
        # the shared `unacked` hash, good on any later connection: a stopped stage would only
        # come back after the whole visibility timeout (docs/resilience.md).
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "worker_prefetch_multiplier": 1,
        # The database is the source of truth: no result backend, no stored results.
        "task_ignore_result": True,
        "task_store_errors_even_if_ignored": False,
        # Providers honour STAGE_TIME_LIMIT themselves; this hard limit (prefork only) is a backstop.
        "task_time_limit": settings.hard_time_limit,
        # Flower's task views, opt-in: a few publishes per stage, which Flower and Redis then
        # process too (about a fifth of a job's CPU). Flower asks for them only when on
        # (gateway.launcher); task-sent events also list queued stages.
        "worker_send_task_events": settings.task_events,
        "task_send_sent_event": settings.task_sent_events,
        "worker_pool": settings.worker_pool,
        "worker_concurrency": settings.worker_concurrency,
        "worker_hijack_root_logger": False,
    }
