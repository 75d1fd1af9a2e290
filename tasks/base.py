"""The base class of our tasks: each runs inside its Flask app's context."""

from __future__ import annotations

from typing import Any

from celery import Task


class AppContextTask(Task):
    """A task whose body runs inside the owning Flask app's context (see tasks.app.FlaskCelery)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.app.flask_app.app_context():
            return super().__call__(*args, **kwargs)
