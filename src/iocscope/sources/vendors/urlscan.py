"""urlscan.io Search API: earlier public scans of a domain, IP, URL or SHA-256.

Docs: https://urlscan.io/docs/api/ (``GET /api/v1/search/?q=``, key in ``API-Key``).
A scan is context. Only urlscan's own ``verdicts.overall`` or a threat category
flags. A 429 carries ``X-Rate-Limit-Reset-After`` in seconds.
"""

from __future__ import annotations

from typing import Any

import httpx

from iocscope.config import Settings
from iocscope.errors import RateLimited, UpstreamError
from iocscope.models import Observable, ObservableType, SourceResult, Status, Verdict
from iocscope.sources.base import Source, SourceContext, SourceSpec
from iocscope.sources.categories import classify_categories
from iocscope.sources.http import HttpAnswer, fetch, parse_retry_after
from iocscope.tlp import TLP

SPEC = SourceSpec(
    name="urlscan",
    types=frozenset(
        {
            ObservableType.DOMAIN,
            ObservableType.IP,
            ObservableType.URL,
            ObservableType.SHA256,
        }
    ),
    description="urlscan.io: earlier public scans and urlscan's verdicts",
    network=True,
    key_setting="urlscan_api_key",
    max_tlp=TLP.AMBER,
    timeout_s=10.0,
    # NOTE: quotas depend on the account. 30 searches a minute is the example in
    # urlscan's rate-limit documentation, and the daily figure is an estimate.
    rate_limit="30/minute",
    daily_quota=1_000,
    cache_ttl_hit_s=3_600,
    cache_ttl_miss_s=3_600,
    weight=0.8,
    cost="free account; per-minute, hourly and daily search quotas",
)
PUBLIC_URL = "https://urlscan.io"
PAGE_SIZE = 10


class URLScanSource:
    spec = SPEC

    def __init__(self, settings: Settings, client: httpx.AsyncClient) -> None:
        self.client = client
        self.key = settings.secret(SPEC.key_setting or "")
        self.base_url = settings.source_endpoints.get(SPEC.name, PUBLIC_URL).rstrip("/")
        self.timeout_s = settings.source_timeouts.get(SPEC.name, SPEC.timeout_s)
        self.fingerprint = f"{self.base_url} size={PAGE_SIZE}"

    async def lookup(self, observable: Observable) -> SourceResult:
        if self.key is None:
            raise UpstreamError(
                "urlscan_api_key is not set: set IOCSCOPE_URLSCAN_API_KEY"
            )
        answer = await fetch(
            self.client,
            "GET",
            f"{self.base_url}/api/v1/search/",
            timeout_s=self.timeout_s,
            ok_statuses=frozenset({200, 400, 429}),
            params={"q": search_query(observable), "size": str(PAGE_SIZE)},
            headers={"API-Key": self.key},
        )
        if answer.status_code != 200:
            raise _failure(answer)
        body = answer.json()
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list):
            raise UpstreamError("urlscan returned a search response without results")
        scans = [scan for scan in results if isinstance(scan, dict)]
        if not scans:
            return SourceResult.not_found("no public urlscan.io scan matches")
        return _map_scans(scans, body.get("total"))


def search_query(observable: Observable) -> str:
    """Build the search query: the page's IP, domain or URL, or a downloaded hash."""
    value = observable.value.replace("\\", "\\\\").replace('"', '\\"')
    if observable.type is ObservableType.IP:
        return f'page.ip:"{value}"'
    if observable.type is ObservableType.DOMAIN:
        return f'page.domain:"{value}"'
    if observable.type is ObservableType.URL:
        return f'page.url:"{value}" OR task.url:"{value}"'
    return f"hash:{value}"


def _failure(answer: HttpAnswer) -> Exception:
    if answer.status_code == 429:
        headers = answer.headers
        retry_after = parse_retry_after(headers.get("retry-after"))
        if retry_after is None:
            retry_after = _seconds(headers.get("x-rate-limit-reset-after"))
        action = headers.get("x-rate-limit-action", "search")
        return RateLimited(
            f"urlscan {action} quota reached (HTTP 429)", retry_after_s=retry_after
        )
    body = answer.json()
    message = str(body.get("message") or "") if isinstance(body, dict) else ""
    return UpstreamError(
        f"urlscan rejected the search (HTTP {answer.status_code}): "
        f"{message[:200] or 'no message'}",
        http_status=answer.status_code,
    )


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _map_scans(scans: list[dict[str, Any]], total: Any) -> SourceResult:
    overall = [_overall(scan) for scan in scans]
    flagged = sum(1 for verdicts in overall if verdicts.get("malicious") is True)
    categories = classify_categories(
        name for verdicts in overall for name in _texts(verdicts.get("categories"))
    )
    brands = sorted({b for verdicts in overall for b in _texts(verdicts.get("brands"))})

    if flagged:
        verdict, score, confidence = Verdict.MALICIOUS, 90, 0.8
    elif categories:
        verdict, score, confidence = categories[0].verdict, 60, 0.6
    else:
        verdict, score, confidence = Verdict.UNKNOWN, None, None

    count = total if isinstance(total, int) else len(scans)
    summaries = [_scan(scan) for scan in scans]
    # ISO 8601 UTC times sort as text. A scan without a time sorts first.
    latest = max(summaries, key=lambda scan: str(scan["time"] or ""))
    when = str(latest["time"] or "unknown date")[:10]
    summary = f"{count} scans; latest {when}: {latest['url']}"
    if flagged:
        summary = f"{flagged} of {len(scans)} recent scans malicious; {summary}"

    return SourceResult(
        status=Status.OK,
        verdict=verdict,
        score=score,
        confidence=confidence,
        summary=summary,
        tags=[f"category:{match.label}" for match in categories]
        + [f"brand:{'-'.join(brand.lower().split())}" for brand in brands],
        data={
            "total": count,
            "malicious_scans": flagged,
            "categories": [match.category for match in categories],
            "brands": brands,
            "scans": summaries,
        },
    )


def _texts(value: Any) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else []


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _overall(scan: dict[str, Any]) -> dict[str, Any]:
    return _object(_object(scan.get("verdicts")).get("overall"))


def _scan(scan: dict[str, Any]) -> dict[str, Any]:
    task = _object(scan.get("task"))
    page = _object(scan.get("page"))
    return {
        "time": task.get("time"),
        "url": page.get("url") or task.get("url"),
        "domain": page.get("domain"),
        "ip": page.get("ip"),
        "asn": page.get("asn"),
        "asn_name": page.get("asnname"),
        "status": page.get("status"),
        "title": page.get("title"),
        "malicious": _overall(scan).get("malicious"),
        "result": scan.get("result"),
    }


def load(context: SourceContext) -> list[Source]:
    """Build the urlscan.io source. The engine skips it while no key is set."""
    if context.http is None:
        return []
    return [URLScanSource(context.settings, context.http)]
