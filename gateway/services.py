"""The process-wide services that requests, tasks and commands share, and their one accessor.

`create_app` builds them once per app; everything else reaches them with `get_services()`
(the current Flask app's) or `get_services(app)`.
"""

from __future__ import annotations

import dataclasses
import importlib
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import redis
from flask import Flask, current_app
from redis.backoff import NoBackoff
from redis.retry import Retry

import providers
from gateway.config import PROVIDER_FIELDS, Settings
from gateway.db import Database
from gateway.errors import ConfigError
from gateway.outbox import Outbox
from gateway.runfile import NO_REDIS_URL
from providers.base import Provider
from providers.documents.limits import DocumentLimits

if TYPE_CHECKING:  # the API uses these through Services, never by import (setup.cfg contracts)
    from celery import Celery

    from tasks.pipeline import Pipeline

EXTENSION = "gateway"  # the key of Services in Flask's app.extensions


def redis_client(settings: Settings) -> redis.Redis:
    """A Redis client that fails fast while Redis is down or hangs, and reconnects when it is back.

    No retries inside a call: every caller has its own fallback (the relay, the next pass),
    and a request must not wait several timeouts on a Redis that accepts but never answers.
    """
    return redis.Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=15,
    )


def load_providers(settings: Settings) -> None:
    """Import EXTRA_PROVIDER_MODULES and the installed plug-ins (entry points), then check that
    every configured provider is registered.

    Done when the process starts, so a typo or a broken plug-in stops start-up naming the
    variable or the entry point, instead of failing every job.
    """
    try:
        providers.discover()
    except providers.PluginError as exc:
        raise ConfigError(f"a provider plug-in is broken: {exc}") from None
    for name in settings.provider_modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(
                f"EXTRA_PROVIDER_MODULES={settings.extra_provider_modules!r} is invalid: {exc}"
            ) from None
    variables = {f.name: f.metadata["env"] for f in dataclasses.fields(Settings)}
    for stage, name in settings.providers.items():
        choices = providers.available(stage)
        if name not in choices:
            raise ConfigError(
                f"{variables[PROVIDER_FIELDS[stage]]}={name!r} is invalid: "
                f"must be one of {', '.join(choices)}"
            )


@dataclass
class Services:
    """Settings, database, Redis, event outbox, providers, Celery app and pipeline of one app.

    `celery` and `pipeline` are attached by `create_app` once the Celery app exists.
    """

    settings: Settings
    database: Database
    redis: redis.Redis
    outbox: Outbox
    celery: Celery = field(init=False)
    pipeline: Pipeline = field(init=False)
    _providers: dict[tuple[str, str], Provider] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        """Connect everything `settings` names (lazily: nothing is contacted yet).

        Without a Redis URL it raises ConfigError: a guessed local Redis could be another
        system's, read and written silently.
        """
        if not settings.redis_url:
            raise ConfigError(NO_REDIS_URL)
        load_providers(settings)
        database = Database(
            settings.database_url, settings.database_pool_size, settings.database_pool_timeout
        )
        client = redis_client(settings)
        outbox = Outbox(
            database.sessions, client, settings.events_stream, settings.events_stream_maxlen
        )
        outbox.publish_after_commit(database.readers)
        return cls(settings, database, client, outbox)

    def provider(self, stage: str, name: str) -> Provider:
        """The provider `name` for `stage`, built once with the settings it asks for (its
        signature names them: the simulation knobs, the document limits, the languages)."""
        with self._lock:
            key = (stage, name)
            if key not in self._providers:
                self._providers[key] = providers.create(
                    stage,
                    name,
                    latency_scale=self.settings.provider_latency_scale,
                    failure_rate=self.settings.failure_rates[stage],
                    document_limits=DocumentLimits(**self.settings.document_limits),
                    languages=self.settings.language_codes,
                )
            return self._providers[key]


def get_services(app: Flask | None = None) -> Services:
    """The Services of `app`, by default of the current Flask app (a request, a task, a command)."""
    services = (app or current_app).extensions[EXTENSION]
    assert isinstance(services, Services), f"app.extensions[{EXTENSION!r}] is not Services"
    return services
