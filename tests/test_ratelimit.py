"""Rate limits: a budget per API key (per client address with AUTH_MODE=off), counted in Redis;
over it 429 with Retry-After and the RateLimit headers; with Redis down, requests pass."""

from __future__ import annotations

import time

import pytest
import schemathesis
from limits import parse
from limits.storage import RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from sqlalchemy import func, select

from gateway.api import ratelimit
from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.models import Job
from gateway.services import get_services
from tests.factories import job_payload
from tests.support import (
    api_key,
    assert_problem,
    free_port,
    keyed_settings,
    wait_until,
)

RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy")


def job_count(app) -> int:
    with get_services(app).database.session() as session:
        return session.scalar(select(func.count()).select_from(Job)) or 0


def test_a_burst_of_creates_over_the_limit_gets_429_with_retry_after_and_ratelimit_headers(
    make_app,
):
    app = make_app(rate_limit="50/minute", rate_limit_create="3/minute")
    client = app.test_client()

    accepted = [client.post("/api/jobs/", json=job_payload()) for _ in range(3)]
    refused = client.post("/api/jobs/", json=job_payload())

    assert [r.status_code for r in accepted] == [201, 201, 201]
    # Each answer says where the caller stands against the limit that binds: the create one
    assert [r.headers["RateLimit-Remaining"] for r in accepted] == ["2", "1", "0"]
    for response in accepted:
        assert response.headers["RateLimit-Limit"] == "3"
        assert response.headers["RateLimit-Policy"] == "50;w=60, 3;w=60"
        assert 1 <= int(response.headers["RateLimit-Reset"]) <= 60
    body = assert_problem(refused, 429)
    assert "retry after" in body["detail"]
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert refused.headers["RateLimit-Limit"] == "3"
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert refused.headers["RateLimit-Reset"] == str(retry_after)
    assert "WWW-Authenticate" not in refused.headers
    assert job_count(app) == 3  # the refused create stored nothing

    # Reads have their own budget left (RATE_LIMIT counts every route)
    listed = client.get("/api/jobs/")
    assert listed.status_code == 200
    assert listed.headers["RateLimit-Limit"] == "50"
    assert listed.headers["RateLimit-Remaining"] == str(50 - 4 - 1)


def test_every_job_route_counts_against_the_callers_budget(make_app):
    app = make_app(rate_limit="2/minute")
    client = app.test_client()
    assert client.get("/api/jobs/").status_code == 200
    assert client.get("/api/jobs/00000000-0000-4000-8000-000000000000/").status_code == 404
    response = client.post("/api/jobs/00000000-0000-4000-8000-000000000000/cancel/")
    assert_problem(response, 429)
    assert_problem(client.get("/api/providers/"), 429)
    # The probes and the OpenAPI document are not limited
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/openapi.json").status_code == 200


