"""The enrichment engine: policy gates, cache, and a parallel fan-out to sources.

For one observable the engine decides per source whether it may run (type, TLP,
address scope, key, budget). It serves cached results where it can, runs the
remaining lookups concurrently under a per-source deadline and an overall one,
and scores the results. A failing source never fails the lookup: it becomes a
status.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Protocol

import httpx
import structlog

from iocscope.cache import MemoryCache, ResultCache
from iocscope.config import Settings
from iocscope.errors import RateLimited, SourceFailure, UpstreamTimeout
from iocscope.models import (
    FAILED,
    Observable,
    ObservableInfo,
    Report,
    SourceResult,
    Status,
)
from iocscope.observables import parse_observable
from iocscope.scoring import ScoringPolicy, assess
from iocscope.sources.base import Source, SourceSpec
from iocscope.sources.http import clean_json
from iocscope.tlp import TLP, parse_tlp

log = structlog.get_logger(__name__)


class Governor(Protocol):
    """Keeps each source inside its rate limit, quota and circuit breaker."""

    async def admit(self, spec: SourceSpec) -> SourceResult | None:
        """Return None to let a call go ahead, or the result that replaces it."""
        ...

    async def record(self, spec: SourceSpec, result: SourceResult) -> None:
        """Learn from a call's outcome (back off after a 429, trip a breaker)."""
        ...


class OpenGovernor:
    """A governor that admits every call; used when no budgets are configured."""

    async def admit(self, spec: SourceSpec) -> SourceResult | None:
        return None

    async def record(self, spec: SourceSpec, result: SourceResult) -> None:
        return None


