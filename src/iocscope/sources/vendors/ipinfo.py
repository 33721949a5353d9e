"""IPinfo: organisation, ASN, location, hostname and privacy flags of one IP address.

Docs: https://ipinfo.io/developers (``GET /{ip}/json``). The token is optional and
travels as a bearer token. Context only, never a verdict. Private and reserved
addresses come back as 200 ``{"ip": ..., "bogon": true}`` with nothing else.
"""

from __future__ import annotations

from typing import Any, NoReturn

import httpx

from iocscope.config import Settings
from iocscope.errors import RateLimited, UpstreamError
from iocscope.models import Observable, ObservableType, SourceResult, Status, Verdict
from iocscope.sources.base import Source, SourceContext, SourceSpec
from iocscope.sources.http import fetch
from iocscope.tlp import TLP

SPEC = SourceSpec(
    name="ipinfo",
    types=frozenset({ObservableType.IP}),
    description="IPinfo: organisation, ASN, location and privacy flags of an IP",
    network=True,
    # The token is optional, so the engine must not skip the source without one.
    key_setting=None,
    max_tlp=TLP.AMBER,
    timeout_s=5.0,
    # NOTE: estimates. Keyless use was documented at 1,000 requests a day and the
    # free token plan at 50,000 a month; the daily quota stays inside both.
    rate_limit="60/minute",
    daily_quota=1_000,
    cache_ttl_hit_s=86_400,
    cache_ttl_miss_s=86_400,
    weight=0.0,
    cost="free; optional token (IOCSCOPE_IPINFO_TOKEN) raises the limits",
)
PUBLIC_URL = "https://ipinfo.io"
PRIVACY_FLAGS = ("vpn", "proxy", "tor", "relay", "hosting")


class IPinfoSource:
    spec = SPEC

    def __init__(self, settings: Settings, client: httpx.AsyncClient) -> None:
        self.client = client
        self.token = settings.secret("ipinfo_token")
        self.base_url = settings.source_endpoints.get(SPEC.name, PUBLIC_URL).rstrip("/")
        self.timeout_s = settings.source_timeouts.get(SPEC.name, SPEC.timeout_s)
        # Paid tokens add fields, so results with and without one are cached apart.
        self.fingerprint = f"{self.base_url} token={self.token is not None}"

    async def lookup(self, observable: Observable) -> SourceResult:
        headers = {"Accept": "application/json"}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        answer = await fetch(
            self.client,
            "GET",
            f"{self.base_url}/{observable.value}/json",
            timeout_s=self.timeout_s,
            headers=headers,
        )
        body = answer.json()
        if not isinstance(body, dict):
            raise UpstreamError("IPinfo returned JSON that is not an object")
        if "error" in body:
            _raise_for_error(body["error"])
        if body.get("bogon") is True:
            return SourceResult.not_found(
                "bogon address: IPinfo has no data for it", bogon=True
            )
        return _map_address(body)


def _raise_for_error(error: Any) -> NoReturn:
    if isinstance(error, dict):
        text = f"{error.get('title') or ''} {error.get('message') or ''}".strip()
    else:
        text = str(error)
    if "rate limit" in text.lower() or "quota" in text.lower():
        raise RateLimited(f"IPinfo rate limit reached: {text[:200]}")
    raise UpstreamError(f"IPinfo returned an error: {text[:200] or 'no detail'}")


def _map_address(body: dict[str, Any]) -> SourceResult:
    asn, as_name = _asn(body)
    privacy = _privacy(body)
    flags = [flag for flag in PRIVACY_FLAGS if privacy and privacy[flag] is True]
    anycast = body.get("anycast") is True
    tags = [f"privacy:{flag}" for flag in flags]
    if body.get("country"):
        tags.append(f"country:{str(body['country']).lower()}")
    if asn:
        tags.append(f"asn:{asn.lower()}")
    if anycast:
        tags.append("network:anycast")
    return SourceResult(
        status=Status.OK,
        verdict=Verdict.UNKNOWN,
        summary=_summary(body, asn, as_name, flags),
        tags=tags,
        data={
            "asn": asn,
            "as_name": as_name,
            "org": body.get("org"),
            "hostname": body.get("hostname"),
            "city": body.get("city"),
            "region": body.get("region"),
            "country": body.get("country"),
            "loc": body.get("loc"),
            "timezone": body.get("timezone"),
            "anycast": anycast,
            "privacy": privacy,
            "company": body.get("company"),
        },
    )


def _summary(
    body: dict[str, Any], asn: str | None, as_name: str | None, flags: list[str]
) -> str:
    network = " ".join(part for part in (asn, as_name) if part) or "no ASN"
    place = ", ".join(
        str(body[field]) for field in ("city", "region", "country") if body.get(field)
    )
    parts = [network, place or "no location"]
    if body.get("hostname"):
        parts.append(f"hostname {body['hostname']}")
    if body.get("anycast") is True:
        parts.append("anycast")
    if flags:
        parts.append(f"privacy: {', '.join(flags)}")
    return "; ".join(parts)


def _privacy(body: dict[str, Any]) -> dict[str, Any] | None:
    """Return the privacy flags, which only paid plans include, or None."""
    privacy = body.get("privacy")
    if not isinstance(privacy, dict):
        return None
    return {name: privacy.get(name) for name in (*PRIVACY_FLAGS, "service")}


def _asn(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """Return (ASN, AS name) from the ``asn`` object or the ``org`` string.

    The free plan's response joins both in ``org`` as "AS15169 Google LLC".
    """
    asn = body.get("asn")
    if isinstance(asn, dict) and asn.get("asn"):
        return str(asn["asn"]), asn.get("name")
    org = str(body.get("org") or "")
    number, _, name = org.partition(" ")
    if number.upper().startswith("AS") and number[2:].isdigit():
        return number.upper(), name or None
    return None, org or None


def load(context: SourceContext) -> list[Source]:
    """Build the IPinfo source, which runs with or without a token."""
    if context.http is None:
        return []
    return [IPinfoSource(context.settings, context.http)]
