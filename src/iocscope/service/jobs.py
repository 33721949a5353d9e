"""Bulk jobs: stored in the database, run in process or by arq workers.

A job row contains the submitted items, its status (queued, running, finished or
failed) and its progress. While the job runs, each unique observable's report
becomes one ``bulk_job_reports`` row and each item one ``bulk_job_results`` row
that references its report or carries its error. They are written in small
batches, so a running job holds only a few reports in memory. Whichever process
runs the job reads everything it needs from the database, so an arq worker on
another machine can run it.
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
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from iocscope.service.bulk import BulkItem, BulkRunner, GroupOutcome, item_entry
from iocscope.service.keys import Principal, now
from iocscope.service.tables import BulkJob, BulkJobReport, BulkJobResult, Tenant
from iocscope.service.webhooks import deliver

log = structlog.get_logger(__name__)

# Item rows buffered before a running job writes them, and per INSERT statement.
RESULT_BATCH = 500
# Reports buffered before a running job writes them. A report from every
# built-in source is about 36 KB of JSON, so a full buffer is about 1 MB.
REPORT_BATCH = 25
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

    async def results(
        self, job_id: str, offset: int, limit: int
    ) -> list[dict[str, Any]]:
        """Return a page of a job's item entries, in input order."""
        query = (
            select(
                BulkJobResult.index,
                BulkJobResult.payload_json,
                BulkJobResult.report_index,
            )
            .where(BulkJobResult.job_id == job_id)
            .order_by(BulkJobResult.index)
            .offset(offset)
            .limit(limit)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
            report_indexes = {
                row.report_index for row in rows if row.report_index is not None
            }
            reports = await self._reports(session, job_id, report_indexes)
        entries = []
        for index, payload_json, report_index in rows:
            if report_index is None:
                if payload_json is None:
                    raise ValueError(f"result {index} of job {job_id} is empty")
                entries.append(json.loads(payload_json))
                continue
            entry = item_entry(
                index, reports[report_index], None, first=index == report_index
            )
            entries.append(entry)
        return entries

    @staticmethod
    async def _reports(
        session: AsyncSession, job_id: str, first_indexes: set[int]
    ) -> dict[int, dict[str, Any]]:
        if not first_indexes:
            return {}
        query = select(BulkJobReport.first_index, BulkJobReport.payload_json).where(
            BulkJobReport.job_id == job_id,
            BulkJobReport.first_index.in_(sorted(first_indexes)),
        )
        rows = (await session.execute(query)).all()
        return {first_index: json.loads(payload) for first_index, payload in rows}

    def writer(self, job_id: str) -> ResultWriter:
        return ResultWriter(self._sessions, job_id)

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

    async def finish(self, job_id: str, summary: dict[str, Any]) -> None:
        """Mark a job finished. All its results must be written before this."""
        await self._update(
            job_id,
            {
                "status": "finished",
                "done": summary["total"],
                "summary_json": json.dumps(summary),
                "finished_at": now(),
            },
        )

    async def fail(self, job_id: str, reason: str) -> None:
        """Mark a job failed and delete the results it had written so far."""
        async with self._sessions.begin() as session:
            for table in (BulkJobResult, BulkJobReport):
                await session.execute(delete(table).where(table.job_id == job_id))
            await session.execute(
                update(BulkJob)
                .where(BulkJob.id == job_id)
                .values(status="failed", error=reason, finished_at=now())
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


class ResultWriter:
    """Buffers a running job's outcomes and writes them in small batches.

    Several bulk workers call :meth:`add` at once. A worker that fills the
    buffer takes it over and writes it, while the others start a new one, so
    memory stays near ``RESULT_BATCH`` rows and ``REPORT_BATCH`` reports per
    worker. Call :meth:`flush` once the batch ends.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], job_id: str):
        self._sessions = sessions
        self._job_id = job_id
        self._results: list[dict[str, Any]] = []
        self._reports: list[dict[str, Any]] = []
        self._lock = asyncio.Lock()

    async def add(self, outcome: GroupOutcome) -> None:
        first_index = outcome.indexes[0]
        if outcome.report is not None:
            self._reports.append(
                {
                    "job_id": self._job_id,
                    "first_index": first_index,
                    "payload_json": json.dumps(outcome.report),
                }
            )
        for index in outcome.indexes:
            self._results.append(self._result_row(outcome, index, first_index))
            if len(self._results) >= RESULT_BATCH:
                await self.flush()
        if len(self._reports) >= REPORT_BATCH:
            await self.flush()

    def _result_row(
        self, outcome: GroupOutcome, index: int, first_index: int
    ) -> dict[str, Any]:
        if outcome.report is not None:
            return {
                "job_id": self._job_id,
                "index": index,
                "payload_json": None,
                "report_index": first_index,
            }
        entry = item_entry(index, None, outcome.error, first=index == first_index)
        return {
            "job_id": self._job_id,
            "index": index,
            "payload_json": json.dumps(entry),
            "report_index": None,
        }

    async def flush(self) -> None:
        """Write everything buffered so far."""
        results, self._results = self._results, []
        reports, self._reports = self._reports, []
        if not results and not reports:
            return
        async with self._lock, self._sessions.begin() as session:
            if reports:
                await session.execute(insert(BulkJobReport), reports)
            if results:
                await session.execute(insert(BulkJobResult), results)


def job_items(job: BulkJob) -> list[BulkItem]:
    return [BulkItem(**fields) for fields in json.loads(job.items_json)]


class LookupCounter(Protocol):
    """Counts finished lookups, such as the ``/metrics`` counters of the API."""

    def lookup(self, verdict: str, credits: int) -> None: ...


class JobRunner:
    """Runs one stored job to the end and sends its webhook."""

    def __init__(
        self,
        store: JobStore,
        bulk: BulkRunner,
        *,
        webhook_timeout_s: float,
        webhook_attempts: int,
        counter: LookupCounter | None = None,
    ) -> None:
        self._store = store
        self._bulk = bulk
        self._webhook_timeout_s = webhook_timeout_s
        self._webhook_attempts = webhook_attempts
        self._counter = counter

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
        writer = self._store.writer(job.id)

        async def store_and_count(outcome: GroupOutcome) -> None:
            await writer.add(outcome)
            self._count(outcome)

        try:
            summary = await self._bulk.stream(
                job_items(job),
                principal,
                job.request_id,
                store_and_count,
                on_progress=_throttled(self._store, job.id),
            )
            await writer.flush()
            await self._store.finish(job.id, summary)
        except Exception as exc:
            log.exception("job.failed", job_id=job.id)
            cause = exc.exceptions[0] if isinstance(exc, ExceptionGroup) else exc
            await self._store.fail(job.id, f"internal error: {type(cause).__name__}")
            return "failed", {}
        log.info("job.finished", job_id=job.id, **summary)
        return "finished", summary

    def _count(self, outcome: GroupOutcome) -> None:
        """Count each item with a report, as the synchronous bulk path does."""
        if self._counter is None or outcome.report is None:
            return
        verdict = str(outcome.report["verdict"])
        self._counter.lookup(verdict, outcome.charged)
        for _ in outcome.indexes[1:]:
            self._counter.lookup(verdict, 0)


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