def test_each_api_key_has_its_own_budget(make_app):
    app = make_app(**keyed_settings(), rate_limit="2/minute")
    first, second = api_key(app, "acme"), api_key(app, "acme")
    other_tenant = api_key(app, "globex")
    client = app.test_client()

    assert [client.get("/api/jobs/", headers=first).status_code for _ in range(3)] == [
        200, 200, 429,
    ]  # fmt: skip
    # Another key, of the same tenant or another, still has its whole budget
    for headers in (second, other_tenant):
        response = client.get("/api/jobs/", headers=headers)
        assert response.status_code == 200 and response.headers["RateLimit-Remaining"] == "1"
    # A request refused for its key is not counted: nothing was spent on it
    assert client.get("/api/jobs/", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_with_auth_off_each_client_address_has_its_own_budget(make_app):
    app = make_app(rate_limit="2/minute")
    one = app.test_client()
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "192.0.2.7"

    assert [one.get("/api/jobs/").status_code for _ in range(3)] == [200, 200, 429]
    assert other.get("/api/jobs/").status_code == 200


def test_with_redis_unreachable_creates_are_still_accepted(make_app):
    # Given the limits' Redis (also the broker's) is down: the limiter fails open
    app = make_app(redis_url=f"redis://127.0.0.1:{free_port()}/0", rate_limit_create="1/minute")
    client = app.test_client()

    answers = [client.post("/api/jobs/", json=job_payload()) for _ in range(3)]

    assert [r.status_code for r in answers] == [201, 201, 201]
    assert not any(name in r.headers for r in answers for name in RATE_HEADERS)
    assert job_count(app) == 3


def test_counting_resumes_when_redis_comes_back(make_app, own_redis):
    app = make_app(redis_url=own_redis.url(), rate_limit_create="2/minute")
    client = app.test_client()
    assert [client.post("/api/jobs/", json=job_payload()).status_code for _ in range(3)] == [
        201, 201, 429,
    ]  # fmt: skip

    # When Redis stops, creates pass the limit
    own_redis.stop()
    assert client.post("/api/jobs/", json=job_payload()).status_code == 201

    # And once it is back (its counts kept on disk), the budget holds again
    own_redis.start()
    wait_until(lambda: client.post("/api/jobs/", json=job_payload()).status_code == 429)


def test_limits_can_be_turned_off(make_app):
    app = make_app(rate_limit="1/minute", rate_limit_enabled=False)
    client = app.test_client()
    answers = [client.get("/api/jobs/") for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 200]
    assert "RateLimit-Limit" not in answers[0].headers


@pytest.mark.parametrize("variable", ["RATE_LIMIT", "RATE_LIMIT_CREATE"])
def test_a_malformed_limit_stops_start_up_naming_the_variable(variable):
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({variable: "lots"})
    assert Settings.from_env({variable: "10/second;600/minute"})


def test_the_429_answer_is_the_documented_one(make_app):
    app = make_app(rate_limit_create="1/minute")
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    operation = schema["/api/jobs/"]["POST"]
    case = operation.Case(body=job_payload(), media_type="application/json")
    assert case.call().status_code == 201

    refused = case.call()

    assert refused.status_code == 429
    case.validate_response(refused)  # status, content type, body schema, headers
    documented = app.test_client().get("/api/openapi.json").json["paths"]
    for path, operations in documented.items():
        for method, spec in operations.items():
            if path.startswith(("/api/jobs", "/api/providers")) and method in ("get", "post"):
                assert {"401", "429"} <= set(spec["responses"]), (method, path)
                assert ("403" in spec["responses"]) == (method == "post"), (method, path)


def test_every_limit_of_a_request_is_counted_in_one_round_trip_to_redis(make_app):
    app = make_app(rate_limit="100/minute;1000/hour")
    client = app.test_client()
    redis = get_services(app).redis
    assert client.get("/api/jobs/").status_code == 200  # the script is loaded once

    before = redis.info("commandstats")
    answers = [client.get("/api/jobs/") for _ in range(3)]
    after = redis.info("commandstats")

    # One script call per request for both limits; the rest are the commands it runs
    sent = {name: after[name]["calls"] - before.get(name, {"calls": 0})["calls"] for name in after}
    assert sent.pop("cmdstat_evalsha") == 3 and sent.pop("cmdstat_info") == 1
    assert {name for name, calls in sent.items() if calls} <= {
        "cmdstat_get", "cmdstat_pttl", "cmdstat_incrby", "cmdstat_set", "cmdstat_rename",
    }  # fmt: skip
    assert [r.headers["RateLimit-Remaining"] for r in answers] == ["98", "97", "96"]
    assert answers[0].headers["RateLimit-Policy"] == "100;w=60, 1000;w=3600"
    assert answers[0].headers["RateLimit-Limit"] == "100"


def test_the_counts_are_those_of_the_limits_librarys_sliding_window(make_app):
    # Counted in the keys, and with the arithmetic, of `limits`: it reads the same standing
    app = make_app(rate_limit="5/minute")
    limiter = app.extensions[ratelimit.EXTENSION]
    for _ in range(3):
        (usage,) = limiter.spend("address:192.0.2.9", creating=False)
    storage = RedisStorage(get_services(app).settings.redis_url, key_prefix=ratelimit.KEY_PREFIX)
    window = SlidingWindowCounterRateLimiter(storage)

    reset_at, remaining = window.get_window_stats(usage.limit, "address:192.0.2.9", "jobs")
    assert (usage.remaining, remaining) == (2, 2)
    assert abs(usage.reset_in - (reset_at - time.time())) <= 1
    assert window.hit(usage.limit, "address:192.0.2.9", "jobs")  # the 4th of 5
    (usage,) = limiter.spend("address:192.0.2.9", creating=False)
    assert (usage.remaining, usage.breached) == (0, False)
    (usage,) = limiter.spend("address:192.0.2.9", creating=False)
    assert usage.breached


def test_the_success_answers_document_and_carry_the_ratelimit_headers(make_app):
    app = make_app(rate_limit="50/minute")
    client = app.test_client()
    documented = client.get("/api/openapi.json").json["paths"]
    for path, operations in documented.items():
        for method, spec in operations.items():
            if path.startswith(("/api/jobs", "/api/providers")) and method in ("get", "post"):
                successes = [code for code in spec["responses"] if code.startswith("2")]
                assert successes, (method, path)
                for code in successes:
                    headers = spec["responses"][code].get("headers", {})
                    assert set(RATE_HEADERS) <= set(headers), (method, path, code)

    # And a success answer carries them as documented
    operation = schemathesis.openapi.from_wsgi("/api/openapi.json", app)["/api/jobs/"]["POST"]
    case = operation.Case(body=job_payload(), media_type="application/json")
    created = case.call()
    assert created.status_code == 201
    assert {name.lower() for name in RATE_HEADERS} <= {name.lower() for name in created.headers}
    case.validate_response(created)


def test_a_window_set_this_millisecond_resets_a_whole_window_away():
    # A first request sets its window to live twice its length: exactly 120,000 ms for a
    # minute, whose remainder is 0; the budget grows back in a minute, not in a second.
    minute = parse("5/minute")
    assert ratelimit.standing(minute, 0, 0, 1, 120_000) == (4, 60)
    assert ratelimit.standing(minute, 0, 0, 1, 119_001) == (4, 60)
    assert ratelimit.standing(minute, 0, 0, 1, 61_500) == (4, 2)
