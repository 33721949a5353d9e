"""Shodan InternetDB: open ports, hostnames, CPEs, tags and CVE ids of one IP address.

No key and no account. Docs: https://internetdb.shodan.io/. A 404 with
``{"detail": "No information available"}`` is the normal response for an address
Shodan has not seen. The data is refreshed about weekly and carries no timestamps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from iocscope.config import Settings
from iocscope.errors import RateLimited, UpstreamError
from iocscope.models import Observable, ObservableType, SourceResult, Status, Verdict
from iocscope.sources.base import Source, SourceContext, SourceSpec
from iocscope.sources.http import fetch
from iocscope.tlp import TLP

SPEC = SourceSpec(
    name="shodan_internetdb",
    types=frozenset({ObservableType.IP}),
    description="Shodan InternetDB: open ports, hostnames, tags and CVEs of an IP",
    network=True,
    max_tlp=TLP.AMBER,
    timeout_s=5.0,
    # NOTE: Shodan documents no quota for InternetDB. Client authors report
    # temporary bans after bursts of a few hundred requests, hence one a second.
    rate_limit="1/second",
    cache_ttl_hit_s=86_400,
    cache_ttl_miss_s=86_400,
    weight=0.5,
    cost="free, no account; non-commercial use only",
)
PUBLIC_URL = "https://internetdb.shodan.io"

# Shodan tags that describe hostile activity rather than what the host runs.
THREAT_TAGS = frozenset({"c2", "malware", "compromised"})


def shodan_verdict(tags: Sequence[str]) -> tuple[Verdict, int | None, float | None]:
    """Map Shodan tags to (verdict, score, confidence) for both Shodan sources.

    A ``c2``, ``malware`` or ``compromised`` tag makes the address suspicious. CVE ids
    and every other tag stay context: Shodan infers CVEs from product versions, and
    a vulnerable host is a likely victim, not evidence of hostility.
    """
    if THREAT_TAGS.intersection(tag.lower() for tag in tags):
        return Verdict.SUSPICIOUS, 60, 0.6
    return Verdict.UNKNOWN, None, None


def shodan_tags(tags: Sequence[str], vulns: Sequence[str]) -> list[str]:
    result = [f"shodan:{tag.lower()}" for tag in tags]
    if vulns:
        result.append("exposure:cve")
    return result


def int_list(value: Any) -> list[int]:
    """Return the integers of a JSON list, sorted, and drop every other item."""
    if not isinstance(value, list):
        return []
    return sorted(item for item in value if isinstance(item, int))


def str_list(value: Any) -> list[str]:
    """Return the items of a JSON list as strings, or [] for a non-list."""
    if not isinstance(value, list):
        return []
    return [str(item) for item in value if item is not None]


def describe_ports(ports: Sequence[int]) -> str:
    if not ports:
        return "no open ports"
    listed = ", ".join(str(port) for port in ports[:8])
    more = f" and {len(ports) - 8} more" if len(ports) > 8 else ""
    return f"{len(ports)} open ports ({listed}{more})"


class ShodanInternetDB:
    spec = SPEC

    def __init__(self, settings: Settings, client: httpx.AsyncClient) -> None:
        self.client = client
        self.base_url = settings.source_endpoints.get(SPEC.name, PUBLIC_URL).rstrip("/")
        self.timeout_s = settings.source_timeouts.get(SPEC.name, SPEC.timeout_s)
        self.fingerprint = self.base_url

    async def lookup(self, observable: Observable) -> SourceResult:
        answer = await fetch(
            self.client,
            "GET",
            f"{self.base_url}/{observable.value}",
            timeout_s=self.timeout_s,
            ok_statuses=frozenset({200, 404}),
        )
        body = answer.json()
        if not isinstance(body, dict):
            raise UpstreamError("InternetDB returned JSON that is not an object")
        if "ip" not in body:
            return _answer_without_data(answer.status_code, body)
        return _map_host(body)


def _answer_without_data(status: int, body: dict[str, Any]) -> SourceResult:
    """Map a body without an ``ip`` field: the documented miss, a quota or an error."""
    detail = str(body.get("detail", ""))[:200]
    if status == 404 and detail.startswith("No information available"):
        return SourceResult.not_found("Shodan InternetDB has no data for this address")
    if "rate limit" in detail.lower():
        raise RateLimited(f"InternetDB rate limit reached: {detail}")
    raise UpstreamError(
        f"InternetDB returned {status} without host data: {detail or 'no detail'}",
        http_status=status,
    )


def _map_host(body: dict[str, Any]) -> SourceResult:
    ports = int_list(body.get("ports"))
    hostnames = str_list(body.get("hostnames"))
    tags = str_list(body.get("tags"))
    vulns = str_list(body.get("vulns"))
    verdict, score, confidence = shodan_verdict(tags)
    parts = [describe_ports(ports), f"{len(hostnames)} hostnames", f"{len(vulns)} CVEs"]
    summary = ", ".join(parts)
    if tags:
        summary += f"; tags: {', '.join(tags)}"
    return SourceResult(
        status=Status.OK,
        verdict=verdict,
        score=score,
        confidence=confidence,
        summary=summary,
        tags=shodan_tags(tags, vulns),
        data={
            "ports": ports,
            "hostnames": hostnames,
            "cpes": str_list(body.get("cpes")),
            "tags": tags,
            "vulns": vulns,
        },
    )


def load(context: SourceContext) -> list[Source]:
    """Build the InternetDB source, which needs the shared HTTP client and no key."""
    if context.http is None:
        return []
    return [ShodanInternetDB(context.settings, context.http)]
