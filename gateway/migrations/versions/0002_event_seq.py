"""Number each job's events, so that Redis can keep the stream in per-job order; cheaper writes.

Purges get an index; event ids lose their unique index (uuid4s), and PostgreSQL leaves room
in each page of jobs and stage_runs, so that most of their updates stay on their page (HOT)
instead of writing every index again.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("event_seq", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("outbox_events") as batch:
        batch.add_column(sa.Column("seq", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix_outbox_published_at", "outbox_events", ["published_at"])
    if op.get_bind().dialect.name == "postgresql":  # SQLite keeps its unnamed constraint
        op.drop_constraint("outbox_events_event_id_key", "outbox_events", type_="unique")
        for table in ("jobs", "stage_runs"):
            op.execute(f"ALTER TABLE {table} SET (fillfactor = 70)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("jobs", "stage_runs"):
            op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
        op.create_unique_constraint("outbox_events_event_id_key", "outbox_events", ["event_id"])
    op.drop_index("ix_outbox_published_at", "outbox_events")
    with op.batch_alter_table("outbox_events") as batch:
        batch.drop_column("seq")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("event_seq")