class Engine:
    def __init__(
        self,
        sources: Iterable[Source],
        settings: Settings,
        *,
        policy: ScoringPolicy | None = None,
        cache: ResultCache | None = None,
        governor: Governor | None = None,
    ) -> None:
        self.settings = settings
        self.sources = list(sources)
        # Disabled sources stay listed, so reports and `iocscope sources` show
        # them as skipped with reason "disabled" instead of leaving them out.
        self.disabled = frozenset(settings.disabled_sources)
        _warn_unknown_names(settings, {s.spec.name for s in self.sources})
        self.policy = policy or ScoringPolicy(
            malicious_at=settings.malicious_at, suspicious_at=settings.suspicious_at
        )
        self.cache: ResultCache = cache if cache is not None else MemoryCache()
        self.governor: Governor = governor if governor is not None else OpenGovernor()
        self.weights = {
            s.spec.name: settings.weights.get(s.spec.name, s.spec.weight)
            for s in self.sources
        }
        self._fingerprints = {s.spec.name: self._fingerprint(s) for s in self.sources}
        self._in_flight: dict[str, asyncio.Future[SourceResult]] = {}

    async def enrich(
        self,
        raw: str,
        type_hint: str | None = None,
        *,
        tlp: object = None,
        refresh: bool = False,
        request_id: str | None = None,
    ) -> Report:
        """Parse ``raw`` and enrich it; raise InvalidInput for bad input."""
        level = self.resolve_tlp(tlp)
        observable = self.parse(raw, type_hint)
        return await self.enrich_observable(
            observable, tlp=level, refresh=refresh, request_id=request_id
        )

    def parse(self, raw: str, type_hint: str | None = None) -> Observable:
        return parse_observable(
            raw,
            type_hint,
            min_ipv4_prefix=self.settings.min_ipv4_prefix,
            min_ipv6_prefix=self.settings.min_ipv6_prefix,
        )

    def resolve_tlp(self, tlp: object) -> TLP:
        """Parse a request's TLP; None or "" means the configured default."""
        if tlp is None or tlp == "":
            return parse_tlp(self.settings.default_tlp)
        return parse_tlp(tlp)

    async def enrich_observable(
        self,
        observable: Observable,
        *,
        tlp: TLP,
        refresh: bool = False,
        request_id: str | None = None,
    ) -> Report:
        started = time.monotonic()
        results = await self._fan_out(observable, tlp, refresh)
        assessment = assess(results, self.weights, self.policy, scope=observable.scope)
        return Report(
            observable=ObservableInfo.of(observable),
            risk_score=assessment.risk_score,
            verdict=assessment.verdict,
            confidence=assessment.confidence,
            sources_queried=sum(
                1 for r in results.values() if r.status is not Status.SKIPPED
            ),
            sources_flagged=sum(1 for r in results.values() if r.flagged),
            sources_failed=sum(1 for r in results.values() if r.status in FAILED),
            sources_skipped=sum(
                1 for r in results.values() if r.status is Status.SKIPPED
            ),
            enrichment=results,
            tags=assessment.tags,
            explanation=assessment.explanation,
            policy=self.policy.info(),
            tlp=tlp.label,
            request_id=request_id or uuid.uuid4().hex,
            generated_at=datetime.now(UTC).replace(microsecond=0),
            elapsed_ms=round((time.monotonic() - started) * 1000),
        )

    async def _fan_out(
        self, observable: Observable, tlp: TLP, refresh: bool
    ) -> dict[str, SourceResult]:
        results: dict[str, SourceResult] = {}
        runnable: dict[str, Source] = {}
        for source in self.sources:
            skip = self._gate(source.spec, observable, tlp)
            if skip is None:
                runnable[source.spec.name] = source
            else:
                results[source.spec.name] = SourceResult.skipped(skip)
        deadline = self.settings.overall_timeout_s
        tasks = {
            name: asyncio.create_task(self._run(source, observable, refresh, deadline))
            for name, source in runnable.items()
        }
        if tasks:
            _, pending = await asyncio.wait(tasks.values(), timeout=deadline)
            for task in pending:
                task.cancel()
            # Let the cancelled lookups unwind (closing their connections) first.
            await asyncio.gather(*pending, return_exceptions=True)
        for name, task in tasks.items():
            results[name] = _task_result(task, deadline)
        return dict(sorted(results.items()))

    def _gate(self, spec: SourceSpec, observable: Observable, tlp: TLP) -> str | None:
        """Return why ``spec`` must not see ``observable``, or None if it may."""
        if spec.name in self.disabled:
            return "disabled"
        if observable.type not in spec.types:
            return "unsupported type"
        if tlp > spec.tlp_limit:
            return "tlp"
        if spec.network and not observable.routable:
            return "non-routable"
        if spec.network and self.settings.offline:
            return "offline"
        if spec.key_setting and self.settings.secret(spec.key_setting) is None:
            return "no key"
        return None

    async def _run(
        self, source: Source, observable: Observable, refresh: bool, deadline: float
    ) -> SourceResult:
        spec = source.spec
        key = f"{spec.name}:{self._fingerprints[spec.name]}:{observable.cache_key}"
        if not refresh:
            cached = await self.cache.get(key)
            if cached is not None:
                result, stored_at = cached
                age = max(0, round(time.time() - stored_at))
                return result.model_copy(update={"cached": True, "age_s": age})
        # Identical lookups running at the same time share one upstream call.
        shared = self._in_flight.get(key)
        if shared is not None:
            return await asyncio.shield(shared)
        future: asyncio.Future[SourceResult] = (
            asyncio.get_running_loop().create_future()
        )
        self._in_flight[key] = future
        try:
            result = await self._call(source, observable, deadline)
            future.set_result(result)
        except BaseException:
            future.cancel()  # waiters report a timeout, as the owner does
            raise
        finally:
            del self._in_flight[key]
        if result.status is Status.OK and spec.cache_ttl_hit_s > 0:
            await self.cache.set(key, result, spec.cache_ttl_hit_s)
        elif result.status is Status.NOT_FOUND and spec.cache_ttl_miss_s > 0:
            await self.cache.set(key, result, spec.cache_ttl_miss_s)
        return result

    async def _call(
        self, source: Source, observable: Observable, deadline: float
    ) -> SourceResult:
        spec = source.spec
        refusal = await self.governor.admit(spec)
        if refusal is not None:
            return refusal
        timeout = min(
            self.settings.source_timeouts.get(spec.name, spec.timeout_s), deadline
        )
        started = time.monotonic()
        result = await _guarded(lambda: source.lookup(observable), spec, timeout)
        latency = round((time.monotonic() - started) * 1000)
        result = _clean_result(result).model_copy(update={"latency_ms": latency})
        await self.governor.record(spec, result)
        if result.status in FAILED:
            log.warning(
                "source.lookup.failed",
                source=spec.name,
                observable_type=observable.type.value,
                status=result.status.value,
                reason=result.reason,
                latency_ms=latency,
            )
        return result

    def _fingerprint(self, source: Source) -> str:
        spec = source.spec
        parts = [spec.name, getattr(source, "fingerprint", "")]
        if spec.key_setting:
            parts.append(self.settings.secret(spec.key_setting) or "")
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]

    def specs(self) -> Mapping[str, SourceSpec]:
        return {s.spec.name: s.spec for s in self.sources}


