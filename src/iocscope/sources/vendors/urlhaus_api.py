"""abuse.ch URLhaus API: URLs that distribute malware, the hosts serving them, payloads.

Serves url, domain, IPv4 and md5/sha256 payload lookups; docs at
https://urlhaus-api.abuse.ch/. Every response is HTTP 200 with the outcome in
``query_status``. Numbers arrive as strings and most fields may be null.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import httpx

from iocscope.config import Settings
from iocscope.errors import RateLimited, UpstreamError
from iocscope.models import Observable, ObservableType, SourceResult, Status, Verdict
from iocscope.sources.base import Source, SourceContext, SourceSpec
from iocscope.sources.http import fetch
from iocscope.tlp import TLP

SPEC = SourceSpec(
    name="urlhaus_api",
    types=frozenset(
        {
            ObservableType.URL,
            ObservableType.DOMAIN,
            ObservableType.IP,
            ObservableType.MD5,
            ObservableType.SHA256,
        }
    ),
    description="abuse.ch URLhaus: malware distribution URLs, their hosts and payloads",
    network=True,
    key_setting="abusech_auth_key",
    max_tlp=TLP.AMBER,
    timeout_s=8.0,
    # URLhaus publishes no per-key quota (fair use), so this is our own budget.
    rate_limit="60/minute",
    cache_ttl_hit_s=3600,
    cache_ttl_miss_s=1800,
    weight=1.0,
    cost="free with an abuse.ch Auth-Key; fair use, no published quota",
)
PUBLIC_URL = "https://urlhaus-api.abuse.ch"

# Every documented query_status except ok and no_results, with its meaning.
QUERY_ERRORS = {
    "invalid_url": "URLhaus rejected the URL as invalid",
    "invalid_host": "URLhaus rejected the host as invalid",
    "invalid_md5": "URLhaus rejected the MD5 hash as invalid",
    "invalid_sha256": "URLhaus rejected the SHA-256 hash as invalid",
    "http_post_expected": "URLhaus expected an HTTP POST; a proxy may have changed it",
    "unknown_auth_key": "URLhaus rejected the Auth-Key: check the abusech_auth_key "
    "setting (IOCSCOPE_ABUSECH_AUTH_KEY)",
}
# Maximum number of listed URLs and payloads copied into ``data``.
MAX_ITEMS = 10


class UrlhausApi:
    spec = SPEC

    def __init__(self, settings: Settings, client: httpx.AsyncClient) -> None:
        self.client = client
        self.base_url = settings.source_endpoints.get(SPEC.name, PUBLIC_URL).rstrip("/")
        self.timeout_s = settings.source_timeouts.get(SPEC.name, SPEC.timeout_s)
        self.fingerprint = self.base_url
        self._key = settings.secret("abusech_auth_key")

    async def lookup(self, observable: Observable) -> SourceResult:
        if self._key is None:
            return SourceResult.skipped("no key")
        request = _request(observable)
        if request is None:
            return SourceResult.skipped("URLhaus hosts are domains or IPv4 addresses")
        path, form = request
        answer = await fetch(
            self.client,
            "POST",
            f"{self.base_url}{path}",
            timeout_s=self.timeout_s,
            data=form,
            headers={"Auth-Key": self._key},
        )
        body = answer.json()
        found = abusech_query_status(
            body, vendor="URLhaus", not_found="no_results", errors=QUERY_ERRORS
        )
        if not found:
            return SourceResult.not_found(
                "not listed in URLhaus", query_status="no_results"
            )
        if observable.type is ObservableType.URL:
            return _url_result(body)
        if path == "/v1/host/":
            return _host_result(body)
        return _payload_result(body)


def abusech_query_status(
    body: Any, *, vendor: str, not_found: str, errors: dict[str, str]
) -> bool:
    """Return True for ``ok`` and False for the vendor's not-found status.

    Shared by the three abuse.ch APIs, which each name their not-found status
    differently. Statuses in ``errors`` raise UpstreamError with their meaning. An
    unknown status that mentions a limit or quota raises RateLimited, and any other
    unknown one raises UpstreamError naming it, so no response is read as clean.
    """
    if not isinstance(body, dict):
        raise UpstreamError(f"{vendor} returned JSON that is not an object")
    status = str(body.get("query_status"))[:80]
    if status == "ok":
        return True
    if status == not_found:
        return False
    if status in errors:
        raise UpstreamError(errors[status])
    # NOTE: abuse.ch documents no over-quota status, so this wording test is a guess.
    if "limit" in status or "quota" in status:
        raise RateLimited(f"{vendor} rate limit reached: query_status {status!r}")
    raise UpstreamError(f"{vendor} returned an unknown query_status {status!r}")


def abusech_tag(prefix: str, value: str) -> str:
    """Build a ``prefix:value`` tag, lower-case, with whitespace runs as hyphens."""
    return f"{prefix}:{'-'.join(value.lower().split())}"


def _request(observable: Observable) -> tuple[str, dict[str, str]] | None:
    value = observable.value
    match observable.type:
        case ObservableType.URL:
            return "/v1/url/", {"url": value}
        case ObservableType.IP if ipaddress.ip_address(value).version == 6:
            return None
        case ObservableType.DOMAIN | ObservableType.IP:
            return "/v1/host/", {"host": value}
        case ObservableType.MD5:
            return "/v1/payload/", {"md5_hash": value}
        case _:
            return "/v1/payload/", {"sha256_hash": value}


def _url_result(body: dict[str, Any]) -> SourceResult:
    # URLhaus lists only malware distribution URLs; offline ones are older evidence.
    status = _text(body.get("url_status")) or "unknown"
    threat = _text(body.get("threat"))
    vendor_tags = _strings(body.get("tags"))
    payloads = [_payload_summary(item) for item in _objects(body.get("payloads"))]
    summary = f"{threat or 'listed'} URL, {status}"
    if vendor_tags:
        summary += f"; tags: {', '.join(vendor_tags)}"
    return SourceResult(
        status=Status.OK,
        verdict=Verdict.MALICIOUS,
        confidence=0.9 if status == "online" else 0.75,
        summary=summary,
        tags=_tags(vendor_tags, threat, [p["signature"] for p in payloads]),
        data={
            "url_status": status,
            "threat": threat,
            "date_added": _text(body.get("date_added")),
            "last_online": _text(body.get("last_online")),
            "tags": vendor_tags,
            "blacklists": body.get("blacklists"),
            "payloads": payloads[:MAX_ITEMS],
            "reference": _text(body.get("urlhaus_reference")),
        },
    )


def _host_result(body: dict[str, Any]) -> SourceResult:
    urls = _objects(body.get("urls"))
    if not urls:
        return SourceResult.not_found("URLhaus knows the host but lists no URLs on it")
    online = [item for item in urls if item.get("url_status") == "online"]
    url_count = _text(body.get("url_count")) or str(len(urls))
    vendor_tags = sorted({tag for item in urls for tag in _strings(item.get("tags"))})
    threats = sorted({t for item in urls if (t := _text(item.get("threat")))})
    # A host with no URL online may be a compromised site that has been cleaned.
    verdict = Verdict.MALICIOUS if online else Verdict.SUSPICIOUS
    return SourceResult(
        status=Status.OK,
        verdict=verdict,
        confidence=0.85 if online else 0.6,
        summary=f"{url_count} malware URLs listed on this host, {len(online)} of "
        f"the {len(urls)} returned online",
        tags=_tags(vendor_tags, None, []) + [abusech_tag("threat", t) for t in threats],
        data={
            "url_count": url_count,
            "urls_online": len(online),
            "firstseen": _text(body.get("firstseen")),
            "blacklists": body.get("blacklists"),
            "urls": [_url_summary(item) for item in urls[:MAX_ITEMS]],
            "reference": _text(body.get("urlhaus_reference")),
        },
    )


def _payload_result(body: dict[str, Any]) -> SourceResult:
    signature = _text(body.get("signature"))
    file_type = _text(body.get("file_type"))
    urls = _objects(body.get("urls"))
    summary = f"{file_type or 'file'} payload served by {len(urls)} malware URLs"
    if signature:
        summary = f"{signature} {summary}"
    tags = _tags([], None, [signature])
    if file_type:
        tags.append(abusech_tag("filetype", file_type))
    return SourceResult(
        status=Status.OK,
        verdict=Verdict.MALICIOUS,
        confidence=0.9,
        summary=summary,
        tags=tags,
        data={
            "md5": _text(body.get("md5_hash")),
            "sha256": _text(body.get("sha256_hash")),
            "file_type": file_type,
            "file_size": _text(body.get("file_size")),
            "signature": signature,
            "firstseen": _text(body.get("firstseen")),
            "lastseen": _text(body.get("lastseen")),
            "virustotal": body.get("virustotal"),
            "urls": [_url_summary(item) for item in urls[:MAX_ITEMS]],
        },
    )


def _payload_summary(item: dict[str, Any]) -> dict[str, str | None]:
    return {
        "filename": _text(item.get("filename")),
        "file_type": _text(item.get("file_type")),
        "sha256": _text(item.get("response_sha256")),
        "signature": _text(item.get("signature")),
    }


def _url_summary(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "url": _text(item.get("url")),
        "url_status": _text(item.get("url_status")),
        "threat": _text(item.get("threat")),
        "tags": _strings(item.get("tags")),
    }


def _tags(vendor_tags: list[str], threat: str | None, families: list[Any]) -> list[str]:
    tags = [abusech_tag("urlhaus", tag) for tag in vendor_tags]
    if threat:
        tags.append(abusech_tag("threat", threat))
    names = {abusech_tag("malware", str(name)) for name in families if name}
    tags.extend(sorted(names))
    return tags


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [str(item) for item in value if item is not None]


def _objects(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


def load(context: SourceContext) -> list[Source]:
    """Build the URLhaus API source, which needs the shared HTTP client."""
    if context.http is None:
        return []
    return [UrlhausApi(context.settings, context.http)]
