"""Assemble everything one service process needs, and close it again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from iocscope.config import Settings
from iocscope.service.accounting import Ledger
from iocscope.service.bulk import BulkRunner
from iocscope.service.database import create_engine, session_factory, upgrade_database
from iocscope.service.jobs import (
    InProcessDispatcher,
    JobDispatcher,
    JobRunner,
    JobStore,
    LookupCounter,
)
from iocscope.service.plans import PlanBook, load_plan_book
from iocscope.service.ratelimit import RequestLimiter, make_storage

if TYPE_CHECKING:
    from iocscope.engine import Engine

log = structlog.get_logger(__name__)


@dataclass
class ServiceState:
    settings: Settings
    engine: Engine
    database: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    ledger: Ledger
    limiter: RequestLimiter
    book: PlanBook
    jobs: JobStore
    bulk: BulkRunner
    dispatcher: JobDispatcher
    # Counter of the items of the bulk jobs that this process runs, or None.
    lookup_counter: LookupCounter | None = None


def option(settings: Settings, name: str, default: object) -> object:
    """Read a service setting that config.Settings may not declare yet."""
    value = getattr(settings, name, None)
    return default if value is None else value


def bulk_concurrency(settings: Settings) -> int:
    return int(str(option(settings, "service_bulk_concurrency", 8)))


def job_runner(state: ServiceState) -> JobRunner:
    settings = state.settings
    return JobRunner(
        state.jobs,
        state.bulk,
        webhook_timeout_s=float(str(option(settings, "webhook_timeout_s", 5.0))),
        webhook_attempts=int(str(option(settings, "webhook_max_attempts", 3))),
        counter=state.lookup_counter,
    )


@asynccontextmanager
async def open_service(
    settings: Settings,
    engine: Engine | None = None,
    *,
    lookup_counter: LookupCounter | None = None,
) -> AsyncIterator[ServiceState]:
    """Open the database (upgrading it), the limiter, the engine and the job queue.

    ``lookup_counter`` counts each item of the bulk jobs that this process runs.
    """
    async with AsyncExitStack() as stack:
        if engine is None:
            from iocscope.runtime import open_engine

            engine = await stack.enter_async_context(open_engine(settings))
        database = create_engine(settings)
        stack.push_async_callback(database.dispose)
        upgrade = await upgrade_database(database)
        if upgrade.changed:
            log.info("database.upgraded", before=upgrade.before, after=upgrade.after)
        sessions = session_factory(database)
        ledger = Ledger(sessions)
        book = load_plan_book(settings)
        state = ServiceState(
            settings=settings,
            engine=engine,
            database=database,
            sessions=sessions,
            ledger=ledger,
            limiter=RequestLimiter(make_storage(settings)),
            book=book,
            jobs=JobStore(sessions),
            bulk=BulkRunner(engine, ledger, book, bulk_concurrency(settings)),
            dispatcher=_NotStarted(),
            lookup_counter=lookup_counter,
        )
        state.dispatcher = await _start_jobs(state, stack)
        stack.push_async_callback(state.dispatcher.close)
        log.info(
            "service.started",
            database=database.dialect.name,
            queue="arq" if settings.redis_url else "in-process",
        )
        yield state
    log.info("service.stopped")


async def _start_jobs(state: ServiceState, stack: AsyncExitStack) -> JobDispatcher:
    runner = job_runner(state)
    if state.settings.redis_url is None:
        return InProcessDispatcher(runner)
    from iocscope.service.queue import ArqDispatcher, build_worker

    dispatcher = await ArqDispatcher.connect(state.settings)
    if option(state.settings, "service_embedded_worker", True):
        worker = build_worker(state.settings, runner, handle_signals=False)
        task = asyncio.create_task(worker.async_run())

        async def stop_worker() -> None:
            await worker.close()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        stack.push_async_callback(stop_worker)
    return dispatcher


class _NotStarted:
    async def submit(self, job_id: str) -> None:
        raise RuntimeError("the job dispatcher is not started yet")

    async def close(self) -> None:
        return None
