"""Celery signal handlers: fresh connections in forked worker processes."""

from __future__ import annotations

from typing import Any

from celery import signals


@signals.worker_process_init.connect
def reset_connections(**_: Any) -> None:
    """A forked pool process must not share the parent's database connections."""
    from celery import current_app as celery

    gateway = celery.flask_app.extensions["gateway"]
    gateway.database.dispose()
