"""Database upgrades: what they report, and bulk job results across revisions."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from iocscope.service.bulk import BulkItem, GroupOutcome
from iocscope.service.database import (
    alembic_config,
    create_engine,
    session_factory,
    upgrade_database,
    upgrade_database_sync,
)
from iocscope.service.jobs import JobStore
from iocscope.service.keys import authenticate, create_key
from tests.api.service import ServiceSettings

HEAD = "0002"
REPORT = {"verdict": "unknown", "credits": {"charged": 3, "remaining": None}}
ERROR = {"field": "value", "value": "x", "message": "invalid", "code": "invalid"}


def test_upgrade_reports_what_it_did(database_settings: ServiceSettings) -> None:
    created = upgrade_database_sync(database_settings)
    assert created.before is None
    assert created.after == HEAD
    assert created.changed
    assert created.describe() == f"database schema created at revision {HEAD}"

    again = upgrade_database_sync(database_settings)
    assert again.before == HEAD
    assert again.after == HEAD
    assert not again.changed
    assert again.describe() == (
        f"database already at revision {HEAD}; nothing to upgrade"
    )


def test_upgrade_from_first_revision(database_settings: ServiceSettings) -> None:
    asyncio.run(_upgrade_from_first_revision(database_settings))


async def _upgrade_from_first_revision(settings: ServiceSettings) -> None:
    engine = create_engine(settings)
    try:
        first = await upgrade_database(engine, "0001")
        assert first.after == "0001"
        store, job_id = await _new_job(engine)
        old_entry = {"index": 0, "result": {"verdict": "clean", "credits": None}}
        async with engine.begin() as connection:
            # The result table as revision 0001 created it, without report_index.
            await connection.execute(
                text(
                    'INSERT INTO bulk_job_results (job_id, "index", payload_json) '
                    "VALUES (:job_id, 0, :payload)"
                ),
                {"job_id": job_id, "payload": json.dumps(old_entry)},
            )

        upgraded = await upgrade_database(engine)
        assert upgraded.before == "0001"
        assert upgraded.after == HEAD
        assert upgraded.describe() == f"database upgraded from revision 0001 to {HEAD}"
        assert await store.results(job_id, 0, 10) == [old_entry]
    finally:
        await engine.dispose()


def test_downgrade_writes_reports_back(database_settings: ServiceSettings) -> None:
    asyncio.run(_downgrade_writes_reports_back(database_settings))


async def _downgrade_writes_reports_back(settings: ServiceSettings) -> None:
    engine = create_engine(settings)
    try:
        await upgrade_database(engine)
        store, job_id = await _new_job(engine)
        writer = store.writer(job_id)
        await writer.add(GroupOutcome(indexes=[0, 2, 3], report=REPORT, charged=3))
        await writer.add(GroupOutcome(indexes=[1], error=ERROR))
        await writer.flush()
        expected = await store.results(job_id, 0, 10)
        assert [entry["index"] for entry in expected] == [0, 1, 2, 3]
        assert expected[0]["result"]["credits"]["charged"] == 3
        assert expected[2]["result"]["credits"]["charged"] == 0

        async with engine.begin() as connection:
            await connection.run_sync(_downgrade, "0001")
            rows = (
                await connection.execute(
                    text("SELECT payload_json FROM bulk_job_results ORDER BY 1")
                )
            ).all()
        entries = sorted((json.loads(row[0]) for row in rows), key=_index)
        assert entries == expected

        again = await upgrade_database(engine)
        assert again.before == "0001"
        assert again.after == HEAD
        assert await store.results(job_id, 0, 10) == expected
    finally:
        await engine.dispose()


def _downgrade(connection: Connection, revision: str) -> None:
    command.downgrade(alembic_config(connection), revision)


def _index(entry: dict[str, Any]) -> int:
    return int(entry["index"])


async def _new_job(engine: AsyncEngine) -> tuple[JobStore, str]:
    """Create a tenant, a key and a queued job of four items."""
    sessions = session_factory(engine)
    _, key, _ = await create_key(sessions, "acme", "team")
    principal = await authenticate(sessions, key)
    assert principal is not None
    store = JobStore(sessions)
    items = [BulkItem(value=f"item{n}.example") for n in range(4)]
    job_id = await store.create(principal, items, None, "request-1")
    return store, job_id
