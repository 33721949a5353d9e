"""AlienVault OTX: community pulses and allow-list validation of an indicator.

Serves IPs, domains, URLs and file hashes. Docs: https://otx.alienvault.com/api
(``GET /api/v1/indicators/{section}/{value}/general``, key in ``X-OTX-API-KEY``).
OTX returns 200 with ``pulse_info.count: 0`` for most unknown indicators and 404
for some. Both mean that OTX has nothing on the indicator.
"""

from __future__ import annotations

import ipaddress
from typing import Any, NoReturn
from urllib.parse import quote

import httpx

from iocscope.config import Settings
from iocscope.errors import RateLimited, UpstreamError
from iocscope.models import Observable, ObservableType, SourceResult, Status, Verdict
from iocscope.sources.base import Source, SourceContext, SourceSpec
from iocscope.sources.http import fetch
from iocscope.tlp import TLP

SPEC = SourceSpec(
    name="otx",
    types=frozenset(
        {
            ObservableType.IP,
            ObservableType.DOMAIN,
            ObservableType.URL,
            ObservableType.MD5,
            ObservableType.SHA1,
            ObservableType.SHA256,
        }
    ),
    description="AlienVault OTX: community threat pulses and allow-list validation",
    network=True,
    key_setting="otx_api_key",
    max_tlp=TLP.AMBER,
    timeout_s=10.0,
    # NOTE: OTX publishes no request limit, so this is a conservative estimate.
    rate_limit="60/minute",
    cache_ttl_hit_s=21_600,
    cache_ttl_miss_s=21_600,
    weight=0.7,
    cost="free account",
)
PUBLIC_URL = "https://otx.alienvault.com"

# Pulse counts: one or two pulses are suspicious, three or more are malicious. A
# pulse naming an adversary or a malware family is malicious on its own.
MALICIOUS_PULSES = 3
MAX_PULSES_KEPT = 10


class OTXSource:
    spec = SPEC

    def __init__(self, settings: Settings, client: httpx.AsyncClient) -> None:
        self.client = client
        self.key = settings.secret(SPEC.key_setting or "")
        self.base_url = settings.source_endpoints.get(SPEC.name, PUBLIC_URL).rstrip("/")
        self.timeout_s = settings.source_timeouts.get(SPEC.name, SPEC.timeout_s)
        self.fingerprint = self.base_url

    async def lookup(self, observable: Observable) -> SourceResult:
        if self.key is None:
            raise UpstreamError("otx_api_key is not set: set IOCSCOPE_OTX_API_KEY")
        # OTX routes on the raw value, slashes of a URL included. So "/", ":" and
        # the sub-delimiters stay, while "?", "#", "%", spaces and non-ASCII are
        # percent-encoded.
        value = quote(observable.value, safe=":/@!$&'()*+,;=")
        answer = await fetch(
            self.client,
            "GET",
            f"{self.base_url}/api/v1/indicators/{_section(observable)}/{value}/general",
            timeout_s=self.timeout_s,
            ok_statuses=frozenset({200, 404}),
            headers={"X-OTX-API-KEY": self.key},
        )
        if answer.status_code == 404:
            return SourceResult.not_found("OTX has no record of this indicator")
        body = answer.json()
        if not isinstance(body, dict):
            raise UpstreamError("OTX returned JSON that is not an object")
        if "pulse_info" not in body:
            _raise_for_body(body)
        return _map_indicator(body)


def _section(observable: Observable) -> str:
    """Return the OTX indicator section for ``observable``."""
    kind = observable.type
    if kind is ObservableType.IP:
        return "IPv4" if ipaddress.ip_address(observable.value).version == 4 else "IPv6"
    if kind is ObservableType.DOMAIN:
        apex = observable.registered_domain
        return "hostname" if apex and apex != observable.value else "domain"
    if kind is ObservableType.URL:
        return "url"
    return "file"


def _raise_for_body(body: dict[str, Any]) -> NoReturn:
    detail = str(body.get("detail") or body.get("error") or "")
    lowered = detail.lower()
    if "throttled" in lowered or "rate limit" in lowered or "quota" in lowered:
        raise RateLimited(f"OTX rate limit reached: {detail[:200]}")
    raise UpstreamError(f"OTX returned no pulse data: {detail[:200] or 'no detail'}")


