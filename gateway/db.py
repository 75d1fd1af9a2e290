"""Engine and session factory for one database URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def make_engine(url: str, pool_size: int = 20, pool_timeout: float = 5.0, **options: Any) -> Engine:
    """An engine with the connection habits the gateway relies on (fast failure, bounded pool).

    The pool keeps up to `pool_size` connections open and never opens more: a thread that
    finds none free waits `pool_timeout` seconds, then fails (a 503 in the API). There is no
    ping on checkout: a connection broken by a database restart fails its first statement,
    which invalidates the whole pool, and the caller's retry gets fresh connections.
    """
    parsed = make_url(url)
    # SQL parameters carry document content: keep them out of logs and error messages.
    kwargs: dict[str, Any] = {
        "hide_parameters": True,
        "pool_size": pool_size,
        "max_overflow": 0,
        "pool_timeout": pool_timeout,
        **options,
    }
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
    elif parsed.get_backend_name() == "postgresql":
        # An unreachable database must answer 503 quickly, not hang a request.
        kwargs["connect_args"] = {"connect_timeout": 3}
    engine = create_engine(parsed, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the worker's writes
    cursor.close()


class Database:
    """An engine plus its session factory; each unit of work opens its own session."""

    def __init__(self, url: str, pool_size: int = 20, pool_timeout: float = 5.0) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size, pool_timeout)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Reads need no transaction: autocommit spares the BEGIN and ROLLBACK round trips.
        # A pool of its own, so that no connection switches modes (a round trip each way).
        self.read_engine = make_engine(url, pool_size, pool_timeout, isolation_level="AUTOCOMMIT")
        self.readers = sessionmaker(self.read_engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session closed on exit, rolling back what was not committed.

        Service functions commit their own work (the rule is in `gateway.transitions`).
        """
        with self.sessions() as session:
            yield session

    @contextmanager
    def transition(self) -> Iterator[Session]:
        """A session for one state change that `gateway.fused` makes in a single statement
        (start or complete a stage).

        On PostgreSQL it runs in autocommit: the statement is atomic on its own, so the change
        costs one round trip, with no BEGIN and COMMIT around it. Elsewhere (SQLite), where the
        change takes several statements, it is a transactional session like `session()`.
        """
        with (self.readers if self.engine.dialect.name == "postgresql" else self.sessions)() as s:
            yield s

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A bare connection for reads only, in autocommit: what a request that reads with a
        statement or two needs, without a session's bookkeeping around it."""
        with self.read_engine.connect() as connection:
            yield connection

    @contextmanager
    def reader(self) -> Iterator[Session]:
        """A session for reads only: each statement runs on its own, outside a transaction."""
        with self.readers() as session:
            yield session

    def dispose(self) -> None:
        """Close pooled connections (after fork, at shutdown)."""
        self.engine.dispose()
        self.read_engine.dispose()


def upgrade_schema(url: str, revision: str = "head") -> None:
    """Apply Alembic migrations up to `revision`; the schema is never created any other way."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, revision)
