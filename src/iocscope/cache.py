"""Per-source result cache.

Keys combine the source name, a fingerprint of the source's configuration (key
identity, endpoint, options) and the observable's cache key, so rotating a key or
changing an endpoint takes effect at once. Only ``ok`` and ``not_found`` results are
stored; errors, timeouts and rate limits never are.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from typing import Protocol

import redis.asyncio
import structlog
from pydantic import ValidationError
from redis.exceptions import RedisError

from iocscope.models import SourceResult

log = structlog.get_logger(__name__)


class ResultCache(Protocol):
    async def get(self, key: str) -> tuple[SourceResult, float] | None:
        """Return the stored result and the UNIX time it was stored, or None."""
        ...

    async def set(self, key: str, result: SourceResult, ttl_s: int) -> None: ...


class MemoryCache:
    """An in-process LRU cache with per-entry expiry."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._entries: OrderedDict[str, tuple[float, float, str]] = OrderedDict()
        self._max_entries = max_entries

    async def get(self, key: str) -> tuple[SourceResult, float] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, stored_at, payload = entry
        if expires_at <= time.time():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return SourceResult.model_validate_json(payload), stored_at

    async def set(self, key: str, result: SourceResult, ttl_s: int) -> None:
        if ttl_s <= 0:
            return
        now = time.time()
        self._entries[key] = (now + ttl_s, now, result.model_dump_json())
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)


class RedisCache:
    """A cache in Redis that every worker shares. Redis expires entries at their TTL.

    Each entry is one string key ``<prefix><cache key>`` holding a JSON envelope
    with the storing time and the result. When Redis is unreachable, ``get`` reports
    a miss and ``set`` does nothing, so lookups still reach the vendors; both log
    the error.
    """

    def __init__(
        self, client: redis.asyncio.Redis, *, prefix: str = "iocscope:cache:"
    ) -> None:
        self._client = client
        self._prefix = prefix

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "iocscope:cache:") -> RedisCache:
        return cls(redis.asyncio.Redis.from_url(url), prefix=prefix)

    async def get(self, key: str) -> tuple[SourceResult, float] | None:
        try:
            payload = await self._client.get(self._prefix + key)
        except RedisError as exc:
            log.error("cache.get.failed", backend="redis", error=_describe(exc))
            return None
        if payload is None:
            return None
        try:
            envelope = json.loads(payload)
            result = SourceResult.model_validate(envelope["result"])
            stored_at = float(envelope["stored_at"])
        except (ValueError, KeyError, TypeError, ValidationError) as exc:
            # An entry written by another version of iocscope: treat it as a miss.
            log.warning("cache.entry.invalid", backend="redis", error=_describe(exc))
            return None
        return result, stored_at

    async def set(self, key: str, result: SourceResult, ttl_s: int) -> None:
        if ttl_s <= 0:
            return
        envelope = {"stored_at": time.time(), "result": result.model_dump(mode="json")}
        try:
            await self._client.set(self._prefix + key, json.dumps(envelope), ex=ttl_s)
        except RedisError as exc:
            log.error("cache.set.failed", backend="redis", error=_describe(exc))

    async def aclose(self) -> None:
        await self._client.aclose()


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]
