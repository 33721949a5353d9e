"""abuse.ch ThreatFox API: IOCs (C2 addresses, domains, URLs, samples) tied to malware.

Serves ip, domain, url, md5 and sha256; docs at https://threatfox.abuse.ch/api/.
``search_ioc`` matches substrings and stores IPs as ``ip:port``, so every entry is
compared with the observable before it counts. Not found is ``no_result`` (singular).
"""

from __future__ import annotations

import ipaddress
from typing import Any

import httpx

from iocscope.config import Settings
from iocscope.models import Observable, ObservableType, SourceResult, Status, Verdict
from iocscope.sources.base import Source, SourceContext, SourceSpec
from iocscope.sources.http import fetch
from iocscope.sources.vendors.urlhaus_api import abusech_query_status, abusech_tag
from iocscope.tlp import TLP

SPEC = SourceSpec(
    name="threatfox_api",
    types=frozenset(
        {
            ObservableType.IP,
            ObservableType.DOMAIN,
            ObservableType.URL,
            ObservableType.MD5,
            ObservableType.SHA256,
        }
    ),
    description="abuse.ch ThreatFox: IOCs of malware C2s, payload hosts and samples",
    network=True,
    key_setting="abusech_auth_key",
    max_tlp=TLP.AMBER,
    timeout_s=8.0,
    # ThreatFox publishes no per-key quota (fair use), so this is our own budget.
    rate_limit="60/minute",
    cache_ttl_hit_s=3600,
    cache_ttl_miss_s=1800,
    weight=1.0,
    cost="free with an abuse.ch Auth-Key; fair use, no published quota",
)
PUBLIC_URL = "https://threatfox-api.abuse.ch"

# Error statuses named in ThreatFox clients. ThreatFox publishes no complete list.
QUERY_ERRORS = {
    "illegal_search_term": "ThreatFox rejected the search term as invalid",
    "illegal_hash": "ThreatFox rejected the hash as invalid",
    "unknown_auth_key": "ThreatFox rejected the Auth-Key: check the abusech_auth_key "
    "setting (IOCSCOPE_ABUSECH_AUTH_KEY)",
    "illegal_auth_key": "ThreatFox rejected the Auth-Key: check the abusech_auth_key "
    "setting (IOCSCOPE_ABUSECH_AUTH_KEY)",
}
# ThreatFox's own confidence_level (0-100) below which a match is only suspicious.
MALICIOUS_CONFIDENCE = 50
MAX_ITEMS = 10


class ThreatfoxApi:
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
        by_hash = observable.type in (ObservableType.MD5, ObservableType.SHA256)
        query: dict[str, Any] = (
            {"query": "search_hash", "hash": observable.value}
            if by_hash
            else {"query": "search_ioc", "search_term": observable.value}
        )
        answer = await fetch(
            self.client,
            "POST",
            f"{self.base_url}/api/v1/",
            timeout_s=self.timeout_s,
            json=query,
            headers={"Auth-Key": self._key},
        )
        body = answer.json()
        found = abusech_query_status(
            body, vendor="ThreatFox", not_found="no_result", errors=QUERY_ERRORS
        )
        if not found:
            return SourceResult.not_found(
                "not listed in ThreatFox", query_status="no_result"
            )
        entries = [item for item in body.get("data") or [] if isinstance(item, dict)]
        # search_hash returns the IOCs of that sample, so each one is a match.
        matches = [e for e in entries if by_hash or _matches(e, observable)]
        if not matches:
            return SourceResult.not_found(
                "ThreatFox lists only other IOCs that contain this value",
                partial_matches=len(entries),
            )
        return _result(matches, by_hash)


def _matches(entry: dict[str, Any], observable: Observable) -> bool:
    ioc = str(entry.get("ioc") or "")
    if observable.type is ObservableType.IP:
        return _same_address(_strip_port(ioc), observable.value)
    if observable.type is ObservableType.DOMAIN:
        return ioc.lower().rstrip(".") == observable.value
    return ioc.rstrip("/") == observable.value.rstrip("/")


def _strip_port(ioc: str) -> str:
    """Return the address of an ``ip:port`` or ``[ipv6]:port`` IOC."""
    if ioc.startswith("["):
        return ioc[1:].partition("]")[0]
    if ioc.count(":") == 1:
        return ioc.partition(":")[0]
    return ioc


def _same_address(text: str, value: str) -> bool:
    try:
        return ipaddress.ip_address(text) == ipaddress.ip_address(value)
    except ValueError:
        return False


def _result(matches: list[dict[str, Any]], by_hash: bool) -> SourceResult:
    levels: list[int] = [e["confidence_level"] for e in matches if _is_level(e)]
    level = max(levels, default=None)
    families = _distinct(matches, "malware_printable")
    threats = _distinct(matches, "threat_type")
    first_seen = min(_distinct(matches, "first_seen"), default=None)
    verdict = (
        Verdict.SUSPICIOUS
        if level is not None and level < MALICIOUS_CONFIDENCE
        else Verdict.MALICIOUS
    )
    listing = f"sample linked to {len(matches)} IOCs" if by_hash else ", ".join(threats)
    summary = f"{listing or 'listed'} for {', '.join(families) or 'unknown malware'}"
    if level is not None:
        summary += f" (confidence {level})"
    vendor_tags = {str(t).lower() for e in matches for t in e.get("tags") or []}
    return SourceResult(
        status=Status.OK,
        verdict=verdict,
        confidence=level / 100 if level is not None else None,
        summary=summary,
        tags=[abusech_tag("malware", name) for name in families]
        + [abusech_tag("threat", name) for name in threats]
        + [abusech_tag("threatfox", tag) for tag in sorted(vendor_tags)],
        data={
            "malware": families,
            "threat_types": threats,
            "confidence_level": level,
            "first_seen": first_seen,
            "iocs": [_entry_summary(e) for e in matches[:MAX_ITEMS]],
        },
    )


def _entry_summary(entry: dict[str, Any]) -> dict[str, Any]:
    fields = (
        "id",
        "ioc",
        "ioc_type",
        "threat_type",
        "malware_printable",
        "malware_alias",
        "confidence_level",
        "first_seen",
        "last_seen",
        "reference",
        "tags",
    )
    return {name: entry.get(name) for name in fields}


def _distinct(entries: list[dict[str, Any]], field: str) -> list[str]:
    return sorted({str(e[field]) for e in entries if e.get(field)})


def _is_level(entry: dict[str, Any]) -> bool:
    value = entry.get("confidence_level")
    return isinstance(value, int) and not isinstance(value, bool)


def load(context: SourceContext) -> list[Source]:
    """Build the ThreatFox API source, which needs the shared HTTP client."""
    if context.http is None:
        return []
    return [ThreatfoxApi(context.settings, context.http)]
