"""SQLAlchemy tables for tenants, API keys, credits, usage and bulk jobs.

The Alembic migrations under ``iocscope.migrations`` create these tables; a change
here needs a new migration there.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    plan: Mapped[str] = mapped_column(String(64))
    # Secret that signs this tenant's webhook deliveries (HMAC-SHA256).
    webhook_secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    # Hex SHA-256 of the whole key; the key itself is never stored.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CreditBalance(Base):
    """Credits a tenant has used in one calendar month ("2026-12")."""

    __tablename__ = "credit_balances"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    used: Mapped[int] = mapped_column(Integer, default=0)


class UsageRecord(Base):
    """One lookup: what it was and what it cost after adjustment."""

    __tablename__ = "usage_records"
    __table_args__ = (Index("ix_usage_tenant_period", "tenant_id", "period"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    key_id: Mapped[int | None] = mapped_column(Integer)
    period: Mapped[str] = mapped_column(String(7))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    observable_type: Mapped[str] = mapped_column(String(16))
    verdict: Mapped[str | None] = mapped_column(String(16))
    credits: Mapped[int] = mapped_column(Integer)
    request_id: Mapped[str] = mapped_column(String(128))


class BulkJob(Base):
    __tablename__ = "bulk_jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    key_id: Mapped[int | None] = mapped_column(Integer)
    # queued, running, finished or failed.
    status: Mapped[str] = mapped_column(String(16))
    total: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer, default=0)
    # The submitted items as a JSON array, read by whichever worker runs the job.
    items_json: Mapped[str] = mapped_column(Text)
    webhook_url: Mapped[str | None] = mapped_column(Text)
    summary_json: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class BulkJobReport(Base):
    """The report of one unique observable in a job, shared by its duplicate items."""

    __tablename__ = "bulk_job_reports"

    job_id: Mapped[str] = mapped_column(ForeignKey("bulk_jobs.id"), primary_key=True)
    # Index of the first item with this observable, the one that was charged.
    first_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The report as JSON, with ``credits`` as charged to that first item.
    payload_json: Mapped[str] = mapped_column(Text)


class BulkJobResult(Base):
    """One item's outcome: a reference to a stored report, or the entry as JSON.

    An item with a report has ``report_index`` set to the report's
    ``first_index`` and no ``payload_json``. An item with an error has
    ``payload_json`` set to ``{"index", "error"}``. Rows written before
    ``bulk_job_reports`` existed carry the whole ``{"index", "result"}`` entry.
    """

    __tablename__ = "bulk_job_results"

    job_id: Mapped[str] = mapped_column(ForeignKey("bulk_jobs.id"), primary_key=True)
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    payload_json: Mapped[str | None] = mapped_column(Text)
    report_index: Mapped[int | None] = mapped_column(Integer)
