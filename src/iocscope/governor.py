"""Upstream governor: rate limits, daily quotas, 429 backoff and a circuit breaker.

It implements the engine's ``Governor`` protocol for network sources (``spec.network``
is True) and lets local sources through untouched. Per source:

* rate limit: ``spec.rate_limit`` in the ``limits`` notation ("4/minute"), metered
  with a moving window, so no window of that length ever contains more calls;
* daily quota: ``spec.daily_quota`` calls per UTC day;
* backoff: after an upstream 429 no call goes out until its Retry-After has passed
  (``default_backoff_s`` when the vendor sent none);
* circuit breaker: ``failure_threshold`` consecutive errors or timeouts open it; after
  ``cooldown_s`` it half-opens and lets exactly one probe through, and a success
  closes it while a failure opens it again.

Settings may override the first two per source (``source_rate_limits``,
``source_daily_quotas``). ``from_settings`` puts counters and breaker state in Redis
when ``redis_url`` is set, so every worker on every host shares one budget. Otherwise
they live in ``<data_dir>/governor.sqlite3`` (see ``governor_sqlite``), shared by every
process on this machine that uses the same data folder. The setting
``governor_store = "memory"`` keeps them in the process instead.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol, cast

import limits
import redis.asyncio
import structlog
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter
from limits.errors import StorageError
from redis.exceptions import RedisError

from iocscope.config import Settings
from iocscope.errors import ConfigError
from iocscope.models import SourceResult, Status
from iocscope.sources.base import SourceSpec
from iocscope.sources.http import MAX_RETRY_AFTER_S

log = structlog.get_logger(__name__)

DEFAULT_FAILURE_THRESHOLD = 5
DEFAULT_COOLDOWN_S = 60.0
# Backoff after an upstream 429 that carried no Retry-After.
DEFAULT_BACKOFF_S = 60.0

BreakerState = Literal["closed", "open", "half-open"]
GOVERNOR_STORES = ("auto", "sqlite", "memory")
# Errors of the shared stores that admit() and record() turn into results or logs.
_STORE_ERRORS = (RedisError, StorageError, sqlite3.Error)


@dataclass(frozen=True)
class SourceHealth:
    """One source's budget and breaker, for `iocscope sources` and GET /v1/sources."""

    name: str
    rate_limit: str | None
    daily_quota: int | None
    # Calls left today, or None when the source has no daily quota.
    quota_left: int | None
    breaker: BreakerState
    consecutive_failures: int
    # UNIX time until which calls are held back after an upstream 429.
    backoff_until: float | None
    last_error: str | None
    # UNIX time of the last error, timeout or upstream rate limit.
    last_error_at: float | None


@dataclass
class GovernorState:
    """Per-source governor state, besides the rate-limit counters."""

    failures: int = 0
    # UNIX time the breaker opened, or None while it is closed.
    opened_at: float | None = None
    backoff_until: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None


class StateStore(Protocol):
    async def load(self, name: str) -> GovernorState: ...

    async def add_failure(self, name: str, at: float, error: str) -> GovernorState:
        """Count one more consecutive failure and return the state after it."""
        ...

    async def note_error(self, name: str, at: float, error: str) -> None: ...

    async def set_backoff(self, name: str, until: float) -> None: ...

    async def open_breaker(self, name: str, at: float) -> None:
        """Open the breaker as of ``at`` and drop any probe claim."""
        ...

    async def close_breaker(self, name: str) -> None:
        """Reset the failure count, close the breaker and drop any probe claim."""
        ...

    async def claim_probe(self, name: str, at: float, lease_s: float) -> bool:
        """Return True if this call claims the one half-open probe."""
        ...

    async def release_probe(self, name: str) -> None: ...

    async def aclose(self) -> None: ...


