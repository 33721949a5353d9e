"""Address scope: names the special-purpose class of an IP, a CIDR or a URL's IP host.

The class comes from ``Observable.scope``, which the observable parser sets. This
source never flags, because a private or documentation address has no reputation.
Its summary gives the analyst the reason that external sources report nothing.
"""

from __future__ import annotations

import ipaddress

from iocscope.models import Observable, ObservableType, SourceResult, Status, Verdict
from iocscope.sources.base import Source, SourceContext, SourceSpec

SPEC = SourceSpec(
    name="address_scope",
    types=frozenset({ObservableType.IP, ObservableType.CIDR, ObservableType.URL}),
    description="Special-purpose address classes (private, loopback, documentation...)",
    network=False,
    timeout_s=1.0,
)

# Scope -> IP version -> description with the RFC that reserves the range.
_DESCRIPTIONS: dict[str, dict[int, str]] = {
    "private": {
        4: "private address (RFC 1918)",
        6: "unique local address (RFC 4193)",
    },
    "shared": {4: "shared address space for carrier-grade NAT (RFC 6598)"},
    "loopback": {
        4: "loopback address (RFC 1122)",
        6: "loopback address (RFC 4291)",
    },
    "link-local": {
        4: "link-local address (RFC 3927)",
        6: "link-local address (RFC 4291)",
    },
    "documentation": {
        4: "documentation address (RFC 5737)",
        6: "documentation address (RFC 3849)",
    },
    "multicast": {
        4: "multicast address (RFC 5771)",
        6: "multicast address (RFC 4291)",
    },
    "unspecified": {
        4: "unspecified address (RFC 1122)",
        6: "unspecified address (RFC 4291)",
    },
    "reserved": {
        4: "reserved address (RFC 6890)",
        6: "reserved address (RFC 6890)",
    },
}

# Single addresses whose role an analyst should see next to the class.
_WELL_KNOWN: dict[str, str] = {
    "169.254.169.254": "instance metadata endpoint of AWS, Azure, GCP and OpenStack",
}


class AddressScopeSource:
    spec = SPEC

    async def lookup(self, observable: Observable) -> SourceResult:
        scope = observable.scope
        if scope is None:
            return SourceResult.skipped("no address scope")
        if scope == "global":
            return SourceResult(
                status=Status.OK,
                verdict=Verdict.UNKNOWN,
                summary="global address",
                data={"scope": scope},
            )
        return _non_routable(scope, _address_text(observable))


def _non_routable(scope: str, address: str) -> SourceResult:
    summary = f"non-routable: {_describe(scope, _ip_version(address))}"
    data: dict[str, str] = {"scope": scope}
    note = _WELL_KNOWN.get(address)
    if note is not None:
        summary = f"{summary}, {note}"
        data["note"] = note
    return SourceResult(
        status=Status.OK,
        verdict=Verdict.UNKNOWN,
        confidence=1.0,
        summary=summary,
        tags=[f"non-routable:{scope}"],
        data=data,
    )


def _address_text(observable: Observable) -> str:
    """Return the address or network as text: a URL's host without brackets."""
    if observable.type is ObservableType.URL and observable.host is not None:
        return observable.host.strip("[]")
    return observable.value


def _ip_version(address: str) -> int | None:
    try:
        return ipaddress.ip_network(address, strict=False).version
    except ValueError:
        return None


def _describe(scope: str, version: int | None) -> str:
    by_version = _DESCRIPTIONS.get(scope)
    if by_version is None:
        return f"{scope} address"
    if version is not None and version in by_version:
        return by_version[version]
    return next(iter(by_version.values()))


def load(context: SourceContext) -> list[Source]:
    """Build the address scope source; it needs nothing from the context."""
    del context
    return [AddressScopeSource()]
