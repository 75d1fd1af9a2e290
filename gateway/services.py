"""The process-wide services that requests, tasks and commands share."""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

import providers
from gateway.config import ConfigError, Settings
from gateway.db import Database
from gateway.outbox import Outbox
from providers.base import Provider


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


PROVIDER_VARIABLES = {
    "extraction": "EXTRACTOR_PROVIDER",
    "analysis": "ANALYZER_PROVIDER",
    "enrichment": "ENRICHER_PROVIDER",
}


def load_providers(settings: Settings) -> None:
    """Import EXTRA_PROVIDER_MODULES, then check that every configured provider is registered.

    Done when the process starts, so a typo stops start-up naming the variable instead of
    failing every job.
    """
    for name in settings.provider_modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(
                f"EXTRA_PROVIDER_MODULES={settings.extra_provider_modules!r} is invalid: {exc}"
            ) from None
    for stage, name in settings.providers.items():
        choices = providers.available(stage)
        if name not in choices:
            raise ConfigError(
                f"{PROVIDER_VARIABLES[stage]}={name!r} is invalid: "
                f"must be one of {', '.join(choices)}"
            )


@dataclass
class Services:
    """Settings, database, Redis, event outbox and providers of one process."""

    settings: Settings
    database: Database
    redis: redis.Redis
    outbox: Outbox
    _providers: dict[tuple[str, str], Provider] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        """Connect everything `settings` names (lazily: nothing is contacted yet)."""
        load_providers(settings)
        database = Database(
            settings.database_url, settings.database_pool_size, settings.database_pool_timeout
        )
        client = redis_client(settings)
        outbox = Outbox(
            database.sessions, client, settings.events_stream, settings.events_stream_maxlen
        )
        outbox.publish_after_commit()
        return cls(settings, database, client, outbox)

    def provider(self, stage: str, name: str) -> Provider:
        """The provider `name` for `stage`, built once with the configured simulation knobs."""
        with self._lock:
            key = (stage, name)
            if key not in self._providers:
                self._providers[key] = providers.create(
                    stage,
                    name,
                    latency_scale=self.settings.provider_latency_scale,
                    failure_rate=self.settings.failure_rates[stage],
                )
            return self._providers[key]
