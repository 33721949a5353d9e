"""Shodan host lookup: services, organisation, tags and CVE ids of one IP address.

Docs: https://developer.shodan.io/api (``GET /shodan/host/{ip}``). Shodan takes the
key only as the ``key`` query parameter, so no message here may include the URL.
A 404 with ``{"error": "No information available for that IP."}`` is a normal miss.
"""

from __future__ import annotations

from typing import Any

import httpx

from iocscope.config import Settings
from iocscope.errors import RateLimited, UpstreamError
from iocscope.models import Observable, ObservableType, SourceResult, Status
from iocscope.sources.base import Source, SourceContext, SourceSpec
from iocscope.sources.http import fetch
from iocscope.sources.vendors.shodan_internetdb import (
    describe_ports,
    int_list,
    shodan_tags,
    shodan_verdict,
    str_list,
)
from iocscope.tlp import TLP

SPEC = SourceSpec(
    name="shodan_host",
    types=frozenset({ObservableType.IP}),
    description="Shodan host lookup: services, organisation, tags and CVEs of an IP",
    network=True,
    key_setting="shodan_api_key",
    max_tlp=TLP.AMBER,
    timeout_s=10.0,
    # Shodan throttles its REST API at about one request per second per key.
    rate_limit="1/second",
    cache_ttl_hit_s=86_400,
    cache_ttl_miss_s=86_400,
    weight=0.5,
    cost="free account; host lookups spend no query credits",
)
PUBLIC_URL = "https://api.shodan.io"
MAX_SERVICES = 50


class ShodanHost:
    spec = SPEC

    def __init__(self, settings: Settings, client: httpx.AsyncClient) -> None:
        self.client = client
        self.key = settings.secret(SPEC.key_setting or "")
        self.base_url = settings.source_endpoints.get(SPEC.name, PUBLIC_URL).rstrip("/")
        self.timeout_s = settings.source_timeouts.get(SPEC.name, SPEC.timeout_s)
        self.fingerprint = self.base_url

    async def lookup(self, observable: Observable) -> SourceResult:
        if self.key is None:
            raise UpstreamError(
                "shodan_api_key is not set: set IOCSCOPE_SHODAN_API_KEY"
            )
        answer = await fetch(
            self.client,
            "GET",
            f"{self.base_url}/shodan/host/{observable.value}",
            timeout_s=self.timeout_s,
            ok_statuses=frozenset({200, 404}),
            params={"key": self.key},
        )
        body = answer.json()
        if not isinstance(body, dict):
            raise UpstreamError("Shodan returned JSON that is not an object")
        if "error" in body or answer.status_code == 404:
            return _error_body(answer.status_code, body)
        return _map_host(body)


def _error_body(status: int, body: dict[str, Any]) -> SourceResult:
    """Map Shodan's ``{"error": ...}`` bodies to a miss, a rate limit or an error."""
    message = str(body.get("error", ""))
    if status == 404 and message.startswith("No information available"):
        return SourceResult.not_found("Shodan holds no data for this address")
    lowered = message.lower()
    if "rate limit" in lowered or "credits" in lowered or "quota" in lowered:
        raise RateLimited(f"Shodan rate limit or credits exhausted: {message[:200]}")
    raise UpstreamError(
        f"Shodan returned {status} with an error: {message[:200] or 'no detail'}",
        http_status=status,
    )


def _map_host(body: dict[str, Any]) -> SourceResult:
    ports = int_list(body.get("ports"))
    tags = str_list(body.get("tags"))
    vulns = body.get("vulns")
    # The host summary lists CVE ids, and a banner keys them in an object instead.
    cves = sorted(map(str, vulns)) if isinstance(vulns, dict) else str_list(vulns)
    verdict, score, confidence = shodan_verdict(tags)
    owner = body.get("org") or body.get("isp") or "unknown organisation"
    summary = f"{owner} ({body.get('asn') or 'no ASN'}), {describe_ports(ports)}"
    summary += f", {len(cves)} CVEs"
    if tags:
        summary += f"; tags: {', '.join(tags)}"
    return SourceResult(
        status=Status.OK,
        verdict=verdict,
        score=score,
        confidence=confidence,
        summary=summary,
        tags=shodan_tags(tags, cves),
        data={
            "org": body.get("org"),
            "isp": body.get("isp"),
            "asn": body.get("asn"),
            "os": body.get("os"),
            "country_code": body.get("country_code"),
            "city": body.get("city"),
            "ports": ports,
            "hostnames": str_list(body.get("hostnames")),
            "domains": str_list(body.get("domains")),
            "tags": tags,
            "vulns": cves,
            "last_update": body.get("last_update"),
            "services": _services(body.get("data")),
        },
    )


def _services(banners: Any) -> list[dict[str, Any]]:
    """Keep the fields of each banner that name the service, not the raw payload."""
    if not isinstance(banners, list):
        return []
    services = []
    for banner in banners[:MAX_SERVICES]:
        if not isinstance(banner, dict):
            continue
        crawl = banner.get("_shodan")
        services.append(
            {
                "port": banner.get("port"),
                "transport": banner.get("transport"),
                "product": banner.get("product"),
                "version": banner.get("version"),
                "module": crawl.get("module") if isinstance(crawl, dict) else None,
                "timestamp": banner.get("timestamp"),
            }
        )
    return services


def load(context: SourceContext) -> list[Source]:
    """Build the Shodan host source. The engine skips it while no key is set."""
    if context.http is None:
        return []
    return [ShodanHost(context.settings, context.http)]