class MemoryStateStore:
    """Governor state for one process."""

    def __init__(self) -> None:
        self._states: dict[str, GovernorState] = {}
        # Source name -> UNIX time the probe claim expires.
        self._probes: dict[str, float] = {}

    def _state(self, name: str) -> GovernorState:
        return self._states.setdefault(name, GovernorState())

    async def load(self, name: str) -> GovernorState:
        state = self._state(name)
        return GovernorState(**vars(state))

    async def add_failure(self, name: str, at: float, error: str) -> GovernorState:
        state = self._state(name)
        state.failures += 1
        state.last_error, state.last_error_at = error, at
        return GovernorState(**vars(state))

    async def note_error(self, name: str, at: float, error: str) -> None:
        state = self._state(name)
        state.last_error, state.last_error_at = error, at

    async def set_backoff(self, name: str, until: float) -> None:
        self._state(name).backoff_until = until

    async def open_breaker(self, name: str, at: float) -> None:
        self._state(name).opened_at = at
        self._probes.pop(name, None)

    async def close_breaker(self, name: str) -> None:
        state = self._state(name)
        state.failures, state.opened_at = 0, None
        self._probes.pop(name, None)

    async def claim_probe(self, name: str, at: float, lease_s: float) -> bool:
        if self._probes.get(name, 0.0) > at:
            return False
        self._probes[name] = at + lease_s
        return True

    async def release_probe(self, name: str) -> None:
        self._probes.pop(name, None)

    async def aclose(self) -> None:
        return None


class RedisStateStore:
    """Governor state in Redis: one hash per source plus a probe claim key.

    NOTE: the probe claim expires by Redis's own clock. A clock injected into the
    governor does not move it, so tests of the probe lease use the memory store.
    """

    def __init__(self, client: redis.asyncio.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix

    def _key(self, name: str) -> str:
        return f"{self._prefix}:state:{name}"

    def _probe_key(self, name: str) -> str:
        return f"{self._prefix}:probe:{name}"

    async def load(self, name: str) -> GovernorState:
        # redis-py types its commands as "Awaitable[T] | T" for both clients.
        reply = self._client.hgetall(self._key(name))
        fields = await cast("Awaitable[dict[bytes, bytes]]", reply)
        return _state_from_hash(fields)

    async def add_failure(self, name: str, at: float, error: str) -> GovernorState:
        key = self._key(name)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, "failures", 1)
            pipe.hset(key, mapping={"last_error": error, "last_error_at": str(at)})
            pipe.hgetall(key)
            replies = await pipe.execute()
        return _state_from_hash(replies[-1])

    async def note_error(self, name: str, at: float, error: str) -> None:
        mapping = {"last_error": error, "last_error_at": str(at)}
        reply = self._client.hset(self._key(name), mapping=mapping)
        await cast("Awaitable[int]", reply)

    async def set_backoff(self, name: str, until: float) -> None:
        reply = self._client.hset(self._key(name), "backoff_until", str(until))
        await cast("Awaitable[int]", reply)

    async def open_breaker(self, name: str, at: float) -> None:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hset(self._key(name), "opened_at", str(at))
            pipe.delete(self._probe_key(name))
            await pipe.execute()

    async def close_breaker(self, name: str) -> None:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hdel(self._key(name), "failures", "opened_at")
            pipe.delete(self._probe_key(name))
            await pipe.execute()

    async def claim_probe(self, name: str, at: float, lease_s: float) -> bool:
        lease_ms = max(1, round(lease_s * 1000))
        claimed = await self._client.set(
            self._probe_key(name), at, nx=True, px=lease_ms
        )
        return bool(claimed)

    async def release_probe(self, name: str) -> None:
        await self._client.delete(self._probe_key(name))

    async def aclose(self) -> None:
        await self._client.aclose(close_connection_pool=True)


def _state_from_hash(fields: Mapping[Any, Any]) -> GovernorState:
    text = {_text(key): _text(value) for key, value in fields.items()}
    return GovernorState(
        failures=int(text.get("failures") or 0),
        opened_at=_float(text.get("opened_at")),
        backoff_until=_float(text.get("backoff_until")),
        last_error=text.get("last_error"),
        last_error_at=_float(text.get("last_error_at")),
    )


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _float(value: str | None) -> float | None:
    return float(value) if value else None