def _map_indicator(body: dict[str, Any]) -> SourceResult:
    pulse_info = body.get("pulse_info")
    count = pulse_info.get("count") if isinstance(pulse_info, dict) else None
    if not isinstance(pulse_info, dict) or not isinstance(count, int):
        raise UpstreamError("OTX returned a pulse_info without a pulse count")

    pulses = [p for p in pulse_info.get("pulses") or [] if isinstance(p, dict)]
    validation = [v for v in body.get("validation") or [] if isinstance(v, dict)]
    adversaries, families = _attribution(pulses, pulse_info.get("related"))
    data: dict[str, Any] = {
        "pulse_count": count,
        "pulses": [_pulse(p) for p in pulses[:MAX_PULSES_KEPT]],
        "adversaries": adversaries,
        "malware_families": families,
        "validation": [
            {"source": v.get("source"), "name": v.get("name")} for v in validation
        ],
        "references": list(pulse_info.get("references") or [])[:MAX_PULSES_KEPT],
    }

    if validation:
        return _validated(count, validation, data)
    if count == 0:
        return SourceResult.not_found("in no OTX pulse", **data)
    return _flagged(count, adversaries, families, data)


def _flagged(
    count: int, adversaries: list[str], families: list[str], data: dict[str, Any]
) -> SourceResult:
    """Map an indicator that is in ``count`` pulses (at least one)."""
    malicious = count >= MALICIOUS_PULSES or bool(adversaries or families)
    # 45, 60, 75 ... points by pulse count, and at least 75 when malicious.
    score = min(100, 30 + 15 * count)
    if malicious:
        score = max(score, 75)
    named = ", ".join(adversaries + families)
    summary = f"in {count} OTX pulses"
    if named:
        summary += f" ({named})"
    tags = [f"adversary:{_tag_value(name)}" for name in adversaries]
    tags += [f"malware:{_tag_value(name)}" for name in families]
    return SourceResult(
        status=Status.OK,
        verdict=Verdict.MALICIOUS if malicious else Verdict.SUSPICIOUS,
        score=score,
        confidence=round(min(0.9, 0.4 + 0.1 * count), 2),
        summary=summary,
        tags=tags,
        data=data,
    )


def _validated(
    count: int, validation: list[dict[str, Any]], data: dict[str, Any]
) -> SourceResult:
    """Map an indicator that OTX validates (allow list, known false positive, rank).

    OTX's validation overrides its pulses: pulses on such indicators are typically
    false positives, and the pulse count stays in ``data`` and the summary.
    """
    sources = sorted({str(v.get("source") or "unknown") for v in validation})
    names = ", ".join(str(v.get("name") or v.get("source")) for v in validation)
    return SourceResult(
        status=Status.OK,
        verdict=Verdict.CLEAN,
        score=0,
        confidence=0.8,
        known_benign=True,
        summary=f"validated by OTX ({names}); in {count} pulses",
        tags=[f"otx-validation:{_tag_value(source)}" for source in sources],
        data=data,
    )


def _attribution(
    pulses: list[dict[str, Any]], related: Any
) -> tuple[list[str], list[str]]:
    """Collect adversary and malware-family names from the pulses and ``related``."""
    adversaries: dict[str, None] = {}
    families: dict[str, None] = {}
    groups = list(related.values()) if isinstance(related, dict) else []
    for item in pulses + [g for g in groups if isinstance(g, dict)]:
        adversary = item.get("adversary")
        for name in adversary if isinstance(adversary, list) else [adversary]:
            if isinstance(name, str) and name.strip():
                adversaries[name.strip()] = None
        for family in item.get("malware_families") or []:
            name = family.get("display_name") if isinstance(family, dict) else family
            if isinstance(name, str) and name.strip():
                families[name.strip()] = None
    return list(adversaries), list(families)


def _tag_value(name: str) -> str:
    return "-".join(name.lower().split())


def _pulse(pulse: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": pulse.get("name"),
        "created": pulse.get("created"),
        "modified": pulse.get("modified"),
        "tlp": pulse.get("TLP") or pulse.get("tlp"),
        "adversary": pulse.get("adversary") or None,
        "tags": list(pulse.get("tags") or []),
    }


def load(context: SourceContext) -> list[Source]:
    """Build the OTX source. The engine skips it while no key is set."""
    if context.http is None:
        return []
    return [OTXSource(context.settings, context.http)]
