"""The Document Processing Gateway: Flask app factory."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway import logs
from gateway.config import INSTANCE_DIR, Settings

if TYPE_CHECKING:  # imported when an app is built: the client commands do without Flask
    from flask import Flask


def create_app(settings: Settings | None = None) -> Flask:
    """Build the API app, with its services and its Celery app attached."""
    from flask import Flask

    from gateway import api, ui
    from gateway.services import EXTENSION, Services
    from tasks.app import celery_init_app
    from tasks.pipeline import Pipeline

    settings = settings or Settings.from_env()
    logs.configure(settings.log_level, settings.log_format)
    app = Flask(__name__, instance_path=str(INSTANCE_DIR))
    app.config["MAX_CONTENT_LENGTH"] = settings.max_content_length
    app.config["MAX_DOCUMENT_BYTES"] = settings.max_document_bytes

    services = Services.from_settings(settings)
    app.extensions[EXTENSION] = services
    services.celery = celery_init_app(app, settings)
    services.pipeline = Pipeline(
        services.celery,
        services.database,
        settings.providers,
        client=services.redis,
        outage=services.outbox.outage,
        max_queued=settings.max_queued_stages,
    )

    ui.init_app(
        app, needs_key=settings.auth_mode == "keys"
    )  # before the API, which gives every route its trailing-slash twin
    api.init_app(app)
    from gateway import cli

    cli.init_app(app)
    return app
