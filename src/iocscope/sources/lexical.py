"""Lexical heuristics for domains and URLs, computed locally from the name alone.

Each rule that fires adds a named finding with points to ``data["findings"]``. The
name is suspicious at 40 points. Nothing here can vouch for a name, so a name with
no findings gets verdict ``unknown``, never ``clean``. The rules are listed in
docs/sources-local.md.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from iocscope.models import Observable, ObservableType, SourceResult, Status, Verdict
from iocscope.sources.base import Source, SourceContext, SourceSpec
from iocscope.sources.lexical_brands import BrandIndex, brand_findings, bundled_brands
from iocscope.sources.lexical_dga import dga
from iocscope.sources.lexical_rules import (
    SUSPICIOUS_AT,
    Finding,
    ip_literal_host,
    make_name,
    punycode,
    scripts,
    structure,
    userinfo,
)

SPEC = SourceSpec(
    name="lexical",
    types=frozenset({ObservableType.DOMAIN, ObservableType.URL}),
    description="Lexical heuristics: lookalikes, punycode, DGA-likeness, odd TLDs",
    network=False,
    timeout_s=1.0,
    # The source only says suspicious, and only for strong rules (40 points or
    # more), so at full weight one flag alone makes an observable suspicious and
    # can never make it malicious.
    weight=1.0,
)

MAX_CONFIDENCE = 0.8
SUMMARY_FINDINGS = 3


class LexicalSource:
    spec = SPEC

    def __init__(self, brands: BrandIndex) -> None:
        self._brands = brands

    async def lookup(self, observable: Observable) -> SourceResult:
        return _result(self.findings(observable))

    def findings(self, observable: Observable) -> list[Finding]:
        """Run every rule on the observable's host (and URL), strongest first."""
        found = self._url_findings(observable) + self._name_findings(observable)
        return sorted(found, key=lambda finding: -finding.points)

    def _url_findings(self, observable: Observable) -> list[Finding]:
        if observable.type is not ObservableType.URL:
            return []
        found = [userinfo(observable.value)]
        host = _host(observable)
        if host is not None:
            found.append(ip_literal_host(host))
        return [finding for finding in found if finding is not None]

    def _name_findings(self, observable: Observable) -> list[Finding]:
        host = _host(observable)
        if host is None or _is_ip(host):
            return []
        name = make_name(host, observable.registered_domain)
        found = punycode(name) + scripts(name) + structure(name)
        found += brand_findings(name, self._brands)
        owned = name.registered_domain is not None and self._brands.owns(
            name.registered_domain
        )
        machine_made = None if owned else dga(name)
        return found if machine_made is None else [*found, machine_made]


def _host(observable: Observable) -> str | None:
    if observable.type is ObservableType.DOMAIN:
        return observable.value
    if observable.host is not None:
        return observable.host
    try:
        return urlsplit(observable.value).hostname
    except ValueError:
        return None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _result(findings: list[Finding]) -> SourceResult:
    if not findings:
        return SourceResult(
            status=Status.OK,
            verdict=Verdict.UNKNOWN,
            summary="no lexical findings",
            data={"findings": []},
        )
    points = sum(finding.points for finding in findings)
    strongest = ", ".join(f.detail for f in findings[:SUMMARY_FINDINGS])
    return SourceResult(
        status=Status.OK,
        verdict=Verdict.SUSPICIOUS if points >= SUSPICIOUS_AT else Verdict.UNKNOWN,
        score=min(points, 100),
        confidence=round(min(MAX_CONFIDENCE, points / 125), 2),
        summary=f"{points} points: {strongest}",
        tags=sorted({finding.tag for finding in findings}),
        data={"findings": [f.as_dict() for f in findings], "points": points},
    )


def load(context: SourceContext) -> list[Source]:
    """Build the lexical source with the bundled brand list."""
    del context
    return [LexicalSource(bundled_brands())]
