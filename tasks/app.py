"""Celery app bound to a Flask app: configuration from Settings, tasks inside an app context."""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, Task
from flask import Flask

import celeryconfig
from tasks import broker


class AppContextTask(Task):  # type: ignore[misc]
    """A task whose body runs inside the owning Flask app's context."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.app.flask_app.app_context():
            return super().__call__(*args, **kwargs)


def celery_init_app(app: Flask) -> Celery:
    """Create the Celery app for `app` and register it as `app.extensions['celery']`."""
    settings = app.extensions["gateway"].settings
    broker.use_for_redis_urls()
    celery = Celery(app.import_name, task_cls=AppContextTask, set_as_current=True)
    celery.flask_app = app  # type: ignore[attr-defined]
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
    app.extensions["celery"] = celery
    return celery
