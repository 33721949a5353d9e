"""Bulk jobs: stored in the database, run in process or by arq workers.

A job row contains the submitted items, its status (queued, running, finished or
failed) and its progress; each item's outcome becomes one ``bulk_job_results``
row once the job finishes. Whichever process runs the job reads everything it
needs from the database, so an arq worker on another machine can run it.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from typing import Any, Protocol

import structlog
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from iocscope.service.bulk import BulkItem, BulkOutcome, BulkRunner
from iocscope.service.keys import Principal, now
from iocscope.service.tables import BulkJob, BulkJobResult, Tenant
from iocscope.service.webhooks import deliver

log = structlog.get_logger(__name__)

# Rows inserted per statement when a finished job's results are stored.
RESULT_BATCH = 500
# Seconds between progress writes while a job runs.
PROGRESS_INTERVAL_S = 1.0


class JobStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def create(
        self,
        principal: Principal,
        items: Sequence[BulkItem],
        webhook_url: str | None,
        request_id: str,
    ) -> str:
        job = BulkJob(
            id=uuid.uuid4().hex,
            tenant_id=principal.tenant_id,
            key_id=principal.key_id,
            status="queued",
            total=len(items),
            done=0,
            items_json=json.dumps([asdict(item) for item in items]),
            webhook_url=webhook_url,
            request_id=request_id,
            created_at=now(),
        )
        async with self._sessions.begin() as session:
            session.add(job)
        return job.id

    async def get(self, job_id: str, tenant_id: int | None = None) -> BulkJob | None:
        """Return the job, or None if it does not exist or is another tenant's."""
        query = select(BulkJob).where(BulkJob.id == job_id)
        if tenant_id is not None:
            query = query.where(BulkJob.tenant_id == tenant_id)
        async with self._sessions() as session:
            return await session.scalar(query)

    async def results(self, job_id: str, offset: int, limit: int) -> list[Any]:
        query = (
            select(BulkJobResult.payload_json)
            .where(BulkJobResult.job_id == job_id)
            .order_by(BulkJobResult.index)
            .offset(offset)
            .limit(limit)
        )
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        return [json.loads(row) for row in rows]

    async def principal(self, job: BulkJob) -> Principal:
        async with self._sessions() as session:
            tenant = await session.get(Tenant, job.tenant_id)
        if tenant is None:
            raise LookupError(f"tenant {job.tenant_id} of job {job.id} not found")
        return Principal(
            tenant_id=tenant.id,
            tenant_name=tenant.name,
            plan=tenant.plan,
            key_id=job.key_id or 0,
            webhook_secret=tenant.webhook_secret,
        )

    async def claim(self, job_id: str) -> bool:
        """Move a queued job to running; False if another run already took it."""
        return await self._update(job_id, {"status": "running"}, only_status="queued")

    async def progress(self, job_id: str, done: int) -> None:
        await self._update(job_id, {"done": done})

    async def finish(self, job_id: str, outcome: BulkOutcome) -> None:
        rows = [
            {
                "job_id": job_id,
                "index": entry["index"],
                "payload_json": json.dumps(entry),
            }
            for entry in outcome.results
        ]
        async with self._sessions.begin() as session:
            for start in range(0, len(rows), RESULT_BATCH):
                batch = rows[start : start + RESULT_BATCH]
                await session.execute(insert(BulkJobResult), batch)
            await session.execute(
                update(BulkJob)
                .where(BulkJob.id == job_id)
                .values(
                    status="finished",
                    done=len(rows),
                    summary_json=json.dumps(outcome.summary),
                    finished_at=now(),
                )
            )

    async def fail(self, job_id: str, reason: str) -> None:
        await self._update(
            job_id, {"status": "failed", "error": reason, "finished_at": now()}
        )

    async def _update(
        self, job_id: str, values: dict[str, Any], only_status: str | None = None
    ) -> bool:
        statement = update(BulkJob).where(BulkJob.id == job_id)
        if only_status is not None:
            statement = statement.where(BulkJob.status == only_status)
        async with self._sessions.begin() as session:
            result = await session.execute(statement.values(**values))
        return bool(getattr(result, "rowcount", 0))


def job_items(job: BulkJob) -> list[BulkItem]:
    return [BulkItem(**fields) for fields in json.loads(job.items_json)]


class JobRunner:
    """Runs one stored job to the end and sends its webhook."""

    def __init__(
        self,
        store: JobStore,
        bulk: BulkRunner,
        *,
        webhook_timeout_s: float,
        webhook_attempts: int,
    ) -> None:
        self._store = store
        self._bulk = bulk
        self._webhook_timeout_s = webhook_timeout_s
        self._webhook_attempts = webhook_attempts

    async def run(self, job_id: str) -> None:
        job = await self._store.get(job_id)
        if job is None or not await self._store.claim(job_id):
            log.warning("job.skipped", job_id=job_id, reason="not queued")
            return
        log.info("job.started", job_id=job_id, total=job.total)
        principal = await self._store.principal(job)
        status, summary = await self._execute(job, principal)
        if job.webhook_url:
            payload = {"job_id": job.id, "status": status, "summary": summary}
            await deliver(
                job.webhook_url,
                principal.webhook_secret,
                payload,
                timeout_s=self._webhook_timeout_s,
                attempts=self._webhook_attempts,
            )

    async def _execute(
        self, job: BulkJob, principal: Principal
    ) -> tuple[str, dict[str, Any]]:
        """Run the job's items and store the outcome; return status and summary."""
        try:
            outcome = await self._bulk.run(
                job_items(job),
                principal,
                job.request_id,
                on_progress=_throttled(self._store, job.id),
            )
            await self._store.finish(job.id, outcome)
        except Exception as exc:
            log.exception("job.failed", job_id=job.id)
            await self._store.fail(job.id, f"internal error: {type(exc).__name__}")
            return "failed", {}
        log.info("job.finished", job_id=job.id, **outcome.summary)
        return "finished", outcome.summary


def _throttled(store: JobStore, job_id: str) -> Callable[[int], Awaitable[None]]:
    last_write = 0.0

    async def report(done: int) -> None:
        nonlocal last_write
        moment = time.monotonic()
        if moment - last_write >= PROGRESS_INTERVAL_S:
            last_write = moment
            await store.progress(job_id, done)

    return report


class JobDispatcher(Protocol):
    async def submit(self, job_id: str) -> None: ...

    async def close(self) -> None: ...


class InProcessDispatcher:
    """Runs jobs as tasks on the server's own event loop."""

    def __init__(self, runner: JobRunner) -> None:
        self._runner = runner
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, job_id: str) -> None:
        task = asyncio.create_task(self._runner.run(job_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        # NOTE: a job cut off here stays "running" in the database; nothing
        # resumes it after a restart.
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
