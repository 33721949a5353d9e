"""Create tenants, API keys, credit balances, usage records and bulk jobs.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("plan", sa.String(64), nullable=False),
        sa.Column("webhook_secret", sa.String(128), nullable=False),
        _timestamp("created_at"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        _timestamp("created_at"),
        _timestamp("last_used_at", nullable=True),
        _timestamp("revoked_at", nullable=True),
    )
    op.create_index("ix_api_keys_tenant_id", "api_keys", ["tenant_id"])
    op.create_table(
        "credit_balances",
        sa.Column(
            "tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), primary_key=True
        ),
        sa.Column("period", sa.String(7), primary_key=True),
        sa.Column("used", sa.Integer, nullable=False),
    )
    op.create_table(
        "usage_records",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("key_id", sa.Integer, nullable=True),
        sa.Column("period", sa.String(7), nullable=False),
        _timestamp("created_at"),
        sa.Column("observable_type", sa.String(16), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=True),
        sa.Column("credits", sa.Integer, nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
    )
    op.create_index("ix_usage_tenant_period", "usage_records", ["tenant_id", "period"])
    op.create_table(
        "bulk_jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("key_id", sa.Integer, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("done", sa.Integer, nullable=False),
        sa.Column("items_json", sa.Text, nullable=False),
        sa.Column("webhook_url", sa.Text, nullable=True),
        sa.Column("summary_json", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("request_id", sa.String(128), nullable=False),
        _timestamp("created_at"),
        _timestamp("finished_at", nullable=True),
    )
    op.create_index("ix_bulk_jobs_tenant_id", "bulk_jobs", ["tenant_id"])
    op.create_table(
        "bulk_job_results",
        sa.Column(
            "job_id", sa.String(32), sa.ForeignKey("bulk_jobs.id"), primary_key=True
        ),
        sa.Column("index", sa.Integer, primary_key=True),
        sa.Column("payload_json", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("bulk_job_results")
    op.drop_table("bulk_jobs")
    op.drop_table("usage_records")
    op.drop_table("credit_balances")
    op.drop_table("api_keys")
    op.drop_table("tenants")
