"""Bulk jobs on arq, a Redis-backed asyncio job queue.

With ``settings.redis_url`` set, the API enqueues each job's id and an arq worker
runs it: ``iocscope worker`` in its own process, and also one inside
``iocscope serve`` unless ``service_embedded_worker`` is False. Each job is tried
once, because a retry would charge its items again.
"""

from __future__ import annotations

from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.worker import Worker, func

from iocscope.config import Settings
from iocscope.service.jobs import JobRunner
from iocscope.service.ratelimit import redis_key_prefix

TASK_NAME = "run_bulk_job"
# Seconds a job may run before arq cancels it; 100,000 items at a few lookups per
# second fit inside.
JOB_TIMEOUT_S = 12 * 3600


def queue_name(settings: Settings) -> str:
    return f"{redis_key_prefix(settings)}:jobs"


def redis_settings(settings: Settings) -> RedisSettings:
    url = settings.secret("redis_url")
    if url is None:
        raise ValueError("redis_url is not set; arq needs Redis")
    return RedisSettings.from_dsn(url)


async def run_bulk_job(ctx: dict[str, Any], job_id: str) -> None:
    runner: JobRunner = ctx["job_runner"]
    await runner.run(job_id)


class ArqDispatcher:
    def __init__(self, pool: ArqRedis, queue: str) -> None:
        self._pool = pool
        self._queue = queue

    @classmethod
    async def connect(cls, settings: Settings) -> ArqDispatcher:
        pool = await create_pool(redis_settings(settings))
        return cls(pool, queue_name(settings))

    async def submit(self, job_id: str) -> None:
        await self._pool.enqueue_job(
            TASK_NAME, job_id, _job_id=job_id, _queue_name=self._queue
        )

    async def close(self) -> None:
        await self._pool.aclose()


def build_worker(settings: Settings, runner: JobRunner, **options: Any) -> Worker:
    """Return an arq worker that runs bulk jobs with ``runner``."""
    return Worker(
        functions=[func(run_bulk_job, name=TASK_NAME, max_tries=1)],
        queue_name=queue_name(settings),
        redis_settings=redis_settings(settings),
        ctx={"job_runner": runner},
        job_timeout=JOB_TIMEOUT_S,
        max_tries=1,
        **options,
    )
