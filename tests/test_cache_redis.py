"""RedisCache against the real Redis server on 127.0.0.1:6379 (database 15)."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from iocscope.cache import RedisCache
from iocscope.models import SourceResult, Status, Verdict

REDIS_URL = "redis://127.0.0.1:6379/15"

pytestmark = pytest.mark.redis

HIT = SourceResult(
    status=Status.OK,
    verdict=Verdict.MALICIOUS,
    score=80,
    confidence=0.8,
    summary="Société Exemple 株式会社 reported 3 times",
    tags=["category:phishing"],
    data={"engines": "7/92", "nested": {"list": [1, 2]}},
)


@pytest.fixture
async def client() -> AsyncIterator[redis.asyncio.Redis]:
    connection = redis.asyncio.Redis.from_url(REDIS_URL)
    yield connection
    await connection.aclose()


@pytest.fixture
async def prefix(client: redis.asyncio.Redis) -> AsyncIterator[str]:
    """Yield a key prefix unique to one test, and delete its keys afterwards."""
    value = f"iocscope-test-{uuid.uuid4().hex[:12]}:"
    yield value
    keys = [key async for key in client.scan_iter(match=f"{value}*")]
    if keys:
        await client.delete(*keys)


async def test_round_trip_keeps_result(
    client: redis.asyncio.Redis, prefix: str
) -> None:
    cache = RedisCache(client, prefix=prefix)
    before = time.time()
    await cache.set("virustotal:abc:ip:192.0.2.1", HIT, 3600)
    cached = await cache.get("virustotal:abc:ip:192.0.2.1")
    assert cached is not None
    result, stored_at = cached
    assert result == HIT
    assert before <= stored_at <= time.time()


async def test_entry_expires_with_ttl(client: redis.asyncio.Redis, prefix: str) -> None:
    cache = RedisCache(client, prefix=prefix)
    await cache.set("key", HIT, 3600)
    ttl = await client.ttl(f"{prefix}key")
    assert 3590 <= ttl <= 3600
    await cache.set("short", HIT, 1)
    await asyncio.sleep(1.2)
    assert await cache.get("short") is None


async def test_zero_ttl_stores_nothing(
    client: redis.asyncio.Redis, prefix: str
) -> None:
    cache = RedisCache(client, prefix=prefix)
    await cache.set("key", HIT, 0)
    assert await client.exists(f"{prefix}key") == 0
    assert await cache.get("key") is None


async def test_missing_key_is_none(client: redis.asyncio.Redis, prefix: str) -> None:
    assert await RedisCache(client, prefix=prefix).get("absent") is None


async def test_two_workers_share_entries(prefix: str) -> None:
    first = RedisCache.from_url(REDIS_URL, prefix=prefix)
    second = RedisCache.from_url(REDIS_URL, prefix=prefix)
    try:
        await first.set("shared", HIT, 60)
        cached = await second.get("shared")
        assert cached is not None
        assert cached[0].summary == HIT.summary
    finally:
        await first.aclose()
        await second.aclose()


@pytest.mark.parametrize(
    "payload",
    [b"not json", b'{"stored_at": 1}', b'{"stored_at": 1, "result": {"status": "x"}}'],
)
async def test_invalid_entry_is_miss(
    client: redis.asyncio.Redis, prefix: str, payload: bytes
) -> None:
    await client.set(f"{prefix}bad", payload)
    assert await RedisCache(client, prefix=prefix).get("bad") is None


async def test_unreachable_redis_is_miss() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cache = RedisCache.from_url(f"redis://127.0.0.1:{port}/15", prefix="unused:")
    try:
        await cache.set("key", HIT, 60)
        assert await cache.get("key") is None
    finally:
        await cache.aclose()
