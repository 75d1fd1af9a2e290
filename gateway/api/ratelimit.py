"""Rate limits: a budget of requests per API key (per client address with AUTH_MODE=off) on the
job routes, and a smaller one for creates. Over it: 429 with `Retry-After`.

The counts live in Redis, so every API process and host shares one budget per caller. They
are kept with the sliding window counter of the `limits` library (the engine of
flask-limiter): two Redis keys per caller and window, the same keys and arithmetic, but every
limit of a request is counted, and its standing read back, by one script in one round trip
(`limits` itself takes two per limit: four for a create). flask-limiter is not used: it checks
in an app-wide hook that runs before the job routes authenticate, so it could count per
presented header but not per valid key, and its reset header is a timestamp where the
RateLimit header draft wants seconds. Here the check runs right after authentication, and the
headers follow draft-ietf-httpapi-ratelimit-headers-06: `RateLimit-Limit`,
`RateLimit-Remaining`, `RateLimit-Reset` (seconds) and `RateLimit-Policy`.

Redis down is not the API down: the limiter fails open. A request whose count Redis cannot
take is let through, without RateLimit headers. The outage is the one the outbox and the
pipeline share (logged once; for a second after a failure nobody waits on Redis again).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import redis
from flask import Flask, Response, current_app, g, request
from limits import RateLimitItem, parse_many

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


KEY_PREFIX = "ratelimit"

# For each limit in turn (KEYS: its previous and current window; ARGV: its amount and window
# seconds), the sliding window counter's acquire of `limits` (acquire_sliding_window.lua),
# then where the limit stands: allowed (1 or 0), previous count, its ms to live, current
# count, its ms to live. Stops after the first limit breached: a refused request spends
# nothing more.
SPEND = """
local out = {}
for i = 1, #ARGV / 2 do
    local previous, current = KEYS[2 * i - 1], KEYS[2 * i]
    local limit, expiry = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i]) * 1000
    local current_ttl = tonumber(redis.call('pttl', current))
    if current_ttl > 0 and current_ttl < expiry then
        redis.call('rename', current, previous)
        redis.call('set', current, 0, 'PX', current_ttl + expiry)
    end
    local previous_count = tonumber(redis.call('get', previous)) or 0
    local previous_ttl = math.max(tonumber(redis.call('pttl', previous)), 0)
    local current_count = tonumber(redis.call('get', current)) or 0
    current_ttl = math.max(tonumber(redis.call('pttl', current)), 0)
    local allowed = math.floor(previous_count * previous_ttl / expiry) + current_count + 1 <= limit
    if allowed then
        if current_ttl > 0 then
            current_count = redis.call('incrby', current, 1)
        else
            redis.call('set', current, 1, 'PX', expiry * 2)
            current_count, current_ttl = 1, expiry * 2
        end
    end
    for _, value in ipairs({allowed and 1 or 0, previous_count, previous_ttl, current_count,
                            current_ttl}) do
        out[#out + 1] = value
    end
    if not allowed then break end
end
return out
"""


class RateLimiter:
    """The app's limits and their counts in Redis."""

    def __init__(self, settings: Settings, client: redis.Redis, outage: Outage) -> None:
        self.enabled = settings.rate_limit_enabled
        self.every_route = parse_many(settings.rate_limit)
        self.creates = parse_many(settings.rate_limit_create)
        self.script = client.register_script(SPEND)
        self.outage = outage

    def spend(self, caller: str, creating: bool) -> list[Usage] | None:
        """Count one request of `caller`; None (let it through) if Redis cannot count it.

        Stops at the first limit breached: a refused request uses up nothing more.
        """
        limits = [("jobs", item) for item in self.every_route]
        limits += [("create", item) for item in self.creates] if creating else []
        if not limits or not self.outage.worth_trying():
            return None
        keys: list[str] = []
        args: list[int] = []
        for scope, item in limits:
            current = f"{KEY_PREFIX}:{{{item.key_for(caller, scope)}}}"
            keys += [f"{current}/-1", current]
            args += [item.amount, item.get_expiry()]
        started = time.monotonic()
        try:
            counted = self.script(keys, args)
        except redis.RedisError as exc:
            self.outage.down(exc, started)
            return None
        self.outage.up(started)
        usages = []
        for (_, item), at in zip(limits, range(0, len(counted), 5), strict=False):
            allowed, *window = (int(value) for value in counted[at : at + 5])
            remaining, reset_in = standing(item, *window)
            usages.append(Usage(item, remaining, reset_in, breached=not allowed))
        return usages


def standing(
    item: RateLimitItem, previous: int, previous_ms: int, current: int, current_ms: int
) -> tuple[int, int]:
    """What is left of `item` and the seconds until it grows, from its two windows' counts and
    times to live: the arithmetic of `limits`' SlidingWindowCounterRateLimiter.get_window_stats."""
    expiry = item.get_expiry()
    weighted = previous * previous_ms / 1000 / expiry + current
    remaining = max(0, item.amount - math.floor(weighted))
    reset_in = 0.0
    if previous or current:
        resets = [math.inf]
        if previous:
            resets.append(_until_next(previous_ms, expiry / previous))
        if current:
            resets.append(_until_next(current_ms, expiry))
        reset_in = min(resets)
    return remaining, max(1, math.ceil(reset_in))


def _until_next(ms_to_live: int, period: float) -> float:
    """Seconds until the key's time to live next reaches a multiple of `period` seconds.

    At an exact multiple (a window set this very millisecond, to live twice its length) that
    is a whole period away, where `limits`' remainder says 0, a reset already past.
    """
    if ms_to_live <= 0:
        return 0.0
    return ((ms_to_live - 1) % (period * 1000) + 1) / 1000


def init_app(app: Flask) -> None:
    """Give `app` its rate limiter (checked by the job blueprints' `check`)."""
    services = get_services(app)
    app.extensions[EXTENSION] = RateLimiter(
        services.settings, services.redis, services.outbox.outage
    )


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
