"""Live DNS: the A, AAAA, MX and NS records of a domain or a URL's host, as context.

Uses dnspython's async resolver (https://dnspython.readthedocs.io/) with the
servers in the ``dns_servers`` setting, or the system configuration when it is
empty. The query reaches the domain's own name servers, whose operator can see it.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.resolver

from iocscope.config import Settings
from iocscope.errors import ConfigError, UpstreamError, UpstreamTimeout
from iocscope.models import Observable, ObservableType, SourceResult, Status, Verdict
from iocscope.sources.base import Source, SourceContext, SourceSpec
from iocscope.tlp import TLP

SPEC = SourceSpec(
    name="dns",
    types=frozenset({ObservableType.DOMAIN, ObservableType.URL}),
    description="Live DNS records (A, AAAA, MX, NS) of a domain or URL host",
    network=True,
    max_tlp=TLP.AMBER,
    timeout_s=5.0,
    # Our own budget, so that a bulk job cannot flood the resolver.
    rate_limit="120/minute",
    cache_ttl_hit_s=300,
    cache_ttl_miss_s=300,
    weight=1.0,
    cost="free; queries go to the configured resolver",
)
# Seconds to wait for one server before dnspython retries. The lifetime bounds the
# whole query.
TRY_TIMEOUT_S = 2.0


def build_resolver(settings: Settings, lifetime_s: float) -> dns.asyncresolver.Resolver:
    """Build a resolver for ``settings.dns_servers``, or the system's when it is empty.

    Raises ConfigError for an entry that is not an IP address with an optional port,
    and when ``dns_servers`` is empty and the system has no resolver configuration.
    """
    if settings.dns_servers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [_nameserver(entry) for entry in settings.dns_servers]
    else:
        try:
            resolver = dns.asyncresolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            raise ConfigError(
                "no system DNS resolver configured: set dns_servers "
                "(IOCSCOPE_DNS_SERVERS)"
            ) from None
    resolver.lifetime = lifetime_s
    resolver.timeout = min(TRY_TIMEOUT_S, lifetime_s)
    return resolver


def _nameserver(entry: str) -> dns.nameserver.Nameserver:
    """Parse ``host``, ``host:port`` or ``[v6-host]:port`` into a UDP/TCP server."""
    host, port = entry.strip(), "53"
    if host.startswith("["):
        host, _, rest = host[1:].partition("]")
        port = rest.removeprefix(":") or port
    elif host.count(":") == 1:
        host, _, port = host.partition(":")
    try:
        ipaddress.ip_address(host)
        return dns.nameserver.Do53Nameserver(host, int(port))
    except ValueError:
        raise ConfigError(
            f"invalid dns_servers entry {entry!r}: expected an IP address with an "
            "optional port, such as 192.0.2.53 or 192.0.2.53:5353"
        ) from None


async def query(
    resolver: dns.asyncresolver.Resolver, name: str, rdtype: str
) -> dns.resolver.Answer | None:
    """Return the answer for ``name``, or None when the name does not exist (NXDOMAIN).

    An answer with no records of ``rdtype`` is empty, not None. Raises UpstreamTimeout
    when no server answered in the resolver's lifetime, and UpstreamError for
    SERVFAIL, REFUSED and every other DNS failure.
    """
    try:
        return await resolver.resolve(name, rdtype, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return None
    except dns.exception.Timeout:
        raise UpstreamTimeout(
            f"no DNS answer for {rdtype} {name} within {resolver.lifetime:g} s"
        ) from None
    except dns.resolver.NoNameservers:
        raise UpstreamError(
            f"the DNS servers failed to answer {rdtype} {name} (SERVFAIL or "
            "REFUSED): check dns_servers (IOCSCOPE_DNS_SERVERS)"
        ) from None
    except dns.exception.DNSException as exc:
        raise UpstreamError(f"DNS query {rdtype} {name} failed: {exc}"[:300]) from None


def records(answer: dns.resolver.Answer | None) -> list[str]:
    """Return the records of an answer as text, without the final dot of names."""
    if answer is None:
        return []
    return [str(rdata.to_text()).removesuffix(".") for rdata in answer]


class DnsRecords:
    spec = SPEC

    def __init__(self, settings: Settings) -> None:
        lifetime = settings.source_timeouts.get(SPEC.name, SPEC.timeout_s)
        self.fingerprint = ",".join(settings.dns_servers) or "system"
        self._resolver = build_resolver(settings, lifetime)

    async def lookup(self, observable: Observable) -> SourceResult:
        name = observable.value
        if observable.type is ObservableType.URL:
            if not observable.host:
                return SourceResult.skipped("the URL has no host")
            name = observable.host
        if _is_address(name):
            return SourceResult.skipped("the URL host is an IP address")
        # NS records sit at the zone apex, so ask for those of the registered domain.
        zone = observable.registered_domain or name
        questions = [(name, "A"), (name, "AAAA"), (name, "MX"), (zone, "NS")]
        answers = await asyncio.gather(
            *(query(self._resolver, qname, rdtype) for qname, rdtype in questions),
            return_exceptions=True,
        )
        results: list[dns.resolver.Answer | None] = []
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
            results.append(answer)
        if results[0] is None or results[1] is None:
            return SourceResult.not_found(
                f"{name} does not exist (NXDOMAIN)", rcode="nxdomain"
            )
        return _result(name, *results)


def _result(name: str, *answers: dns.resolver.Answer | None) -> SourceResult:
    a, aaaa, mx, ns = (records(answer) for answer in answers)
    data: dict[str, Any] = {"a": a, "aaaa": aaaa, "mx": mx, "ns": ns}
    first = answers[0]
    canonical = (
        first.canonical_name.to_text(True).lower() if first is not None else name
    )
    if canonical != name:
        data["cname"] = canonical
    addresses = a + aaaa
    if addresses:
        preview = ", ".join(addresses[:4]) + (" ..." if len(addresses) > 4 else "")
        summary = f"resolves to {preview}"
    else:
        summary = "no A or AAAA records"
    summary += f"; {len(mx)} MX, {len(ns)} NS"
    return SourceResult(
        status=Status.OK,
        verdict=Verdict.UNKNOWN,
        summary=summary,
        tags=[] if addresses else ["dns:no-address"],
        data=data,
    )


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def load(context: SourceContext) -> list[Source]:
    """Build the DNS source, which uses its own resolver rather than the HTTP client."""
    return [DnsRecords(context.settings)]
