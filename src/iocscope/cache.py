"""Per-source result cache.

Keys combine the source name, a fingerprint of the source's configuration (key
identity, endpoint, options) and the observable's cache key, so rotating a key or
changing an endpoint takes effect at once. Only ``ok`` and ``not_found`` results are
stored; errors, timeouts and rate limits never are.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol

from iocscope.models import SourceResult


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
