"""Per-tenant request limits with the ``limits`` library.

A moving window of one minute: at most ``requests_per_minute`` requests in any 60
seconds. Counters live in process memory by default and in Redis when
``settings.redis_url`` is set, so that every replica shares them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from iocscope.config import Settings


@dataclass(frozen=True)
class LimitState:
    allowed: bool
    limit: int
    remaining: int
    # Whole seconds until a request slot frees up again.
    reset_s: int


def redis_key_prefix(settings: Settings) -> str:
    return str(getattr(settings, "redis_key_prefix", "iocscope"))


def make_storage(settings: Settings) -> Storage:
    url = settings.secret("redis_url")
    if url is None:
        return MemoryStorage()
    scheme, rest = url.split("://", 1)
    return RedisStorage(
        f"async+{scheme}://{rest}",
        implementation="redispy",
        key_prefix=f"{redis_key_prefix(settings)}:limits",
    )


class RequestLimiter:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._strategy = MovingWindowRateLimiter(storage)

    async def hit(self, tenant_id: int, per_minute: int) -> LimitState:
        """Count one request for the tenant and say whether it is allowed."""
        item = RateLimitItemPerMinute(per_minute)
        identifier = f"tenant:{tenant_id}"
        allowed = await self._strategy.hit(item, identifier)
        stats = await self._strategy.get_window_stats(item, identifier)
        reset_s = max(1, math.ceil(stats.reset_time - time.time()))
        return LimitState(
            allowed=allowed,
            limit=per_minute,
            remaining=max(0, stats.remaining),
            reset_s=reset_s,
        )

    async def peek(self, tenant_id: int, per_minute: int) -> LimitState:
        """Return the tenant's state without counting a request."""
        item = RateLimitItemPerMinute(per_minute)
        stats = await self._strategy.get_window_stats(item, f"tenant:{tenant_id}")
        return LimitState(
            allowed=stats.remaining > 0,
            limit=per_minute,
            remaining=max(0, stats.remaining),
            reset_s=max(1, math.ceil(stats.reset_time - time.time())),
        )