class UpstreamGovernor:
    """Keeps each network source inside its budget; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        *,
        storage: Storage | None = None,
        state: StateStore | None = None,
        clock: Callable[[], float] = time.time,
        failure_threshold: int | None = None,
        cooldown_s: float | None = None,
        default_backoff_s: float | None = None,
    ) -> None:
        self._storage = storage if storage is not None else MemoryStorage()
        self._state: StateStore = state if state is not None else MemoryStateStore()
        self._clock = clock
        self._rate_limiter = MovingWindowRateLimiter(self._storage)
        self._quota_limiter = FixedWindowRateLimiter(self._storage)

        # Settings fields read with getattr, so older Settings without them work.
        threshold = _pick(failure_threshold, settings, "breaker_failure_threshold")
        cooldown = _pick(cooldown_s, settings, "breaker_cooldown_s")
        backoff = _pick(default_backoff_s, settings, "rate_limit_backoff_s")
        self.failure_threshold = max(1, int(threshold or DEFAULT_FAILURE_THRESHOLD))
        self.cooldown_s = float(
            cooldown if cooldown is not None else DEFAULT_COOLDOWN_S
        )
        self.default_backoff_s = float(backoff or DEFAULT_BACKOFF_S)

        self._rate_overrides: dict[str, str | None] = dict(
            getattr(settings, "source_rate_limits", None) or {}
        )
        self._quota_overrides: dict[str, int | None] = dict(
            getattr(settings, "source_daily_quotas", None) or {}
        )
        # Parsed rate limits by source name; overrides are checked here, at start.
        self._parsed: dict[str, list[limits.RateLimitItem]] = {}
        for name, text in self._rate_overrides.items():
            self._parsed[name] = _parse_rate_limit(name, text)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        key_prefix: str = "iocscope",
        clock: Callable[[], float] = time.time,
    ) -> UpstreamGovernor:
        """Build a governor on the store that the ``governor_store`` setting picks.

        "auto" (the default) means Redis when ``redis_url`` is set, else the SQLite
        file in the data folder. "sqlite" means that file even with ``redis_url``,
        and "memory" keeps the budgets in this process only.
        """
        choice = settings.governor_store
        if choice not in GOVERNOR_STORES:
            raise ConfigError(
                f"invalid governor_store {choice!r}: use one of "
                + ", ".join(repr(store) for store in GOVERNOR_STORES)
            )
        if choice == "memory":
            return cls(settings, clock=clock)
        url = settings.secret("redis_url")
        if url is None or choice == "sqlite":
            # Imported here because governor_sqlite imports GovernorState from here.
            from iocscope.governor_sqlite import (
                GovernorDatabase,
                SQLiteStateStore,
                SQLiteStorage,
            )

            database = GovernorDatabase(governor_db_path(settings))
            return cls(
                settings,
                storage=SQLiteStorage(database),
                state=SQLiteStateStore(database),
                clock=clock,
            )
        pool = redis.asyncio.ConnectionPool.from_url(url)
        pool_option: dict[str, Any] = {"connection_pool": pool}
        storage = RedisStorage(
            _limits_uri(url),
            wrap_exceptions=True,
            implementation="redispy",
            key_prefix=f"{key_prefix}:limits",
            **pool_option,
        )
        state = RedisStateStore(
            redis.asyncio.Redis(connection_pool=pool), f"{key_prefix}:governor"
        )
        return cls(settings, storage=storage, state=state, clock=clock)

    async def aclose(self) -> None:
        """Close the Redis connections or the SQLite file, if any."""
        await self._state.aclose()

    async def admit(self, spec: SourceSpec) -> SourceResult | None:
        """Return None to let a call go, or the skipped or rate_limited result."""
        if not spec.network:
            return None
        try:
            return await self._admit(spec)
        except _STORE_ERRORS as exc:
            log.error("governor.store.failed", source=spec.name, error=_describe(exc))
            return SourceResult(
                status=Status.ERROR,
                reason=f"rate-limit store unavailable: {_describe(exc)}",
            )

    async def record(self, spec: SourceSpec, result: SourceResult) -> None:
        """Update the backoff and the breaker from the outcome of an admitted call."""
        if not spec.network:
            return
        try:
            await self._record(spec, result)
        except _STORE_ERRORS as exc:
            # The breaker misses this outcome, but the lookup result is kept.
            log.error("governor.store.failed", source=spec.name, error=_describe(exc))

    async def health(self, spec: SourceSpec) -> SourceHealth:
        """Return the source's quota left, breaker state, backoff and last error.

        When the store cannot be read, ``last_error`` reports that instead.
        """
        try:
            return await self._health(spec)
        except _STORE_ERRORS as exc:
            log.error("governor.store.failed", source=spec.name, error=_describe(exc))
            return SourceHealth(
                name=spec.name,
                rate_limit=self.rate_limit(spec),
                daily_quota=self.daily_quota(spec),
                quota_left=None,
                breaker="closed",
                consecutive_failures=0,
                backoff_until=None,
                last_error=f"rate-limit store unavailable: {_describe(exc)}",
                last_error_at=self._clock(),
            )

    async def _health(self, spec: SourceSpec) -> SourceHealth:
        now = self._clock()
        state = await self._state.load(spec.name)
        quota = self.daily_quota(spec)
        quota_left = None
        if spec.network and quota is not None:
            item = limits.RateLimitItemPerDay(quota)
            stats = await self._quota_limiter.get_window_stats(
                item, spec.name, _utc_day(now)
            )
            quota_left = stats.remaining
        backoff = state.backoff_until
        return SourceHealth(
            name=spec.name,
            rate_limit=self.rate_limit(spec),
            daily_quota=quota,
            quota_left=quota_left,
            breaker=self._breaker(state, now),
            consecutive_failures=state.failures,
            backoff_until=backoff if backoff is not None and backoff > now else None,
            last_error=state.last_error,
            last_error_at=state.last_error_at,
        )

    def rate_limit(self, spec: SourceSpec) -> str | None:
        """Return the rate limit in force: the settings override, else the spec's."""
        if spec.name in self._rate_overrides:
            return self._rate_overrides[spec.name] or None
        return spec.rate_limit

    def daily_quota(self, spec: SourceSpec) -> int | None:
        """Return the daily quota in force: the settings override, else the spec's."""
        if spec.name in self._quota_overrides:
            return self._quota_overrides[spec.name]
        return spec.daily_quota

    async def _admit(self, spec: SourceSpec) -> SourceResult | None:
        name = spec.name
        now = self._clock()
        state = await self._state.load(name)
        if state.backoff_until is not None and state.backoff_until > now:
            return _rate_limited(
                "backing off after the vendor's rate limit", state.backoff_until - now
            )
        probing = False
        if state.opened_at is not None:
            reopen_at = state.opened_at + self.cooldown_s
            if now < reopen_at:
                return _circuit_open(state.failures, reopen_at - now)
            # Half-open: the first caller probes, everyone else waits for its outcome.
            # The claim lapses after cooldown_s in case the probe's outcome is never
            # recorded (the overall deadline cancelled it).
            if not await self._state.claim_probe(name, now, self.cooldown_s):
                return _circuit_open(state.failures, None)
            probing = True
        refusal = await self._take_budget(spec, now)
        if refusal is not None and probing:
            await self._state.release_probe(name)
        return refusal

    async def _take_budget(self, spec: SourceSpec, now: float) -> SourceResult | None:
        """Consume one call of the daily quota and of each rate limit, if all allow."""
        name = spec.name
        quota = self.daily_quota(spec)
        quota_item = limits.RateLimitItemPerDay(quota) if quota is not None else None
        day = _utc_day(now)
        if quota_item is not None and not await self._quota_limiter.test(
            quota_item, name, day
        ):
            return _quota_spent(quota or 0, now)
        for item in self._rate_items(spec):
            if not await self._rate_limiter.hit(item, name):
                stats = await self._rate_limiter.get_window_stats(item, name)
                return _rate_limited(
                    f"local rate limit of {item} reached",
                    stats.reset_time - time.time(),
                )
        if quota_item is not None and not await self._quota_limiter.hit(
            quota_item, name, day
        ):
            return _quota_spent(quota or 0, now)
        return None

    async def _record(self, spec: SourceSpec, result: SourceResult) -> None:
        name = spec.name
        now = self._clock()
        status = result.status
        if status in (Status.OK, Status.NOT_FOUND):
            state = await self._state.load(name)
            if state.failures or state.opened_at is not None:
                await self._state.close_breaker(name)
                if state.opened_at is not None:
                    log.info("governor.breaker.closed", source=name)
        elif status in (Status.ERROR, Status.TIMEOUT):
            error = result.reason or status.value
            state = await self._state.add_failure(name, now, error)
            await self._maybe_open(name, state, now)
        elif status is Status.RATE_LIMITED:
            delay = result.retry_after_s
            if delay is None or not math.isfinite(delay) or delay <= 0:
                delay = self.default_backoff_s
            # A source's own RateLimited may carry any number; a day is the most.
            delay = min(delay, MAX_RETRY_AFTER_S)
            await self._state.set_backoff(name, now + delay)
            await self._state.note_error(name, now, result.reason or "rate limited")
            await self._state.release_probe(name)
            log.warning("governor.backoff.started", source=name, retry_after_s=delay)
        else:
            # The source skipped the call itself: no signal about its health.
            await self._state.release_probe(name)

    async def _maybe_open(self, name: str, state: GovernorState, now: float) -> None:
        if state.failures < self.failure_threshold:
            return
        # A failure while the breaker is open comes from a call admitted before it
        # opened. Only the first failure past the threshold or a failed probe opens it.
        if state.opened_at is not None and now < state.opened_at + self.cooldown_s:
            return
        await self._state.open_breaker(name, now)
        log.warning(
            "governor.breaker.opened",
            source=name,
            failures=state.failures,
            cooldown_s=self.cooldown_s,
            error=state.last_error,
        )

    def _breaker(self, state: GovernorState, now: float) -> BreakerState:
        if state.opened_at is None:
            return "closed"
        if now < state.opened_at + self.cooldown_s:
            return "open"
        return "half-open"

    def _rate_items(self, spec: SourceSpec) -> list[limits.RateLimitItem]:
        if spec.name not in self._parsed:
            self._parsed[spec.name] = _parse_rate_limit(spec.name, spec.rate_limit)
        return self._parsed[spec.name]


