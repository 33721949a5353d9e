"""VirusTotal API v3: multi-engine verdicts for IPs, domains, URLs and md5/sha1/sha256.

Docs: https://docs.virustotal.com/reference/overview. A URL is looked up by its
unpadded base64url id. A 404 ``NotFoundError`` means VirusTotal never saw the
observable. Quota errors come as ``QuotaExceededError`` or ``TooManyRequestsError``.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import httpx

from iocscope.config import Settings
from iocscope.errors import RateLimited, UpstreamError
from iocscope.models import Observable, ObservableType, SourceResult, Status, Verdict
from iocscope.sources.base import Source, SourceContext, SourceSpec
from iocscope.sources.categories import CategoryMatch, classify_categories
from iocscope.sources.http import HttpAnswer, fetch, parse_retry_after
from iocscope.tlp import TLP

# API collection per observable type. VirusTotal has no sha512 lookup.
_PATHS = {
    ObservableType.IP: "ip_addresses",
    ObservableType.DOMAIN: "domains",
    ObservableType.URL: "urls",
    ObservableType.MD5: "files",
    ObservableType.SHA1: "files",
    ObservableType.SHA256: "files",
}
SPEC = SourceSpec(
    name="virustotal",
    types=frozenset(_PATHS),
    description="VirusTotal v3: antivirus and URL-scanner engine verdicts",
    network=True,
    key_setting="virustotal_api_key",
    max_tlp=TLP.AMBER,
    timeout_s=10.0,
    rate_limit="4/minute",
    daily_quota=500,
    cache_ttl_hit_s=6 * 3600,
    cache_ttl_miss_s=3600,
    weight=1.0,
    cost="free public key: 4 lookups/minute, 500/day; premium keys by contract",
)
PUBLIC_URL = "https://www.virustotal.com"
# Seconds to wait after a quota error that came without Retry-After.
QUOTA_RETRY_S = 60.0
# Engines that must report "malicious" before the verdict is malicious. Fewer make
# it suspicious, because a single engine is often a false positive.
DEFAULT_MALICIOUS_ENGINES = 3

# Buckets of last_analysis_stats where an engine gave a verdict. Engines in
# "timeout", "failure" or "type-unsupported" gave none and are not counted.
_VERDICT_BUCKETS = ("malicious", "suspicious", "harmless", "undetected")
_QUOTA_ERRORS = frozenset({"QuotaExceededError", "TooManyRequestsError"})
# Attributes copied into ``data``, by object type.
_CONTEXT_FIELDS = {
    "ip_address": ("as_owner", "asn", "country", "network"),
    "domain": ("registrar", "creation_date", "tld"),
    "url": ("url", "last_final_url", "title", "threat_names"),
    "file": ("meaningful_name", "type_description", "size", "md5", "sha1", "sha256"),
}


class VirusTotalSource:
    spec = SPEC

    def __init__(self, settings: Settings, client: httpx.AsyncClient) -> None:
        name = self.spec.name
        self.client = client
        self.settings = settings
        self.base_url = settings.source_endpoints.get(name, PUBLIC_URL).rstrip("/")
        self.timeout_s = settings.source_timeouts.get(name, self.spec.timeout_s)
        configured = getattr(
            settings, "virustotal_malicious_engines", DEFAULT_MALICIOUS_ENGINES
        )
        self.malicious_engines = max(1, int(configured))
        self.fingerprint = f"{self.base_url} malicious_engines={self.malicious_engines}"

    async def lookup(self, observable: Observable) -> SourceResult:
        data = await self._fetch_object(observable)
        if data is None:
            return SourceResult.not_found(
                "VirusTotal has never analysed this observable"
            )
        return map_object(data, self.malicious_engines)

    async def _fetch_object(self, observable: Observable) -> dict[str, Any] | None:
        answer = await fetch(
            self.client,
            "GET",
            f"{self.base_url}/api/v3/{object_path(observable)}",
            timeout_s=self.timeout_s,
            ok_statuses=frozenset({200, 404, 429}),
            headers={
                "x-apikey": self.settings.secret(self.spec.key_setting or "") or "",
                "Accept": "application/json",
            },
        )
        return decode_answer(answer)


def decode_answer(answer: HttpAnswer) -> dict[str, Any] | None:
    """Return the report's ``data`` object, or None for VirusTotal's not-found.

    Raises RateLimited for a quota error, whatever the HTTP status, and
    UpstreamError for any other error body or a body without a report.
    """
    status = answer.status_code
    if status == 429:
        raise _quota_error(answer, _error_code(answer) or "HTTP 429")
    body = answer.json()
    if not isinstance(body, dict):
        raise UpstreamError("VirusTotal returned JSON that is not an object")
    error = body.get("error")
    if isinstance(error, dict):
        code = str(error.get("code") or "")
        if code in _QUOTA_ERRORS:
            raise _quota_error(answer, code)
        if status == 404 and code == "NotFoundError":
            return None
        message = str(error.get("message") or "no message")[:200]
        raise UpstreamError(
            f"VirusTotal returned {status} {code or 'error'}: {message}",
            http_status=status,
        )
    data = body.get("data")
    if status != 200 or not isinstance(data, dict):
        raise UpstreamError(
            f"VirusTotal returned {status} without a report object", http_status=status
        )
    return data


def _error_code(answer: HttpAnswer) -> str:
    """Return the error code of a body that may be empty or garbled, or ""."""
    try:
        body = answer.json()
    except UpstreamError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("code") or "") if isinstance(error, dict) else ""


def _quota_error(answer: HttpAnswer, code: str) -> RateLimited:
    retry_after = parse_retry_after(answer.headers.get("retry-after"))
    if retry_after is None:
        # VirusTotal sends no Retry-After, and the public key's limit is per minute.
        retry_after = QUOTA_RETRY_S
    return RateLimited(f"VirusTotal quota exceeded ({code})", retry_after_s=retry_after)


def object_path(observable: Observable) -> str:
    """Return the API path of ``observable``'s report, relative to /api/v3."""
    collection = _PATHS[observable.type]
    if observable.type is ObservableType.URL:
        encoded = base64.urlsafe_b64encode(observable.value.encode("utf-8"))
        return f"{collection}/{encoded.decode('ascii').rstrip('=')}"
    return f"{collection}/{observable.value}"


