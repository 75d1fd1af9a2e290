"""Fixtures: a migrated PostgreSQL database and a Redis server of the session's own, an app per
test, and a live embedded Celery worker. Nothing is mocked."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import redis
from celery.contrib.testing.worker import start_worker
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from gateway import create_app
from gateway.config import Settings
from gateway.db import Database, upgrade_schema
from gateway.services import Services, get_services
from tests.support import PG_ADMIN_URL, TABLES, Launch, RedisServer

# Property-based tests and the API fuzz run the same examples on every run (a failure can be
# replayed) and keep no example database; a shared, loaded machine makes timing deadlines flaky.
hypothesis.settings.register_profile("gateway", derandomize=True, database=None, deadline=None)
hypothesis.settings.load_profile("gateway")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that run a live embedded worker, so a quick run can leave them out.

    Under mutation testing (mutmut sets MUTANT_UNDER_TEST), a mutant's tests stop at the first
    failure: the ones most likely to fail run first, the portable path's (SQLite) before the
    others, then the service layer's own before the API's.
    """
    for item in items:
        if {"worker", "worker_for"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.worker)
    if os.environ.get("MUTANT_UNDER_TEST"):
        items.sort(key=_mutation_order)


_SERVICE_TESTS = ("test_stage_runs.py", "test_jobs_service.py", "test_dispatch_claims.py")


def _mutation_order(item: pytest.Item) -> tuple[bool, bool]:
    params = getattr(getattr(item, "callspec", None), "params", {})
    return params.get("any_session") != "sqlite", item.path.name not in _SERVICE_TESTS


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database, migrated with Alembic, dropped after the session.

    With TEST_DATABASE_TEMPLATE (an already migrated database), a copy of it instead: what
    `make mutation` uses, whose every mutant starts a session of its own.
    """
    name = f"gateway_test_{uuid.uuid4().hex[:12]}"
    template = os.environ.get("TEST_DATABASE_TEMPLATE")
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(
            text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        )
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    if not template:
        upgrade_schema(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A redis-server owned by this test session, on a free port."""
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
def settings(postgres_url: str, redis_server: RedisServer) -> Settings:
    """Test settings: no simulated latency, no backoff wait, a stream name of the test's own."""
    return Settings.from_env(
        {},
        database_url=postgres_url,
        redis_url=redis_server.url(),
        events_stream=f"job_events:test:{uuid.uuid4().hex[:8]}",
        provider_latency_scale=0.0,
        # The simulated analyzer and enricher: the fault tests need their failure knobs.
        analyzer_provider="simulated",
        enricher_provider="simulated",
        extractor_provider="fast",  # the simulated providers: fault tests keep their meaning
        retry_backoff_base=0.0,
        stage_max_retries=2,
        worker_concurrency=4,
        log_level="WARNING",
        task_sent_events=True,  # tests check which stage messages were sent
        task_events=True,  # and which the workers received, started, retried (Flower's views)
        auth_mode="off",  # the contract's behaviour; the tenant tests turn keys on
        # Counted, but never reached by the suite's bursts (a fast machine sends hundreds a
        # second); tests/test_ratelimit.py sets the limits it checks
        rate_limit="100000/second",
        rate_limit_create="100000/second",
    )


@pytest.fixture
def make_app(settings: Settings, postgres_url: str, redis_server: RedisServer) -> Iterator[Any]:
    """Build apps for the test (optionally with other settings); clean the database and Redis after."""
    built: list[Flask] = []

    def build(**changes: Any) -> Flask:
        app = create_app(settings.replace(**changes))
        app.config["TESTING"] = True
        built.append(app)
        return app

    yield build
    for app in built:
        get_services(app).database.dispose()
        get_services(app).redis.close()
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)}"))
    engine.dispose()
    if redis_server.process is not None:
        redis.Redis.from_url(redis_server.url()).flushall()


@pytest.fixture
def app(make_app: Any) -> Flask:
    """The app under test, with the test settings."""
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def services(app: Flask) -> Services:
    return get_services(app)


@pytest.fixture
def session(services: Services) -> Iterator[Session]:
    """A database session for arranging and asserting."""
    with services.database.session() as session:
        yield session


@pytest.fixture
def sqlite_session(tmp_path: Any) -> Iterator[Session]:
    """A session on a migrated SQLite database of the test's own: there the service layer takes
    its portable path, which `gateway.fused`'s single statements replace on PostgreSQL."""
    url = f"sqlite:///{tmp_path / 'gateway.sqlite3'}"
    upgrade_schema(url)
    database = Database(url)
    with database.session() as session:
        yield session
    database.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def any_session(request: pytest.FixtureRequest) -> Session:
    """A session on PostgreSQL (the stage transitions of `gateway.fused`), then on SQLite (their
    portable path): the same behaviour is expected of both."""
    name = "session" if request.param == "postgresql" else "sqlite_session"
    session: Session = request.getfixturevalue(name)
    return session


@pytest.fixture
def worker(app: Flask) -> Iterator[Any]:
    """A live Celery worker (threads pool) consuming the test broker."""
    celery = get_services(app).celery
    with start_worker(
        celery,
        pool="threads",
        concurrency=4,
        perform_ping_check=False,
        loglevel="WARNING",
        shutdown_timeout=30,
    ) as worker:
        yield worker


@pytest.fixture
def worker_for() -> Iterator[Any]:
    """Start a live Celery worker (threads pool) for an app built with make_app; stopped after the test."""
    stack = contextlib.ExitStack()

    def start(app: Flask, concurrency: int = 4, queues: list[str] | None = None) -> Any:
        """A worker for `app`, consuming `queues` (default: every stage's queue)."""
        options = {"queues": queues} if queues else {}
        return stack.enter_context(
            start_worker(
                get_services(app).celery,
                pool="threads",
                concurrency=concurrency,
                perform_ping_check=False,
                loglevel="WARNING",
                shutdown_timeout=30,
                **options,
            )
        )

    with stack:
        yield start


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis of the test's own with an append-only file, like docker-compose's: queues and
    streams survive the restarts the test inflicts on it."""
    server = RedisServer(persistent=True)
    server.start()
    yield server
    server.close()


@pytest.fixture
def launches() -> Iterator[list[Launch]]:
    """`make run` launches started by the test; every process of each is killed after it."""
    started: list[Launch] = []
    yield started
    for launch in started:
        launch.kill_everything()
