"""Typed SQLAlchemy models: a job, its uploaded file, its stage runs, their large texts, the
event outbox, the tenants and API keys that own jobs, and the idempotency keys jobs were
created under."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    TypeDecorator,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class JobStatus(enum.StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class StageStatus(enum.StrEnum):
    PENDING = "pending"
    STARTED = "started"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


ACTIVE_JOB_STATUSES = (JobStatus.PENDING.value, JobStatus.PROCESSING.value)


def utcnow() -> datetime:
    """Timezone-aware now, in UTC."""
    return datetime.now(UTC)


def new_id() -> str:
    """A fresh opaque identifier."""
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; always returns aware datetimes, also on SQLite which drops the zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[str]: JSON}


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    document_name: Mapped[str] = mapped_column(String(255))
    document_type: Mapped[str] = mapped_column(String(100))
    document_content: Mapped[str] = mapped_column(Text)
    stages: Mapped[list[str]]
    # The provider per stage the client chose (pipeline_config.providers); a stage it left
    # out, or NULL, runs the configured provider.
    providers: Mapped[dict[str, Any] | None]
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.PENDING.value)
    error_stage: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    # Set when the chain was claimed for the broker; NULL means the relay must dispatch it.
    dispatched_at: Mapped[datetime | None]
    # Number of the job's latest event: its outbox rows are numbered 1, 2, ... in commit order.
    event_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The tenant of the key that created it; NULL for a job created with AUTH_MODE=off.
    tenant_id: Mapped[str | None] = mapped_column(String(64))

    runs: Mapped[list[StageRun]] = relationship(
        back_populates="job", order_by="StageRun.position", lazy="selectin"
    )

    __table_args__ = (
        # Keyset pagination: newest first, optionally narrowed by status or type.
        Index("ix_jobs_created_id", "created_at", "id"),
        Index("ix_jobs_status_created_id", "status", "created_at", "id"),
        Index("ix_jobs_type_created_id", "document_type", "created_at", "id"),
        Index("ix_jobs_type_status_created_id", "document_type", "status", "created_at", "id"),
        # A tenant's pages, as above (its document types are filtered within its own range).
        Index("ix_jobs_tenant_created_id", "tenant_id", "created_at", "id"),
        Index("ix_jobs_tenant_status_created_id", "tenant_id", "status", "created_at", "id"),
        Index(
            "ix_jobs_undispatched",
            "created_at",
            postgresql_where=text("dispatched_at IS NULL"),
            sqlite_where=text("dispatched_at IS NULL"),
        ),
    )


class StageRun(Base):
    __tablename__ = "stage_runs"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=StageStatus.PENDING.value)
    # Celery task id, chosen at creation so that cancel can revoke it before it is sent.
    task_id: Mapped[str] = mapped_column(String(36), default=new_id)
    # Times the stage started (duplicates and reruns after an outage included), shown to clients.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Provider failures retried so far: what STAGE_MAX_RETRIES bounds.
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    result: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime | None]

    job: Mapped[Job] = relationship(back_populates="runs")


class StageText(Base):
    """A stage's output text too large to inline in its result (see `gateway.texts`).

    Stored once, here: the stage's result and its `job.stage_completed` event carry a
    reference to it instead. Nothing loads it with the job.
    """

    __tablename__ = "stage_texts"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    stage: Mapped[str] = mapped_column(String(32), primary_key=True)
    text: Mapped[str] = mapped_column(Text)


class JobFile(Base):
    """An uploaded document: its bytes, stored in the job's create transaction, read once by
    its extraction stage. Nothing else loads it (a job of a file has an empty document_content).
    """

    __tablename__ = "job_files"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    # As the client declared them; the extractor tells the real type from the bytes.
    content_type: Mapped[str | None] = mapped_column(String(255))
    filename: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)


class OutboxEvent(Base):
    """An event recorded in the transaction of the change it reports, appended to the stream later."""

    __tablename__ = "outbox_events"

    # Per job, ids and seqs grow in commit order: every writer locks the job row first.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    # A uuid4: unique without an index to say so (each index costs every insert and mark).
    event_id: Mapped[str] = mapped_column(String(36), default=new_id)
    event_type: Mapped[str] = mapped_column(String(40))
    job_id: Mapped[str] = mapped_column(String(36), index=True)
    seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    payload: Mapped[dict[str, Any]]
    # The job's tenant, carried by the event (NULL: a job created with AUTH_MODE=off).
    tenant_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None]

    __table_args__ = (
        Index(
            "ix_outbox_unpublished",
            "id",
            postgresql_where=text("published_at IS NULL"),
            sqlite_where=text("published_at IS NULL"),
        ),
        Index("ix_outbox_published_at", "published_at"),
    )


class Tenant(Base):
    """A client of the gateway: it owns the jobs its keys create. Its id is the name it was given."""

    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """An API key of a tenant, stored as its HMAC-SHA-256 under the server secret (gateway.keys)."""

    __tablename__ = "api_keys"

    # The key's public start, shown in listings and used to revoke it; unique, so it finds
    # the one row to compare with.
    prefix: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    digest: Mapped[str] = mapped_column(String(64))
    # A read-only key may read its tenant's jobs but neither create nor cancel one (403).
    read_only: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class IdempotencyKey(Base):
    """An `Idempotency-Key` a job was created under, with its request's fingerprint (gateway.idempotency).

    Written in the job's own transaction; the primary key is what makes a key create one job
    at most, across API processes and restarts.
    """

    __tablename__ = "idempotency_keys"

    # The creating key's tenant; '' with AUTH_MODE=off (NULL would make every row distinct).
    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # SHA-256 of the canonical request body: the same key with another body is refused.
    fingerprint: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # After this the key is free again (IDEMPOTENCY_TTL).
    expires_at: Mapped[datetime] = mapped_column(index=True)


# The tables themselves, for writes that are one Core statement each.
JOBS = cast(Table, Job.__table__)
RUNS = cast(Table, StageRun.__table__)
OUTBOX = cast(Table, OutboxEvent.__table__)
TEXTS = cast(Table, StageText.__table__)
FILES = cast(Table, JobFile.__table__)
TENANTS = cast(Table, Tenant.__table__)
API_KEYS = cast(Table, ApiKey.__table__)
IDEMPOTENCY_KEYS = cast(Table, IdempotencyKey.__table__)