def map_object(data: dict[str, Any], malicious_engines: int) -> SourceResult:
    """Map one v3 object (ip_address, domain, url or file) to a result."""
    attributes = data.get("attributes")
    if not isinstance(attributes, dict):
        attributes = {}
    stats = engine_counts(attributes.get("last_analysis_stats"))
    malicious = stats.get("malicious", 0)
    suspicious = stats.get("suspicious", 0)
    total = sum(stats.get(bucket, 0) for bucket in _VERDICT_BUCKETS)
    categories = _text_map(attributes.get("categories"))
    matches = classify_categories(categories.values())
    verdict, confidence = _verdict(malicious, suspicious, total, malicious_engines)
    verdict, confidence = _raise_by_category(verdict, confidence, matches)
    engines = f"{malicious}/{total}"
    threat_label = _threat_label(attributes)
    tags = [f"category:{match.label}" for match in matches]
    if threat_label:
        tags.append(f"threat:{threat_label.lower()}")
    return SourceResult(
        status=Status.OK,
        verdict=verdict,
        score=round(100 * malicious / total) if total else None,
        confidence=confidence,
        summary=_summary(engines, suspicious, total, matches, threat_label),
        tags=tags,
        data=_report_data(data, attributes, stats, engines, categories, threat_label),
    )


def engine_counts(value: Any) -> dict[str, int]:
    """Read last_analysis_stats as bucket -> count, whatever buckets it carries."""
    if not isinstance(value, dict):
        return {}
    return {
        str(bucket): count
        for bucket, count in value.items()
        if isinstance(count, int) and not isinstance(count, bool) and count >= 0
    }


def _verdict(
    malicious: int, suspicious: int, total: int, malicious_engines: int
) -> tuple[Verdict, float | None]:
    if malicious >= malicious_engines:
        return Verdict.MALICIOUS, min(0.95, 0.5 + 0.05 * malicious)
    if malicious or suspicious:
        # One or two engines: worth a look, but a weak signal.
        return Verdict.SUSPICIOUS, min(0.45, 0.1 + 0.1 * (malicious + suspicious))
    if total:
        return Verdict.CLEAN, 0.5
    return Verdict.UNKNOWN, None


def _raise_by_category(
    verdict: Verdict, confidence: float | None, matches: list[CategoryMatch]
) -> tuple[Verdict, float | None]:
    """Raise the verdict to the worst category's verdict. A category never lowers it."""
    if not matches:
        return verdict, confidence
    worst = matches[0].verdict
    if worst is Verdict.MALICIOUS and verdict is not Verdict.MALICIOUS:
        return Verdict.MALICIOUS, max(confidence or 0.0, 0.6)
    if worst is Verdict.SUSPICIOUS and verdict in (Verdict.CLEAN, Verdict.UNKNOWN):
        return Verdict.SUSPICIOUS, 0.3
    return verdict, confidence


def _summary(
    engines: str,
    suspicious: int,
    total: int,
    matches: list[CategoryMatch],
    threat_label: str | None,
) -> str:
    if not total:
        summary = "no engine results yet"
    else:
        summary = f"{engines} engines flagged malicious"
    if suspicious:
        summary += f", {suspicious} suspicious"
    if matches:
        labels = ", ".join(match.label for match in matches)
        summary += f"; categories: {labels}"
    if threat_label:
        summary += f"; threat label {threat_label}"
    return summary


def _threat_label(attributes: dict[str, Any]) -> str | None:
    classification = attributes.get("popular_threat_classification")
    if isinstance(classification, dict):
        label = classification.get("suggested_threat_label")
        if isinstance(label, str) and label:
            return label
    return None


def _report_data(
    data: dict[str, Any],
    attributes: dict[str, Any],
    stats: dict[str, int],
    engines: str,
    categories: dict[str, str],
    threat_label: str | None,
) -> dict[str, Any]:
    kind = str(data.get("type") or "")
    report: dict[str, Any] = {
        "id": data.get("id"),
        "type": kind,
        "engines": engines,
        "last_analysis_stats": stats,
        "last_analysis_date": _iso_date(attributes.get("last_analysis_date")),
        "reputation": attributes.get("reputation"),
        "total_votes": attributes.get("total_votes"),
    }
    if categories:
        report["categories"] = categories
    if threat_label:
        report["suggested_threat_label"] = threat_label
    for field in _CONTEXT_FIELDS.get(kind, ()):
        if field in attributes:
            value = attributes[field]
            report[field] = _iso_date(value) if field.endswith("_date") else value
    return report


def _text_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(key): str(text) for key, text in value.items() if text}


def _iso_date(value: Any) -> str | None:
    """Format a UNIX timestamp as ISO 8601 UTC, or return None for other values."""
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        return None
    return datetime.fromtimestamp(value, UTC).isoformat().replace("+00:00", "Z")


def load(context: SourceContext) -> list[Source]:
    """Build the VirusTotal source; it needs the shared HTTP client."""
    if context.http is None:
        return []
    return [VirusTotalSource(context.settings, context.http)]
