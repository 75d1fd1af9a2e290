"""Migrations: the schema goes up and down again, on PostgreSQL and on the embedded SQLite."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, inspect, text

from gateway.db import MIGRATIONS_DIR, upgrade_schema
from tests.support import PG_ADMIN_URL


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gateway.sqlite3'}"
        return
    name = f"gateway_migrate_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield admin.url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_the_schema_upgrades_downgrades_and_upgrades_again(empty_database: str):
    upgrade_schema(empty_database)
    assert tables(empty_database) == {
        "jobs", "stage_runs", "stage_texts", "outbox_events", "tenants", "api_keys",
        "idempotency_keys", "job_files",
    }  # fmt: skip

    command.downgrade(alembic_config(empty_database), "base")
    assert tables(empty_database) == set()

    upgrade_schema(empty_database)
    engine = create_engine(empty_database)
    try:
        with engine.connect() as conn:
            columns = {c["name"] for c in inspect(conn).get_columns("outbox_events")}
    finally:
        engine.dispose()
    assert {"seq", "event_id", "published_at"} <= columns


def test_the_outbox_purge_reads_an_index_on_published_at_not_the_whole_table(
    empty_database: str,
):
    # The relay purges by published_at every minute; without an index that is a full scan
    upgrade_schema(empty_database)
    engine = create_engine(empty_database)
    try:
        with engine.connect() as conn:
            indexes = inspect(conn).get_indexes("outbox_events")
    finally:
        engine.dispose()
    assert any(index["column_names"] == ["published_at"] for index in indexes), indexes
