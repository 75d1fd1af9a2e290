"""The API's CPU per request, in one process: POST /api/jobs/ and GET /api/jobs/{id}/.

Builds the app as the API serves it (PostgreSQL database of its own, migrated; a private
redis-server) and drives it through Flask's test client, with no worker: what is measured is
the API process's own work (Flask, the schemas, the service layer, the driver, the chain's
publish), as CPU time (`time.process_time`), plus PostgreSQL's, read from the backends
serving this database. Rounds alternate between the variants compared so that other load on
a shared machine falls on all of them alike; ratios within one run are what count.

    python -m bench.api_cost [--requests 400] [--rounds 5] [--profile post|get]
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import os
import pstats
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from flask import Flask
from limits.storage import RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from sqlalchemy import create_engine, text

from bench.loadkit import throwaway_database
from bench.pipeline import start_redis
from gateway import create_app, idempotency, jobs
from gateway.api import ratelimit
from gateway.config import Settings
from gateway.db import upgrade_schema
from gateway.idempotency import IdempotentRequest
from gateway.services import get_services

ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
STAGES = ["extraction", "analysis", "enrichment"]


def body(n: int) -> dict[str, Any]:
    return {
        "document_name": f"doc {n}",
        "document_type": "invoice",
        "document_content": f"Hi, my name is Gabriela, I want to cancel. SubscriptionID {n}",
        "pipeline_config": {"stages": STAGES},
    }


def backends_cpu(app: Flask) -> float:
    """CPU seconds so far of the PostgreSQL backends connected to the app's database."""
    database = get_services(app).database
    with database.reader() as session:
        pids = session.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        ).scalars()
        total = 0.0
        for pid in pids:
            try:
                times = psutil.Process(pid).cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
    return total


class Variant:
    """One kind of request, driven `count` times per round."""

    def __init__(self, name: str, app: Flask, action: Callable[[int], None]) -> None:
        self.name = name
        self.app = app
        self.action = action
        self.ours: list[float] = []
        self.postgres: list[float] = []
        self.counter = 0

    def round(self, count: int) -> None:
        pg_before, before = backends_cpu(self.app), time.process_time()
        for _ in range(count):
            self.counter += 1
            self.action(self.counter)
        ours = time.process_time() - before
        self.ours.append(ours / count)
        self.postgres.append((backends_cpu(self.app) - pg_before) / count)


def limiter_variants(app: Flask) -> list[Variant]:
    """A create's rate limits (two), counted by one script, and as `limits` counts them."""
    limiter = app.extensions[ratelimit.EXTENSION]
    items = limiter.every_route + limiter.creates
    storage = RedisStorage(get_services(app).settings.redis_url, key_prefix="bench")
    window = SlidingWindowCounterRateLimiter(storage)

    def by_limits(n: int) -> None:
        for scope, item in zip(("jobs", "create"), items, strict=True):
            window.hit(item, "address:bench", scope)
            window.get_window_stats(item, "address:bench", scope)

    def by_script(n: int) -> None:
        assert limiter.spend("address:bench", creating=True)

    return [
        Variant("rate limits of a create, one script", app, by_script),
        Variant("  as `limits` counts them", app, by_limits),
    ]


def variants(app: Flask, limited: Flask) -> list[Variant]:
    client = app.test_client()
    created: list[str] = []
    database = get_services(app).database

    def post(n: int) -> None:
        response = client.post("/api/jobs/", json=body(n))
        assert response.status_code == 201, response.get_data(as_text=True)
        created.append(response.get_json()["id"])

    def post_keyed(n: int) -> None:
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        response = client.post("/api/jobs/", json=body(n), headers=headers)
        assert response.status_code == 201, response.get_data(as_text=True)

    def get(n: int) -> None:
        response = client.get(f"/api/jobs/{created[n % len(created)]}/")
        assert response.status_code == 200

    limited_client = limited.test_client()

    def get_limited(n: int) -> None:
        response = limited_client.get(f"/api/jobs/{created[n % len(created)]}/")
        assert response.status_code == 200 and "RateLimit-Limit" in response.headers

    def create_fields(n: int) -> dict[str, Any]:
        return {
            "document_name": f"doc {n}",
            "document_type": "invoice",
            "document_content": f"text {n}",
            "stages": STAGES,
        }

    def one_statement(n: int) -> None:
        with database.transition() as session:
            jobs.create_job(session, **create_fields(n))

    def one_statement_keyed(n: int) -> None:
        request = IdempotentRequest(uuid.uuid4().hex, "f" * 64, 86_400.0)
        with database.transition() as session:
            jobs.create_job_once(session, request, **create_fields(n))

    def portable(n: int, keyed: bool = False) -> None:
        # What SQLite runs, and PostgreSQL did before: a statement per table, in a transaction.
        request = IdempotentRequest(uuid.uuid4().hex, "f" * 64, 86_400.0)
        with database.session() as session:
            if keyed:
                assert idempotency.claim(session, None, request) is None
            job = jobs._new_job(**create_fields(n))
            jobs._insert(session, job, None)
            if keyed:
                idempotency.remember(session, None, request, job.id, job.created_at)
            session.commit()
            jobs._created(job)

    result = [
        Variant("POST /api/jobs/", app, post),
        Variant("  with an Idempotency-Key", app, post_keyed),
        Variant("GET /api/jobs/{id}/", app, get),
        Variant("  rate limited", limited, lambda n: get_limited(n)),
        Variant("create, one statement", app, one_statement),
        Variant("create, a statement per table", app, portable),
        Variant("create with a key, one statement", app, one_statement_keyed),
        Variant("  a statement per table", app, lambda n: portable(n, keyed=True)),
    ]
    return result + limiter_variants(limited)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per variant per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--profile", choices=["post", "get", "limited"], help="cProfile one variant instead"
    )
    args = parser.parse_args(argv)
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    workdir = Path(tempfile.mkdtemp(prefix="gateway-api-cost-"))
    redis_server = start_redis(workdir)
    try:
        with throwaway_database(admin, "api") as url:
            upgrade_schema(url)
            settings = Settings.from_env(
                {},
                database_url=url,
                redis_url=f"redis://127.0.0.1:{redis_server.port}/0",
                auth_mode="off",
                log_level="WARNING",
                max_queued_stages=10**9,
                rate_limit_enabled=False,
                rate_limit="1000000/second",
                rate_limit_create="1000000/second",
            )
            app = create_app(settings)
            limited = create_app(dataclasses.replace(settings, rate_limit_enabled=True))
            kinds = variants(app, limited)
            for kind in kinds:  # warm up: connections, prepared statements, caches
                kind.round(50)
                kind.ours.clear()
                kind.postgres.clear()
            if args.profile:
                kind = {"post": kinds[0], "get": kinds[2], "limited": kinds[3]}[args.profile]
                profiler = cProfile.Profile(time.process_time)
                profiler.runcall(kind.round, args.requests)
                pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "cumulative")).print_stats(
                    70
                )
                return 0
            for _ in range(args.rounds):
                for kind in kinds:
                    kind.round(args.requests)
            print(
                f"{'request':34} {'API µs':>9} {'PostgreSQL µs':>14}  (median of {args.rounds} rounds)"
            )
            for kind in kinds:
                ours, pg = statistics.median(kind.ours), statistics.median(kind.postgres)
                print(f"{kind.name:34} {ours * 1e6:9.0f} {pg * 1e6:14.0f}")
            get_services(app).database.dispose()
            get_services(limited).database.dispose()
    finally:
        redis_server.stop()
        admin.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
