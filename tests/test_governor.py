"""Upstream governor: rate limits, daily quotas, 429 backoff and the circuit breaker."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
import redis.asyncio
from pydantic import Field

from iocscope.config import Settings
from iocscope.errors import ConfigError
from iocscope.governor import UpstreamGovernor
from iocscope.models import ObservableType, SourceResult, Status
from iocscope.sources.base import SourceSpec

REDIS_URL = "redis://127.0.0.1:6379/15"

SPEC = SourceSpec(
    name="vendor",
    types=frozenset({ObservableType.IP}),
    description="a network source under test",
    network=True,
)
OK = SourceResult(status=Status.OK)
ERROR = SourceResult(status=Status.ERROR, reason="upstream returned 500")
TIMEOUT = SourceResult(status=Status.TIMEOUT, reason="timed out after 1.0 s")


class Clock:
    """A wall clock that tests move by hand."""

    def __init__(self, now: float = 1_760_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class BudgetSettings(Settings):
    """Settings with the override fields the governor reads when present."""

    source_rate_limits: dict[str, str | None] = Field(default_factory=dict)
    source_daily_quotas: dict[str, int | None] = Field(default_factory=dict)


def rate_limited(seconds: float | None = 60) -> SourceResult:
    return SourceResult(
        status=Status.RATE_LIMITED,
        reason="upstream rate limit reached (HTTP 429)",
        retry_after_s=seconds,
    )


async def test_rate_limit_allows_n_then_refuses() -> None:
    governor = UpstreamGovernor(Settings())
    spec = replace(SPEC, rate_limit="3/minute")
    for _ in range(3):
        assert await governor.admit(spec) is None
    refusal = await governor.admit(spec)
    assert refusal is not None
    assert refusal.status is Status.RATE_LIMITED
    assert refusal.reason == "local rate limit of 3 per 1 minute reached"
    assert refusal.retry_after_s is not None
    assert 55 < refusal.retry_after_s <= 60


async def test_rate_limits_are_per_source() -> None:
    governor = UpstreamGovernor(Settings())
    first = replace(SPEC, rate_limit="1/minute")
    second = replace(first, name="other")
    assert await governor.admit(first) is None
    assert await governor.admit(second) is None
    assert await governor.admit(first) is not None


async def test_daily_quota_spent_is_skipped() -> None:
    governor = UpstreamGovernor(Settings())
    spec = replace(SPEC, daily_quota=2)
    assert await governor.admit(spec) is None
    assert await governor.admit(spec) is None
    refusal = await governor.admit(spec)
    assert refusal is not None
    assert refusal.status is Status.SKIPPED
    assert refusal.reason == "quota"
    health = await governor.health(spec)
    assert health.quota_left == 0
    assert health.daily_quota == 2


async def test_quota_counts_per_utc_day() -> None:
    clock = Clock(1_760_000_000.0)
    governor = UpstreamGovernor(Settings(), clock=clock)
    spec = replace(SPEC, daily_quota=1)
    assert await governor.admit(spec) is None
    assert await governor.admit(spec) is not None
    clock.now += 86_400
    assert await governor.admit(spec) is None


async def test_rate_refusal_spends_no_quota() -> None:
    governor = UpstreamGovernor(Settings())
    spec = replace(SPEC, rate_limit="1/minute", daily_quota=10)
    assert await governor.admit(spec) is None
    assert await governor.admit(spec) is not None
    health = await governor.health(spec)
    assert health.quota_left == 9


async def test_429_backs_off_for_retry_after() -> None:
    clock = Clock()
    governor = UpstreamGovernor(Settings(), clock=clock)
    assert await governor.admit(SPEC) is None
    await governor.record(SPEC, rate_limited(60))
    clock.now += 15
    refusal = await governor.admit(SPEC)
    assert refusal is not None
    assert refusal.status is Status.RATE_LIMITED
    assert refusal.retry_after_s == 45
    assert refusal.reason == "backing off after the vendor's rate limit"
    health = await governor.health(SPEC)
    assert health.backoff_until == clock.now + 45
    assert health.last_error == "upstream rate limit reached (HTTP 429)"
    clock.now += 45
    assert await governor.admit(SPEC) is None


async def test_429_without_retry_after_waits_default() -> None:
    clock = Clock()
    governor = UpstreamGovernor(Settings(), clock=clock)
    await governor.record(SPEC, rate_limited(None))
    refusal = await governor.admit(SPEC)
    assert refusal is not None
    assert refusal.retry_after_s == 60


async def test_breaker_opens_after_threshold() -> None:
    clock = Clock()
    governor = UpstreamGovernor(
        Settings(), clock=clock, failure_threshold=3, cooldown_s=30
    )
    for result in (ERROR, TIMEOUT):
        await governor.record(SPEC, result)
    assert await governor.admit(SPEC) is None
    await governor.record(SPEC, ERROR)
    refusal = await governor.admit(SPEC)
    assert refusal is not None
    assert refusal.status is Status.SKIPPED
    assert refusal.reason == "circuit open"
    assert refusal.retry_after_s == 30
    health = await governor.health(SPEC)
    assert health.breaker == "open"
    assert health.consecutive_failures == 3
    assert health.last_error == "upstream returned 500"
    assert health.last_error_at == clock.now


async def test_breaker_half_open_lets_one_probe() -> None:
    clock = Clock()
    governor = UpstreamGovernor(
        Settings(), clock=clock, failure_threshold=2, cooldown_s=30
    )
    await governor.record(SPEC, ERROR)
    await governor.record(SPEC, ERROR)
    clock.now += 30
    assert (await governor.health(SPEC)).breaker == "half-open"
    assert await governor.admit(SPEC) is None
    second = await governor.admit(SPEC)
    assert second is not None
    assert second.reason == "circuit open"
    assert second.summary == "half-open: one probe call is under way"
    third = await governor.admit(SPEC)
    assert third is not None
    assert third.reason == "circuit open"


async def test_breaker_closes_on_probe_success() -> None:
    clock = Clock()
    governor = UpstreamGovernor(
        Settings(), clock=clock, failure_threshold=2, cooldown_s=30
    )
    await governor.record(SPEC, ERROR)
    await governor.record(SPEC, ERROR)
    clock.now += 30
    assert await governor.admit(SPEC) is None
    await governor.record(SPEC, OK)
    health = await governor.health(SPEC)
    assert health.breaker == "closed"
    assert health.consecutive_failures == 0
    assert await governor.admit(SPEC) is None
    assert await governor.admit(SPEC) is None


async def test_failed_probe_reopens_breaker() -> None:
    clock = Clock()
    governor = UpstreamGovernor(
        Settings(), clock=clock, failure_threshold=2, cooldown_s=30
    )
    await governor.record(SPEC, ERROR)
    await governor.record(SPEC, ERROR)
    clock.now += 30
    assert await governor.admit(SPEC) is None
    await governor.record(SPEC, TIMEOUT)
    refusal = await governor.admit(SPEC)
    assert refusal is not None
    assert refusal.reason == "circuit open"
    assert refusal.retry_after_s == 30
    clock.now += 30
    assert await governor.admit(SPEC) is None


async def test_rate_limited_probe_frees_probe() -> None:
    clock = Clock()
    governor = UpstreamGovernor(
        Settings(), clock=clock, failure_threshold=1, cooldown_s=30
    )
    await governor.record(SPEC, ERROR)
    clock.now += 30
    assert await governor.admit(SPEC) is None
    await governor.record(SPEC, rate_limited(5))
    clock.now += 5
    assert await governor.admit(SPEC) is None


async def test_success_resets_failure_count() -> None:
    governor = UpstreamGovernor(Settings(), failure_threshold=3)
    for result in (ERROR, ERROR, OK, ERROR, ERROR):
        await governor.record(SPEC, result)
    assert await governor.admit(SPEC) is None
    assert (await governor.health(SPEC)).breaker == "closed"


async def test_local_sources_are_not_governed() -> None:
    governor = UpstreamGovernor(Settings(), failure_threshold=1)
    spec = replace(SPEC, network=False, rate_limit="1/minute", daily_quota=1)
    for _ in range(3):
        assert await governor.admit(spec) is None
        await governor.record(spec, ERROR)
    assert (await governor.health(spec)).breaker == "closed"


async def test_settings_override_spec_budget() -> None:
    settings = BudgetSettings(
        source_rate_limits={"vendor": "1/minute"},
        source_daily_quotas={"vendor": None},
    )
    governor = UpstreamGovernor(settings)
    spec = replace(SPEC, rate_limit="100/minute", daily_quota=5)
    assert governor.rate_limit(spec) == "1/minute"
    assert governor.daily_quota(spec) is None
    assert await governor.admit(spec) is None
    refusal = await governor.admit(spec)
    assert refusal is not None
    assert refusal.status is Status.RATE_LIMITED
    assert (await governor.health(spec)).quota_left is None


def test_invalid_override_names_source() -> None:
    settings = BudgetSettings(source_rate_limits={"vendor": "often"})
    with pytest.raises(ConfigError, match="invalid rate limit 'often' for source"):
        UpstreamGovernor(settings)


async def test_invalid_spec_limit_names_source() -> None:
    governor = UpstreamGovernor(Settings())
    with pytest.raises(ConfigError, match="'vendor'"):
        await governor.admit(replace(SPEC, rate_limit="four a minute"))


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """Yield a key prefix unique to one test, and delete its keys afterwards."""
    prefix = f"iocscope-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def shared_pair(prefix: str) -> tuple[UpstreamGovernor, UpstreamGovernor]:
    settings = Settings(redis_url=REDIS_URL)
    return (
        UpstreamGovernor.from_settings(settings, key_prefix=prefix),
        UpstreamGovernor.from_settings(settings, key_prefix=prefix),
    )


@pytest.mark.redis
async def test_redis_rate_limit_shared(redis_prefix: str) -> None:
    first, second = shared_pair(redis_prefix)
    try:
        spec = replace(SPEC, rate_limit="3/minute", daily_quota=100)
        assert await first.admit(spec) is None
        assert await second.admit(spec) is None
        assert await first.admit(spec) is None
        refusal = await second.admit(spec)
        assert refusal is not None
        assert refusal.status is Status.RATE_LIMITED
        assert (await first.health(spec)).quota_left == 97
    finally:
        await first.aclose()
        await second.aclose()


@pytest.mark.redis
async def test_redis_quota_shared(redis_prefix: str) -> None:
    first, second = shared_pair(redis_prefix)
    try:
        spec = replace(SPEC, daily_quota=2)
        assert await first.admit(spec) is None
        assert await second.admit(spec) is None
        refusal = await first.admit(spec)
        assert refusal is not None
        assert refusal.reason == "quota"
    finally:
        await first.aclose()
        await second.aclose()


@pytest.mark.redis
async def test_redis_backoff_and_breaker_shared(redis_prefix: str) -> None:
    first, second = shared_pair(redis_prefix)
    try:
        await first.record(SPEC, rate_limited(60))
        refusal = await second.admit(SPEC)
        assert refusal is not None
        assert refusal.status is Status.RATE_LIMITED
        assert refusal.retry_after_s is not None
        assert 59 < refusal.retry_after_s <= 60

        other = replace(SPEC, name="other")
        for _ in range(5):
            await first.record(other, ERROR)
        refusal = await second.admit(other)
        assert refusal is not None
        assert refusal.reason == "circuit open"
        health = await second.health(other)
        assert health.breaker == "open"
        assert health.consecutive_failures == 5
        assert health.last_error == "upstream returned 500"
    finally:
        await first.aclose()
        await second.aclose()


@pytest.mark.redis
async def test_redis_probe_claimed_once(redis_prefix: str) -> None:
    settings = Settings(redis_url=REDIS_URL)
    clock = Clock()
    # The clock moves the cooldown, but the probe claim expires by Redis time.
    first, second = (
        UpstreamGovernor.from_settings(settings, key_prefix=redis_prefix, clock=clock)
        for _ in range(2)
    )
    try:
        for _ in range(5):
            await first.record(SPEC, ERROR)
        clock.now += 60
        assert await first.admit(SPEC) is None
        refusal = await second.admit(SPEC)
        assert refusal is not None
        assert refusal.reason == "circuit open"
        await first.record(SPEC, OK)
        assert await second.admit(SPEC) is None
    finally:
        await first.aclose()
        await second.aclose()


@pytest.fixture
def unused_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_unreachable_redis_is_error_result(unused_port: int) -> None:
    settings = Settings(redis_url=f"redis://127.0.0.1:{unused_port}/15")
    governor = UpstreamGovernor.from_settings(settings, key_prefix="unused")
    try:
        refusal = await governor.admit(SPEC)
        assert refusal is not None
        assert refusal.status is Status.ERROR
        assert refusal.reason is not None
        assert refusal.reason.startswith("rate-limit store unavailable")
        await governor.record(SPEC, ERROR)
    finally:
        await governor.aclose()
