"""RDAP: registration data of domains (age, registrar, status) and IP networks.

Serves domain and ip as RFC 9083 JSON (https://about.rdap.org/). The default
endpoint, rdap.org, redirects each query to the registry responsible for it.
A 404 is the normal answer for an unregistered domain or unallocated address.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from iocscope.config import Settings
from iocscope.errors import UpstreamError, UpstreamTimeout
from iocscope.models import Observable, ObservableType, SourceResult, Status, Verdict
from iocscope.sources.base import Source, SourceContext, SourceSpec
from iocscope.sources.http import HttpAnswer, fetch
from iocscope.tlp import TLP

SPEC = SourceSpec(
    name="rdap",
    types=frozenset({ObservableType.DOMAIN, ObservableType.IP}),
    description="RDAP registration data: domain age and registrar, IP network owner",
    network=True,
    max_tlp=TLP.AMBER,
    timeout_s=10.0,
    # rdap.org and the registries throttle heavy use, so this is our own budget.
    rate_limit="30/minute",
    cache_ttl_hit_s=86_400,
    cache_ttl_miss_s=3600,
    weight=0.5,
    cost="free, no key; registries throttle heavy use",
)
PUBLIC_URL = "https://rdap.org"

# A domain registered fewer days ago than this is a suspicious signal, a common
# heuristic for throwaway phishing and malware domains.
NEWLY_REGISTERED_DAYS = 30
MAX_REDIRECTS = 3
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_ACCEPT = {"Accept": "application/rdap+json, application/json"}


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Rdap:
    spec = SPEC

    def __init__(
        self,
        settings: Settings,
        client: httpx.AsyncClient,
        *,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.client = client
        self.base_url = settings.source_endpoints.get(SPEC.name, PUBLIC_URL).rstrip("/")
        self.timeout_s = settings.source_timeouts.get(SPEC.name, SPEC.timeout_s)
        self.fingerprint = f"{self.base_url};new<{NEWLY_REGISTERED_DAYS}d"
        self._clock = clock

    async def lookup(self, observable: Observable) -> SourceResult:
        if observable.type is ObservableType.DOMAIN:
            # Registries store registered domains, not the hosts under them.
            name = observable.registered_domain or observable.value
            body = await self._get(f"/domain/{name}")
            if body is None:
                return SourceResult.not_found(
                    f"no RDAP record for {name}", http_status=404
                )
            return _domain_result(body, name, self._clock())
        body = await self._get(f"/ip/{observable.value}")
        if body is None:
            return SourceResult.not_found(
                "no RDAP record for this address", http_status=404
            )
        return _ip_result(body)

    async def _get(self, path: str) -> dict[str, Any] | None:
        """GET one RDAP object and return it, or None for a 404."""
        # RDAP is the one source that follows redirects, because rdap.org responds
        # to every query with a redirect to the registry, and RDAP requests carry no
        # key that could leak to another host. fetch() never follows redirects, so
        # this loop does.
        url = f"{self.base_url}{path}"
        deadline = time.monotonic() + self.timeout_s
        for _ in range(MAX_REDIRECTS + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise UpstreamTimeout(
                    f"RDAP timed out after {self.timeout_s:g} s following redirects"
                )
            answer = await fetch(
                self.client,
                "GET",
                url,
                timeout_s=remaining,
                ok_statuses=REDIRECT_STATUSES | {200, 404},
                headers=_ACCEPT,
            )
            if answer.status_code in REDIRECT_STATUSES:
                url = _redirect_target(url, answer)
                continue
            if answer.status_code == 404:
                _check_not_found(answer)
                return None
            body = answer.json()
            if not isinstance(body, dict):
                raise UpstreamError("RDAP returned JSON that is not an object")
            return body
        raise UpstreamError(f"RDAP redirected more than {MAX_REDIRECTS} times")


def _redirect_target(url: str, answer: HttpAnswer) -> str:
    location = str(answer.headers.get("location") or "")
    if not location:
        raise UpstreamError(f"RDAP returned {answer.status_code} without a Location")
    target = urljoin(url, location)
    scheme = urlsplit(target).scheme
    # A redirect may not leave HTTP, nor downgrade HTTPS to plain HTTP.
    allowed = ("https",) if url.startswith("https:") else ("http", "https")
    if scheme not in allowed:
        raise UpstreamError(f"RDAP redirected to an unsafe URL scheme: {scheme!r}")
    return target


def _check_not_found(answer: HttpAnswer) -> None:
    """Raise unless a 404 has no body or an RFC 9083 error object as its body."""
    if not answer.body.strip():
        return
    body = answer.json()
    if isinstance(body, dict) and body.get("errorCode") == 404:
        return
    raise UpstreamError(
        "RDAP returned 404 without an RDAP error object", http_status=404
    )


def _domain_result(body: dict[str, Any], name: str, now: datetime) -> SourceResult:
    events = _events(body)
    registered = events.get("registration")
    registrar = _find_entity(body, "registrar")
    data: dict[str, Any] = {
        "domain": name,
        "registered": registered.isoformat() if registered else None,
        "expires": _iso(events.get("expiration")),
        "last_changed": _iso(events.get("last changed")),
        "registrar": _vcard(registrar, "fn"),
        "registrar_iana_id": _iana_id(registrar),
        "abuse_email": _vcard(_find_entity(registrar or {}, "abuse"), "email"),
        "status": [str(item) for item in body.get("status") or []],
        "nameservers": _nameservers(body),
    }
    with_registrar = f" with {data['registrar']}" if data["registrar"] else ""
    if registered is None:
        summary = f"{name}: RDAP gives no registration date{with_registrar}"
        return _context(summary, data)
    age_days = max(0, (now - registered).days)
    data["age_days"] = age_days
    summary = f"registered {registered.date()} ({age_days} days ago){with_registrar}"
    if age_days >= NEWLY_REGISTERED_DAYS:
        return _context(summary, data)
    return SourceResult(
        status=Status.OK,
        verdict=Verdict.SUSPICIOUS,
        confidence=0.5,
        summary=f"newly {summary}",
        tags=["domain:newly-registered"],
        data=data,
    )


def _context(summary: str, data: dict[str, Any]) -> SourceResult:
    return SourceResult(
        status=Status.OK, verdict=Verdict.UNKNOWN, summary=summary, data=data
    )


def _ip_result(body: dict[str, Any]) -> SourceResult:
    start = _address(body.get("startAddress"))
    end = _address(body.get("endAddress"))
    country = body.get("country")
    data = {
        "name": body.get("name"),
        "handle": body.get("handle"),
        "country": country,
        "start_address": start,
        "end_address": end,
        "cidrs": _cidrs(start, end),
        "type": body.get("type"),
        "parent_handle": body.get("parentHandle"),
        "registrant": _vcard(_find_entity(body, "registrant"), "fn"),
        "abuse_email": _vcard(_find_entity(body, "abuse"), "email"),
    }
    summary = f"network {data['name'] or 'without a name'} ({data['handle']})"
    if start and end:
        summary += f", {start} - {end}"
    if data["registrant"]:
        summary += f", registrant {data['registrant']}"
    if country:
        summary += f", country {country}"
    return SourceResult(
        status=Status.OK,
        verdict=Verdict.UNKNOWN,
        summary=summary,
        tags=[f"country:{str(country).lower()}"] if country else [],
        data=data,
    )


def _events(body: dict[str, Any]) -> dict[str, datetime]:
    """Map each eventAction to its date, keeping the first of each action."""
    events: dict[str, datetime] = {}
    for event in body.get("events") or []:
        if not isinstance(event, dict):
            continue
        action, date = event.get("eventAction"), event.get("eventDate")
        try:
            moment = datetime.fromisoformat(str(date))
        except ValueError:
            continue
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        events.setdefault(str(action), moment)
    return events


def _find_entity(owner: dict[str, Any], role: str) -> dict[str, Any] | None:
    """Return the first entity with ``role``, searching nested entities depth-first."""
    for entity in owner.get("entities") or []:
        if not isinstance(entity, dict):
            continue
        if role in (entity.get("roles") or []):
            return entity
        nested = _find_entity(entity, role)
        if nested is not None:
            return nested
    return None


def _vcard(entity: dict[str, Any] | None, field: str) -> str | None:
    """Return a jCard property (RFC 7095: [name, params, type, value]) of an entity."""
    card = (entity or {}).get("vcardArray")
    if not isinstance(card, list) or len(card) < 2 or not isinstance(card[1], list):
        return None
    for prop in card[1]:
        if isinstance(prop, list) and len(prop) >= 4 and prop[0] == field and prop[3]:
            return str(prop[3])
    return None


def _iana_id(entity: dict[str, Any] | None) -> str | None:
    for item in (entity or {}).get("publicIds") or []:
        if isinstance(item, dict) and item.get("type") == "IANA Registrar ID":
            return str(item.get("identifier"))
    return None


def _nameservers(body: dict[str, Any]) -> list[str]:
    servers = [s for s in body.get("nameservers") or [] if isinstance(s, dict)]
    return [str(s["ldhName"]).lower() for s in servers if s.get("ldhName")]


def _address(value: Any) -> str | None:
    """Normalize a registry address: ARIN pads octets with zeros, RIPE adds ``/32``."""
    if not value:
        return None
    text = str(value).partition("/")[0].strip()
    octets = text.split(".")
    if len(octets) == 4 and all(octet.isdigit() for octet in octets):
        text = ".".join(str(int(octet)) for octet in octets)
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return str(value)


def _cidrs(start: str | None, end: str | None) -> list[str]:
    try:
        first = ipaddress.ip_address(start or "")
        last = ipaddress.ip_address(end or "")
    except ValueError:
        return []
    if first.version != last.version or first > last:  # type: ignore[operator]
        return []
    networks = ipaddress.summarize_address_range(first, last)
    return [str(network) for network in networks][:16]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def load(context: SourceContext) -> list[Source]:
    """Build the RDAP source, which needs the shared HTTP client and no key."""
    if context.http is None:
        return []
    return [Rdap(context.settings, context.http)]