def _clean_result(result: SourceResult) -> SourceResult:
    """Replace NUL and lone surrogates in a result's text, whatever its source.

    Text from feeds and vendors can carry them (JSON allows an escaped lone
    surrogate), and one such character would make the whole report fail to
    encode as UTF-8.
    """
    fields = ("summary", "reason", "tags", "data")
    return result.model_copy(
        update={name: clean_json(getattr(result, name)) for name in fields}
    )


def _warn_unknown_names(settings: Settings, names: set[str]) -> None:
    """Log each per-source setting that names no loaded source (likely a typo)."""
    per_source = {
        "disabled_sources": settings.disabled_sources,
        "weights": settings.weights,
        "source_timeouts": settings.source_timeouts,
        "source_endpoints": settings.source_endpoints,
    }
    for setting, values in per_source.items():
        for name in sorted(set(values) - names):
            log.warning("settings.unknown_source", setting=setting, source=name)


async def _guarded(
    lookup: Callable[[], Awaitable[SourceResult]], spec: SourceSpec, limit_s: float
) -> SourceResult:
    """Run one lookup and turn every failure into a result with a readable reason."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(limit_s):
            return await lookup()
    except (TimeoutError, UpstreamTimeout, httpx.TimeoutException):
        elapsed = time.monotonic() - started
        return SourceResult(
            status=Status.TIMEOUT,
            reason=f"timed out after {elapsed:.1f} s (limit {limit_s:g} s)",
        )
    except RateLimited as exc:
        return SourceResult(
            status=Status.RATE_LIMITED,
            reason=exc.message,
            retry_after_s=exc.retry_after_s,
        )
    except SourceFailure as exc:
        return SourceResult(status=Status.ERROR, reason=exc.message)
    except httpx.HTTPError as exc:
        return SourceResult(
            status=Status.ERROR, reason=f"connection failed: {type(exc).__name__}"
        )
    except Exception as exc:  # a bug in one source must not fail the lookup
        log.exception("source.lookup.crashed", source=spec.name)
        return SourceResult(
            status=Status.ERROR,
            reason=f"internal error in source: {type(exc).__name__}",
        )


def _task_result(task: asyncio.Task[SourceResult], deadline: float) -> SourceResult:
    if task.cancelled():
        return SourceResult(
            status=Status.TIMEOUT, reason=f"overall deadline of {deadline:g} s reached"
        )
    error = task.exception()
    if error is not None:
        # Only the cache or the governor can get here (a lookup's own errors are
        # results already); the lookup is reported failed, not the whole request.
        log.error("source.run.failed", error=type(error).__name__, detail=str(error))
        return SourceResult(
            status=Status.ERROR, reason=f"internal error: {type(error).__name__}"
        )
    return task.result()
