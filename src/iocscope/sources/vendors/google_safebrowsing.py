"""Google Safe Browsing Lookup API v4: is a URL or a domain on Google's threat lists?

Docs: https://developers.google.com/safe-browsing/v4/lookup-api. The response
``{}`` means "no match", which is not a clean bill. The key goes in the
``X-Goog-Api-Key`` header, the equivalent of ``?key=`` for every Google REST API
(https://cloud.google.com/apis/docs/system-parameters), so URLs never carry it.
"""

from __future__ import annotations

from typing import Any

import httpx

from iocscope.config import Settings
from iocscope.errors import UpstreamError
from iocscope.models import Observable, ObservableType, SourceResult, Status, Verdict
from iocscope.sources.base import Source, SourceContext, SourceSpec
from iocscope.sources.http import fetch
from iocscope.tlp import TLP

SPEC = SourceSpec(
    name="google_safebrowsing",
    types=frozenset({ObservableType.URL, ObservableType.DOMAIN}),
    description="Google Safe Browsing: malware, phishing and unwanted-software lists",
    network=True,
    key_setting="google_safebrowsing_api_key",
    max_tlp=TLP.AMBER,
    timeout_s=5.0,
    # NOTE: the quota is set per Google Cloud project and shown in its console.
    # 10,000 a day is the historical default of the Lookup API, not a checked value.
    rate_limit="60/minute",
    daily_quota=10_000,
    # Google's guide requests caching a match for its cacheDuration, typically 300 s.
    cache_ttl_hit_s=300,
    cache_ttl_miss_s=300,
    weight=1.0,
    cost="free; Lookup API for non-commercial use",
)
PUBLIC_URL = "https://safebrowsing.googleapis.com"

# Threat type -> (tag label, verdict). Malware and phishing pages are malicious,
# and unwanted software and potentially harmful apps are suspicious.
THREAT_TYPES: dict[str, tuple[str, Verdict]] = {
    "MALWARE": ("malware", Verdict.MALICIOUS),
    "SOCIAL_ENGINEERING": ("phishing", Verdict.MALICIOUS),
    "UNWANTED_SOFTWARE": ("unwanted-software", Verdict.SUSPICIOUS),
    "POTENTIALLY_HARMFUL_APPLICATION": ("harmful-application", Verdict.SUSPICIOUS),
}


class GoogleSafeBrowsing:
    spec = SPEC

    def __init__(self, settings: Settings, client: httpx.AsyncClient) -> None:
        self.client = client
        self.key = settings.secret(SPEC.key_setting or "")
        self.base_url = settings.source_endpoints.get(SPEC.name, PUBLIC_URL).rstrip("/")
        self.timeout_s = settings.source_timeouts.get(SPEC.name, SPEC.timeout_s)
        self.fingerprint = f"{self.base_url} {','.join(THREAT_TYPES)}"

    async def lookup(self, observable: Observable) -> SourceResult:
        if self.key is None:
            raise UpstreamError(
                "google_safebrowsing_api_key is not set: "
                "set IOCSCOPE_GOOGLE_SAFEBROWSING_API_KEY"
            )
        answer = await fetch(
            self.client,
            "POST",
            f"{self.base_url}/v4/threatMatches:find",
            timeout_s=self.timeout_s,
            ok_statuses=frozenset({200, 400, 403}),
            headers={"X-Goog-Api-Key": self.key},
            json=_request_body(_threat_url(observable)),
        )
        body = answer.json()
        if answer.status_code != 200:
            raise _google_error(answer.status_code, body, self.key)
        if not isinstance(body, dict):
            raise UpstreamError("Safe Browsing returned JSON that is not an object")
        matches = [m for m in body.get("matches") or [] if isinstance(m, dict)]
        if not matches:
            return SourceResult.not_found("not on Google Safe Browsing lists")
        return _map_matches(matches)


def _threat_url(observable: Observable) -> str:
    """Return the URL to check. A domain is checked as its http root page."""
    if observable.type is ObservableType.DOMAIN:
        return f"http://{observable.value}/"
    return observable.value


def _request_body(url: str) -> dict[str, Any]:
    return {
        "client": {"clientId": "iocscope", "clientVersion": "0.1.0"},
        "threatInfo": {
            "threatTypes": list(THREAT_TYPES),
            "platformTypes": ["ANY_PLATFORM"],
            "threatEntryTypes": ["URL"],
            "threatEntries": [{"url": url}],
        },
    }


def _map_matches(matches: list[dict[str, Any]]) -> SourceResult:
    found = sorted({str(m.get("threatType")) for m in matches})
    known = [THREAT_TYPES[t] for t in found if t in THREAT_TYPES]
    malicious = any(verdict is Verdict.MALICIOUS for _, verdict in known)
    labels = [label for label, _ in known]
    return SourceResult(
        status=Status.OK,
        verdict=Verdict.MALICIOUS if malicious else Verdict.SUSPICIOUS,
        score=90 if malicious else 60,
        confidence=0.9 if malicious else 0.7,
        summary=f"listed by Google Safe Browsing: {', '.join(labels or found)}",
        tags=[f"category:{label}" for label in labels],
        data={
            "threat_types": found,
            "platforms": sorted({str(m.get("platformType")) for m in matches}),
            "matched_urls": sorted(
                {str((m.get("threat") or {}).get("url")) for m in matches}
            ),
            "cache_duration": matches[0].get("cacheDuration"),
        },
    )


def _google_error(status: int, body: Any, key: str) -> UpstreamError:
    """Build an error from Google's ``{"error": {...}}`` envelope, key removed."""
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    reasons = [
        str(d.get("reason"))
        for d in error.get("details") or []
        if isinstance(d, dict) and d.get("reason")
    ]
    code = ", ".join([str(error.get("status") or "no status"), *reasons])
    if "API_KEY_INVALID" in reasons:
        message = (
            "Safe Browsing rejected the API key: check google_safebrowsing_api_key"
        )
    else:
        text = str(error.get("message") or "no message").replace(key, "[key]")
        message = f"Safe Browsing rejected the request: {text[:200]}"
    return UpstreamError(f"{message} (HTTP {status}, {code})", http_status=status)


def load(context: SourceContext) -> list[Source]:
    """Build the Safe Browsing source. The engine skips it while no key is set."""
    if context.http is None:
        return []
    return [GoogleSafeBrowsing(context.settings, context.http)]