def governor_db_path(settings: Settings) -> Path:
    """Return the path of the SQLite file that stores the budgets without Redis."""
    return Path(settings.data_dir) / "governor.sqlite3"


def _pick(explicit: Any, settings: Settings, name: str) -> Any:
    """Return the explicit value, else the setting ``name``, else None."""
    if explicit is not None:
        return explicit
    return getattr(settings, name, None)


def _parse_rate_limit(source: str, text: str | None) -> list[limits.RateLimitItem]:
    if not text:
        return []
    try:
        return limits.parse_many(text)
    except ValueError:
        raise ConfigError(
            f"invalid rate limit {text!r} for source {source!r}: use the limits "
            "notation, such as '4/minute' or '1/second;500/day'"
        ) from None


def _limits_uri(url: str) -> str:
    """Turn a redis-py URL into the scheme the ``limits`` library expects."""
    if url.startswith("unix://"):
        return "async+redis+unix://" + url.removeprefix("unix://")
    return f"async+{url}"


def _utc_day(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")


def _seconds_to_utc_midnight(now: float) -> float:
    moment = datetime.fromtimestamp(now, UTC)
    midnight = (moment + timedelta(days=1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return (midnight - moment).total_seconds()


def _round_up(seconds: float) -> float:
    """Round a wait up to 0.1 s, at least 0.1 s, so a retry never comes too early."""
    if not math.isfinite(seconds):
        return MAX_RETRY_AFTER_S
    return max(0.1, math.ceil(seconds * 10) / 10)


def _rate_limited(reason: str, wait_s: float) -> SourceResult:
    return SourceResult(
        status=Status.RATE_LIMITED, reason=reason, retry_after_s=_round_up(wait_s)
    )


def _quota_spent(quota: int, now: float) -> SourceResult:
    result = SourceResult.skipped("quota")
    return result.model_copy(
        update={
            "summary": f"daily quota of {quota} calls spent; it resets at 00:00 UTC",
            "retry_after_s": _round_up(_seconds_to_utc_midnight(now)),
        }
    )


def _circuit_open(failures: int, wait_s: float | None) -> SourceResult:
    if wait_s is None:
        summary = "half-open: one probe call is under way"
        retry_after = None
    else:
        summary = f"{failures} consecutive failures; next probe in {wait_s:.0f} s"
        retry_after = _round_up(wait_s)
    return SourceResult(
        status=Status.SKIPPED,
        reason="circuit open",
        summary=summary,
        retry_after_s=retry_after,
    )


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]
