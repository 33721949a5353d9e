"""AbuseIPDB APIv2 /check: crowd-sourced abuse reports and confidence score of an IP.

Docs: https://docs.abuseipdb.com/#check-endpoint. Errors come as
``{"errors": [{"detail", "status"}]}``, and HTML instead unless the request sends
``Accept: application/json``. The daily limit is a 429 with Retry-After in seconds.
"""

from __future__ import annotations

from typing import Any

import httpx

from iocscope.config import Settings
from iocscope.errors import RateLimited, UpstreamError
from iocscope.models import Observable, ObservableType, SourceResult, Status, Verdict
from iocscope.sources.base import Source, SourceContext, SourceSpec
from iocscope.sources.http import HttpAnswer, fetch, parse_retry_after
from iocscope.tlp import TLP

SPEC = SourceSpec(
    name="abuseipdb",
    types=frozenset({ObservableType.IP}),
    description="AbuseIPDB: abuse reports and abuse confidence score of an IP",
    network=True,
    key_setting="abuseipdb_api_key",
    max_tlp=TLP.AMBER,
    timeout_s=10.0,
    # AbuseIPDB publishes daily limits only (1,000 checks on the free plan).
    rate_limit=None,
    daily_quota=1000,
    cache_ttl_hit_s=6 * 3600,
    cache_ttl_miss_s=6 * 3600,
    weight=1.0,
    cost="free plan: 1,000 checks/day; paid plans up to 50,000/day",
)
PUBLIC_URL = "https://api.abuseipdb.com"
# Reports older than this many days are not counted (the API accepts 1-365).
MAX_AGE_DAYS = 90
# abuseConfidenceScore thresholds (0-100) for the malicious and suspicious verdicts.
MALICIOUS_AT = 75
SUSPICIOUS_AT = 25

_CONTEXT_FIELDS = (
    "ipAddress",
    "abuseConfidenceScore",
    "totalReports",
    "numDistinctUsers",
    "lastReportedAt",
    "isWhitelisted",
    "isTor",
    "usageType",
    "isp",
    "domain",
    "countryCode",
)


class AbuseIPDBSource:
    spec = SPEC

    def __init__(self, settings: Settings, client: httpx.AsyncClient) -> None:
        name = self.spec.name
        self.client = client
        self.settings = settings
        self.base_url = settings.source_endpoints.get(name, PUBLIC_URL).rstrip("/")
        self.timeout_s = settings.source_timeouts.get(name, self.spec.timeout_s)
        self.fingerprint = f"{self.base_url} maxAgeInDays={MAX_AGE_DAYS}"

    async def lookup(self, observable: Observable) -> SourceResult:
        answer = await fetch(
            self.client,
            "GET",
            f"{self.base_url}/api/v2/check",
            timeout_s=self.timeout_s,
            ok_statuses=frozenset({200, 422, 429}),
            params={"ipAddress": observable.value, "maxAgeInDays": str(MAX_AGE_DAYS)},
            headers={
                "Key": self.settings.secret(self.spec.key_setting or "") or "",
                "Accept": "application/json",
            },
        )
        return map_check(_decode(answer))


def _decode(answer: HttpAnswer) -> dict[str, Any]:
    """Return the ``data`` object, or raise for the documented error bodies."""
    if answer.status_code == 429:
        raise _rate_limited(answer, _error_detail(answer))
    body = answer.json()
    if not isinstance(body, dict):
        raise UpstreamError("AbuseIPDB returned JSON that is not an object")
    errors = body.get("errors")
    if errors:
        detail, status = _first_error(errors)
        # A 200 whose body contains a 429 error means the quota is spent too.
        if status == 429 or "rate limit" in detail.lower():
            raise _rate_limited(answer, detail)
        raise UpstreamError(
            f"AbuseIPDB rejected the request (HTTP {answer.status_code}): {detail}",
            http_status=answer.status_code,
        )
    data = body.get("data")
    if answer.status_code != 200 or not isinstance(data, dict):
        raise UpstreamError(
            f"AbuseIPDB returned {answer.status_code} without a data object",
            http_status=answer.status_code,
        )
    return data


def _first_error(errors: Any) -> tuple[str, Any]:
    """Return the detail text (at most 200 characters) and status of the first error."""
    first = errors[0] if isinstance(errors, list) and errors else None
    if not isinstance(first, dict):
        return "no detail", None
    return str(first.get("detail") or "no detail")[:200], first.get("status")


def _error_detail(answer: HttpAnswer) -> str:
    """Return the first error's detail of a 429 body, which may be empty or garbled."""
    try:
        body = answer.json()
    except UpstreamError:
        return "no detail"
    return _first_error(body.get("errors") if isinstance(body, dict) else None)[0]


def _rate_limited(answer: HttpAnswer, detail: str) -> RateLimited:
    retry_after = parse_retry_after(answer.headers.get("retry-after"))
    return RateLimited(
        f"AbuseIPDB rate limit reached: {detail}", retry_after_s=retry_after
    )


def map_check(data: dict[str, Any]) -> SourceResult:
    """Map the /check ``data`` object to a result."""
    score = _int(data.get("abuseConfidenceScore"), upper=100)
    reports = _int(data.get("totalReports"))
    users = _int(data.get("numDistinctUsers"))
    whitelisted = data.get("isWhitelisted") is True
    verdict, confidence = _verdict(score, reports, whitelisted)
    reported = (
        f"{reports} reports from {users} users in the last {MAX_AGE_DAYS} days"
        if reports
        else f"no reports in the last {MAX_AGE_DAYS} days"
    )
    summary = f"abuse confidence {score}%, {reported}"
    tags = []
    if whitelisted:
        summary = f"whitelisted by AbuseIPDB; {summary}"
        tags.append("abuseipdb:whitelisted")
    if data.get("isTor") is True:
        tags.append("tor:exit-node")
    return SourceResult(
        status=Status.OK,
        verdict=verdict,
        score=score,
        confidence=confidence,
        summary=summary,
        known_benign=whitelisted,
        tags=tags,
        data={field: data[field] for field in _CONTEXT_FIELDS if field in data},
    )


def _verdict(
    score: int, reports: int, whitelisted: bool
) -> tuple[Verdict, float | None]:
    if whitelisted:
        return Verdict.CLEAN, 0.8
    # The score is AbuseIPDB's own confidence, but one report can reach 100.
    if score >= MALICIOUS_AT:
        return Verdict.MALICIOUS, min(0.9, score / 100)
    if score >= SUSPICIOUS_AT:
        return Verdict.SUSPICIOUS, score / 100
    if reports == 0:
        # AbuseIPDB's own negative result: no user reported the address.
        return Verdict.CLEAN, 0.5
    # A few old or low-weight reports: neither a flag nor a clean bill.
    return Verdict.UNKNOWN, None


def _int(value: Any, *, upper: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        return 0
    return min(value, upper) if upper is not None else value


def load(context: SourceContext) -> list[Source]:
    """Build the AbuseIPDB source; it needs the shared HTTP client."""
    if context.http is None:
        return []
    return [AbuseIPDBSource(context.settings, context.http)]
