"""Store each bulk job report once per unique observable.

Adds ``bulk_job_reports`` and lets a ``bulk_job_results`` row reference a report
through ``report_index`` in place of carrying the whole entry in
``payload_json``, which becomes nullable. Existing rows keep their entries.

Revision ID: 0002
Revises: 0001
Create Date: 2026-02-01
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Result rows rewritten per statement by the downgrade.
DOWNGRADE_BATCH = 500

_results = sa.table(
    "bulk_job_results",
    sa.column("job_id", sa.String),
    sa.column("index", sa.Integer),
    sa.column("payload_json", sa.Text),
    sa.column("report_index", sa.Integer),
)
_reports = sa.table(
    "bulk_job_reports",
    sa.column("job_id", sa.String),
    sa.column("first_index", sa.Integer),
    sa.column("payload_json", sa.Text),
)


def upgrade() -> None:
    op.create_table(
        "bulk_job_reports",
        sa.Column(
            "job_id", sa.String(32), sa.ForeignKey("bulk_jobs.id"), primary_key=True
        ),
        sa.Column("first_index", sa.Integer, primary_key=True),
        sa.Column("payload_json", sa.Text, nullable=False),
    )
    with op.batch_alter_table("bulk_job_results") as batch:
        batch.add_column(sa.Column("report_index", sa.Integer, nullable=True))
        batch.alter_column("payload_json", existing_type=sa.Text, nullable=True)


def downgrade() -> None:
    """Write each referenced report back into its items, then drop the new table."""
    _expand_report_references()
    with op.batch_alter_table("bulk_job_results") as batch:
        batch.alter_column("payload_json", existing_type=sa.Text, nullable=False)
        batch.drop_column("report_index")
    op.drop_table("bulk_job_reports")


def _expand_report_references() -> None:
    connection = op.get_bind()
    pending = (
        sa.select(_results.c.job_id, _results.c.index, _results.c.report_index)
        .where(_results.c.report_index.is_not(None))
        .order_by(_results.c.job_id, _results.c.index)
        .limit(DOWNGRADE_BATCH)
    )
    while rows := connection.execute(pending).all():
        for job_id, index, report_index in rows:
            report_json = connection.execute(
                sa.select(_reports.c.payload_json).where(
                    _reports.c.job_id == job_id,
                    _reports.c.first_index == report_index,
                )
            ).scalar_one()
            result = json.loads(report_json)
            if index != report_index:
                result["credits"] = {"charged": 0, "remaining": None}
            connection.execute(
                sa.update(_results)
                .where(_results.c.job_id == job_id, _results.c.index == index)
                .values(
                    payload_json=json.dumps({"index": index, "result": result}),
                    report_index=None,
                )
            )
