"""Tenants and their API keys; jobs and events carry the tenant that owns them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from gateway.models import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("prefix", sa.String(32), primary_key=True),
        sa.Column(
            "tenant_id",
            sa.String(64),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("read_only", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_api_keys_tenant_id", "api_keys", ["tenant_id"])
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("tenant_id", sa.String(64), nullable=True))
    op.create_index("ix_jobs_tenant_created_id", "jobs", ["tenant_id", "created_at", "id"])
    op.create_index(
        "ix_jobs_tenant_status_created_id", "jobs", ["tenant_id", "status", "created_at", "id"]
    )
    with op.batch_alter_table("outbox_events") as batch:
        batch.add_column(sa.Column("tenant_id", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox_events") as batch:
        batch.drop_column("tenant_id")
    op.drop_index("ix_jobs_tenant_status_created_id", "jobs")
    op.drop_index("ix_jobs_tenant_created_id", "jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("tenant_id")
    op.drop_index("ix_api_keys_tenant_id", "api_keys")
    op.drop_table("api_keys")
    op.drop_table("tenants")
