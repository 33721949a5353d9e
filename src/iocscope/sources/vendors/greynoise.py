"""GreyNoise Community API v3: internet scanners (noise) and benign services (RIOT).

Docs: https://docs.greynoise.io/reference/getcommunityip. IPv4 only. A 404 with
``noise: false, riot: false`` and a message is the normal "not observed" response.
A 429 body names the plan and its daily limit but comes without Retry-After.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import httpx

from iocscope.config import Settings
from iocscope.errors import RateLimited, UpstreamError
from iocscope.models import Observable, ObservableType, SourceResult, Status, Verdict
from iocscope.sources.base import Source, SourceContext, SourceSpec
from iocscope.sources.http import HttpAnswer, fetch, parse_retry_after
from iocscope.tlp import TLP

SPEC = SourceSpec(
    name="greynoise",
    types=frozenset({ObservableType.IP}),
    description="GreyNoise Community: mass scanners and known benign services",
    network=True,
    key_setting="greynoise_api_key",
    max_tlp=TLP.AMBER,
    timeout_s=10.0,
    rate_limit=None,
    # NOTE: an estimate. The keyless plan's 429 body states 100 lookups a day, and
    # GreyNoise has lowered free quotas since; set source_daily_quotas to your plan.
    daily_quota=50,
    cache_ttl_hit_s=12 * 3600,
    cache_ttl_miss_s=12 * 3600,
    weight=0.8,
    cost="free community account; low daily quota",
)
PUBLIC_URL = "https://api.greynoise.io"

_CONTEXT_FIELDS = ("ip", "noise", "riot", "classification", "name", "link", "last_seen")


class GreyNoiseSource:
    spec = SPEC

    def __init__(self, settings: Settings, client: httpx.AsyncClient) -> None:
        name = self.spec.name
        self.client = client
        self.settings = settings
        self.base_url = settings.source_endpoints.get(name, PUBLIC_URL).rstrip("/")
        self.timeout_s = settings.source_timeouts.get(name, self.spec.timeout_s)
        self.fingerprint = self.base_url

    async def lookup(self, observable: Observable) -> SourceResult:
        if ipaddress.ip_address(observable.value).version != 4:
            return SourceResult(
                status=Status.SKIPPED,
                reason="unsupported type",
                summary="GreyNoise Community serves IPv4 addresses only",
            )
        answer = await fetch(
            self.client,
            "GET",
            f"{self.base_url}/v3/community/{observable.value}",
            timeout_s=self.timeout_s,
            ok_statuses=frozenset({200, 404, 429}),
            headers={
                "key": self.settings.secret(self.spec.key_setting or "") or "",
                "Accept": "application/json",
            },
        )
        return map_answer(answer)


def map_answer(answer: HttpAnswer) -> SourceResult:
    """Map a 200 or 404 community response to a result, or raise for a 429."""
    if answer.status_code == 429:
        raise _rate_limited(answer)
    body = answer.json()
    if not isinstance(body, dict):
        raise UpstreamError("GreyNoise returned JSON that is not an object")
    message = str(body.get("message") or "")
    if "rate-limit" in body or "rate limit" in message.lower():
        raise _rate_limited(answer)
    if "noise" not in body and "riot" not in body:
        raise UpstreamError(
            f"GreyNoise returned {answer.status_code} without noise or riot fields: "
            f"{message[:200] or 'no message'}",
            http_status=answer.status_code,
        )
    noise = body.get("noise") is True
    riot = body.get("riot") is True
    if not noise and not riot:
        return SourceResult.not_found(
            "not observed scanning the internet and not a known benign service"
        )
    return _map_observed(body, noise, riot)


def _rate_limited(answer: HttpAnswer) -> RateLimited:
    """Build the error for a quota response, keeping the plan's message if readable."""
    try:
        body = answer.json()
    except UpstreamError:
        body = None
    message = str(body.get("message") or "") if isinstance(body, dict) else ""
    return RateLimited(
        f"GreyNoise rate limit reached: {message[:200] or 'no message'}",
        retry_after_s=parse_retry_after(answer.headers.get("retry-after")),
    )


def _map_observed(body: dict[str, Any], noise: bool, riot: bool) -> SourceResult:
    classification = str(body.get("classification") or "unknown").lower()
    name = str(body.get("name") or "unknown")
    tags = [
        f"greynoise:{label}" for label, on in (("noise", noise), ("riot", riot)) if on
    ]
    if classification == "malicious":
        verdict, confidence = Verdict.MALICIOUS, 0.8
        summary = "seen attacking or scanning the internet with malicious intent"
        tags.append("greynoise:malicious")
    elif riot:
        verdict, confidence = Verdict.CLEAN, 0.8
        summary = f"known benign service ({name}) in GreyNoise RIOT"
    elif classification == "benign":
        verdict, confidence = Verdict.CLEAN, 0.7
        summary = f"benign internet scanner ({name})"
        tags.append("greynoise:benign")
    else:
        # Background noise of unknown intent: context, not a flag.
        verdict, confidence = Verdict.UNKNOWN, None
        summary = "seen scanning the internet, intent unknown"
    last_seen = body.get("last_seen")
    if last_seen:
        summary += f"; last seen {last_seen}"
    return SourceResult(
        status=Status.OK,
        verdict=verdict,
        confidence=confidence,
        summary=summary,
        known_benign=riot and verdict is Verdict.CLEAN,
        tags=tags,
        data={field: body[field] for field in _CONTEXT_FIELDS if field in body},
    )


def load(context: SourceContext) -> list[Source]:
    """Build the GreyNoise Community source; it needs the shared HTTP client."""
    if context.http is None:
        return []
    return [GreyNoiseSource(context.settings, context.http)]
