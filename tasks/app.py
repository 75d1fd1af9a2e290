"""Celery app bound to a Flask app: configuration from Settings, tasks inside an app context."""

from __future__ import annotations

import logging
import warnings
from typing import Any

from celery import Celery
from celery.app.log import Logging
from celery.exceptions import CPendingDeprecationWarning
from flask import Flask

import celeryconfig
from gateway.config import Settings
from tasks import broker
from tasks.base import AppContextTask


class WorkerLogging(Logging):
    """Celery's logging set-up, without its warning at every broker connection loss that the
    running stages "cannot be acknowledged" and should be stopped: on Redis they can, and they
    run on (celeryconfig). Added after Celery's own filters, which show its warnings always."""

    def setup(self, *args: Any, **kwargs: Any) -> Any:
        handled = super().setup(*args, **kwargs)
        warnings.filterwarnings(
            "ignore",
            message=r"\s*In Celery 5\.1 we introduced an optional breaking change",
            category=CPendingDeprecationWarning,
        )
        return handled


class FlaskCelery(Celery):
    """A Celery app that knows its Flask app, whose context its tasks run in."""

    flask_app: Flask
    log_cls = f"{__name__}:WorkerLogging"


def celery_init_app(app: Flask, settings: Settings) -> FlaskCelery:
    """Create the Celery app of `app`, configured from `settings`, with the stage tasks registered."""
    broker.use_for_redis_urls()
    celery = FlaskCelery(app.import_name, task_cls=AppContextTask, set_as_current=True)
    celery.flask_app = app
    celery.config_from_object(celeryconfig.from_settings(settings))
    celery.set_default()
    import tasks.signals
    import tasks.stages  # noqa: F401  (registers the stage tasks)

    celery.finalize()
    if settings.log_level != "DEBUG":
        # A line per task received and succeeded costs more than the task at this rate;
        # retries and failures still log at WARNING and above.
        for name in ("celery.app.trace", "celery.worker.strategy"):
            logging.getLogger(name).setLevel(logging.WARNING)
    return celery
