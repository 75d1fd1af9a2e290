"""Rate limits: a budget of requests per API key (per client address with AUTH_MODE=off) on the
job routes, and a smaller one for creates. Over it: 429 with `Retry-After`.

The counts live in Redis, so every API process and host shares one budget per caller. They
are kept by the `limits` library (the engine of flask-limiter) with its sliding window
counter: two Redis keys per caller and window, one Lua call per check. flask-limiter itself
is not used: it checks in an app-wide hook that runs before the job routes authenticate, so it
could count per presented header but not per valid key, and its reset header is a timestamp
where the RateLimit header draft wants seconds. Here the check runs right after
authentication, and the headers follow draft-ietf-httpapi-ratelimit-headers-06:
`RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds) and `RateLimit-Policy`.

Redis down is not the API down: the limiter fails open. A request whose count Redis cannot
take is let through, without RateLimit headers. The outage is the one the outbox and the
pipeline share (logged once; for a second after a failure nobody waits on Redis again).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from flask import Flask, Response, current_app, g, request
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from events.outage import Outage
from gateway.api import auth
from gateway.config import Settings
from gateway.errors import RateLimitedError
from gateway.services import get_services

EXTENSION = "gateway.ratelimit"
CREATE_ENDPOINT = "jobs.Jobs"  # POST on it creates a job


@dataclass(frozen=True)
class Usage:
    """Where a caller stands against one limit after this request."""

    limit: RateLimitItem
    remaining: int
    reset_in: int  # seconds until the budget grows again
    breached: bool


class RateLimiter:
    """The app's limits and their counts in Redis."""

    def __init__(self, settings: Settings, outage: Outage) -> None:
        self.enabled = settings.rate_limit_enabled
        self.every_route = parse_many(settings.rate_limit)
        self.creates = parse_many(settings.rate_limit_create)
        storage = RedisStorage(
            settings.redis_url,
            key_prefix="ratelimit",
            wrap_exceptions=True,
            socket_timeout=settings.redis_timeout,
            socket_connect_timeout=settings.redis_timeout,
        )
        self.window = SlidingWindowCounterRateLimiter(storage)
        self.outage = outage

    def spend(self, caller: str, creating: bool) -> list[Usage] | None:
        """Count one request of `caller`; None (let it through) if Redis cannot count it.

        Stops at the first limit breached: a refused request uses up nothing more.
        """
        limits = [("jobs", item) for item in self.every_route]
        limits += [("create", item) for item in self.creates] if creating else []
        if not limits or not self.outage.worth_trying():
            return None
        started = time.monotonic()
        usages: list[Usage] = []
        try:
            for scope, item in limits:
                allowed = self.window.hit(item, caller, scope)
                reset_at, remaining = self.window.get_window_stats(item, caller, scope)
                reset_in = max(1, math.ceil(reset_at - time.time()))
                usages.append(Usage(item, remaining, reset_in, breached=not allowed))
                if not allowed:
                    break
        except StorageError as exc:
            self.outage.down(exc.storage_error, started)
            return None
        self.outage.up(started)
        return usages


def init_app(app: Flask) -> None:
    """Give `app` its rate limiter (checked by the job blueprints' `check`)."""
    services = get_services(app)
    app.extensions[EXTENSION] = RateLimiter(services.settings, services.outbox.outage)


def caller_identity() -> str:
    """Whose budget a request spends: its API key's, or its client address's with AUTH_MODE=off."""
    caller = auth.caller()
    return f"key:{caller.prefix}" if caller is not None else f"address:{request.remote_addr}"


def check() -> None:
    """before_request, after authentication: spend the caller's budget, or refuse with 429."""
    limiter: RateLimiter = current_app.extensions[EXTENSION]
    if not limiter.enabled:
        return
    creating = request.method == "POST" and request.endpoint == CREATE_ENDPOINT
    usages = limiter.spend(caller_identity(), creating)
    if not usages:
        return
    g.rate_limits = usages
    breached = [usage for usage in usages if usage.breached]
    if breached:
        raise RateLimitedError(retry_after=breached[0].reset_in)


def add_headers(response: Response) -> Response:
    """after_request: where the caller stands, on every answer its budget was counted for."""
    usages: list[Usage] = g.get("rate_limits") or []
    if usages:
        # The limit that binds: the one breached, else the one with the least left
        binding = min(usages, key=lambda usage: (not usage.breached, usage.remaining))
        response.headers["RateLimit-Limit"] = str(binding.limit.amount)
        response.headers["RateLimit-Remaining"] = str(binding.remaining)
        response.headers["RateLimit-Reset"] = str(binding.reset_in)
        response.headers["RateLimit-Policy"] = ", ".join(
            f"{usage.limit.amount};w={usage.limit.get_expiry()}" for usage in usages
        )
    return response
