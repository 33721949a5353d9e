"""DNS blocklists: Spamhaus ZEN (IPs), Spamhaus DBL (domains) and SURBL multi.

Each list is its own source, so a list that refuses our resolver fails alone and
each listing is scored with its own weight. Return codes follow the lists' docs
(https://docs.spamhaus.com/, https://www.surbl.org/lists). Spamhaus rejects queries
from public resolvers or returns NXDOMAIN to them, so a miss counts only after the
list's test point has been seen listed through the same resolver.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import dns.asyncresolver

from iocscope.config import Settings
from iocscope.errors import UpstreamError
from iocscope.models import Observable, ObservableType, SourceResult, Status, Verdict
from iocscope.sources.base import Source, SourceContext, SourceSpec
from iocscope.sources.vendors.dns import build_resolver, query, records
from iocscope.tlp import TLP

# The public zones.
# NOTE: Spamhaus DQS is not supported. It puts a key inside the query name, so a
# DQS zone set here would put the key in error messages.
ZEN_ZONE = "zen.spamhaus.org"
DBL_ZONE = "dbl.spamhaus.org"
SURBL_ZONE = "multi.surbl.org"
# Seconds for which one successful test-point check lets NXDOMAIN count as a miss.
TEST_POINT_TTL_S = 3600.0
_SPAMHAUS_COST = (
    "free under the Spamhaus Fair Use Policy (low volume, non-commercial, own "
    "resolver); other use needs a paid Spamhaus subscription"
)


class Code(NamedTuple):
    label: str
    slug: str
    # UNKNOWN marks a policy listing that is context, not a flag.
    verdict: Verdict


MAL, SUS, CONTEXT = Verdict.MALICIOUS, Verdict.SUSPICIOUS, Verdict.UNKNOWN
ZEN_CODES = {
    "127.0.0.2": Code("SBL", "sbl", MAL),
    "127.0.0.3": Code("SBL CSS", "sbl-css", MAL),
    **{f"127.0.0.{n}": Code("XBL", "xbl", MAL) for n in (4, 5, 6, 7)},
    "127.0.0.9": Code("DROP", "drop", MAL),
    "127.0.0.10": Code("PBL (ISP-maintained)", "pbl", CONTEXT),
    "127.0.0.11": Code("PBL (Spamhaus-maintained)", "pbl", CONTEXT),
    "127.0.0.30": Code("BCL", "bcl", MAL),
}
DBL_CODES = {
    "127.0.1.2": Code("spam domain", "spam", SUS),
    "127.0.1.4": Code("phishing domain", "phishing", MAL),
    "127.0.1.5": Code("malware domain", "malware", MAL),
    "127.0.1.6": Code("botnet C&C domain", "botnet-cc", MAL),
    "127.0.1.102": Code("abused legit domain (spam)", "abused-legit-spam", SUS),
    "127.0.1.103": Code("abused legit redirector", "abused-redirector", SUS),
    "127.0.1.104": Code("abused legit domain (phishing)", "abused-legit-phish", MAL),
    "127.0.1.105": Code("abused legit domain (malware)", "abused-legit-malware", MAL),
    "127.0.1.106": Code("abused legit domain (botnet C&C)", "abused-legit-cc", MAL),
}
# SURBL sets one bit of the last octet of 127.0.0.x per list.
SURBL_BITS = {
    8: Code("PH (phishing)", "phishing", MAL),
    16: Code("MW (malware)", "malware", MAL),
    64: Code("ABUSE", "abuse", SUS),
    128: Code("CR (cracked sites)", "cracked", SUS),
}
# Return codes that report a rejected query, never a listing. Every code in
# 127.255.255.0/24 is one, for every list.
ERROR_RANGE = ipaddress.ip_network("127.255.255.0/24")
_OWN_RESOLVER = "use your own recursive resolver in dns_servers (IOCSCOPE_DNS_SERVERS)"
SPAMHAUS_ERRORS = {
    "127.255.255.252": "the zone name has a typo",
    "127.255.255.254": f"the query came through a public or open resolver: "
    f"{_OWN_RESOLVER}",
    "127.255.255.255": "the resolver sent too many queries (over the free quota)",
}
DBL_ERRORS = {"127.0.1.255": "an IP address was queried against the domain list"}
SURBL_ERRORS = {
    "127.0.0.1": f"SURBL blocks this resolver or it is over quota: {_OWN_RESOLVER}"
}


def _in_table(table: dict[str, Code]) -> Callable[[str], list[Code]]:
    return lambda code: [table[code]] if code in table else []


def _surbl_codes(code: str) -> list[Code]:
    if not code.startswith("127.0.0."):
        return []
    bits = int(code.rsplit(".", 1)[1])
    return [entry for bit, entry in SURBL_BITS.items() if bits & bit]


@dataclass(frozen=True)
class Blocklist:
    spec: SourceSpec
    zone: str
    label: str
    tag_prefix: str
    decode: Callable[[str], list[Code]]
    errors: dict[str, str]
    ip_versions: frozenset[int] = frozenset()
    # How domains are queried: "host" (the host and its registered domain),
    # "registered" (the registered domain only) or "" (domains are not served).
    domains: str = ""
    # A name under the zone that the list always lists, or None if undocumented.
    test_point: str | None = None


def _spec(
    name: str, types: set[ObservableType], description: str, cost: str
) -> SourceSpec:
    return SourceSpec(
        name=name,
        types=frozenset(types),
        description=description,
        network=True,
        max_tlp=TLP.AMBER,
        timeout_s=4.0,
        # Our own budget: the lists document fair use, not a rate.
        rate_limit="120/minute",
        cache_ttl_hit_s=900,
        cache_ttl_miss_s=900,
        weight=1.0,
        cost=cost,
    )


IP, DOMAIN, URL = ObservableType.IP, ObservableType.DOMAIN, ObservableType.URL
ZEN_SPEC = _spec(
    "spamhaus_zen",
    {IP},
    "Spamhaus ZEN: spam sources, exploited hosts, DROP and policy listings of an IP",
    _SPAMHAUS_COST,
)
DBL_SPEC = _spec(
    "spamhaus_dbl",
    {DOMAIN, URL},
    "Spamhaus DBL: spam, phishing, malware and botnet C&C domains",
    _SPAMHAUS_COST,
)
SURBL_SPEC = _spec(
    "surbl_multi",
    {DOMAIN, IP, URL},
    "SURBL multi: phishing, malware, abused and cracked sites seen in spam",
    "free for low volume; higher volume needs a paid SURBL data feed",
)
BLOCKLISTS = (
    Blocklist(
        spec=ZEN_SPEC,
        zone=ZEN_ZONE,
        label="Spamhaus ZEN",
        tag_prefix="spamhaus-zen",
        decode=_in_table(ZEN_CODES),
        errors=SPAMHAUS_ERRORS,
        ip_versions=frozenset({4, 6}),
        test_point="2.0.0.127",
    ),
    Blocklist(
        spec=DBL_SPEC,
        zone=DBL_ZONE,
        label="Spamhaus DBL",
        tag_prefix="spamhaus-dbl",
        decode=_in_table(DBL_CODES),
        errors=SPAMHAUS_ERRORS | DBL_ERRORS,
        domains="host",
        test_point="dbltest.com",
    ),
    # NOTE: no SURBL test point is documented in the material we checked, so a
    # SURBL NXDOMAIN from a resolver that SURBL silently blocks reads as a miss.
    Blocklist(
        spec=SURBL_SPEC,
        zone=SURBL_ZONE,
        label="SURBL multi",
        tag_prefix="surbl",
        decode=_surbl_codes,
        errors=SPAMHAUS_ERRORS | SURBL_ERRORS,
        ip_versions=frozenset({4}),
        domains="registered",
    ),
)


class DnsblSource:
    def __init__(self, blocklist: Blocklist, settings: Settings) -> None:
        self.spec = blocklist.spec
        self.blocklist = blocklist
        lifetime = settings.source_timeouts.get(self.spec.name, self.spec.timeout_s)
        servers = ",".join(settings.dns_servers) or "system"
        self.fingerprint = f"{blocklist.zone};{servers}"
        self._resolver: dns.asyncresolver.Resolver = build_resolver(settings, lifetime)
        self._test_point_valid_until = 0.0

    async def lookup(self, observable: Observable) -> SourceResult:
        names = self._query_names(observable)
        if not names:
            label = self.blocklist.label
            return SourceResult.skipped(
                f"{label} does not cover this value or IP version"
            )
        zone = self.blocklist.zone
        answers = await asyncio.gather(
            *(query(self._resolver, f"{name}.{zone}", "A") for name in names)
        )
        codes = sorted({code for answer in answers for code in records(answer)})
        if not codes:
            await self._check_test_point()
            # A name with no A record (NOERROR, no data) is also a miss.
            rcode = "nxdomain" if all(a is None for a in answers) else "nodata"
            return SourceResult.not_found(
                f"not listed in {self.blocklist.label}", rcode=rcode
            )
        return self._result(codes, names)

    def _query_names(self, observable: Observable) -> list[str]:
        """Return the names to query, or [] when the list does not apply."""
        name = observable.value
        if observable.type is ObservableType.URL:
            if not observable.host:
                return []
            name = observable.host.strip("[]")
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            address = None
        if address is not None:
            if address.version not in self.blocklist.ip_versions:
                return []
            # 1.2.3.4 becomes 4.3.2.1, and IPv6 becomes its 32 nibbles in reverse.
            pointer = address.reverse_pointer
            return [pointer.removesuffix(".in-addr.arpa").removesuffix(".ip6.arpa")]
        registered = observable.registered_domain or name
        if self.blocklist.domains == "host":
            return sorted({name, registered})
        if self.blocklist.domains == "registered":
            return [registered]
        return []

    def _decode(self, codes: list[str]) -> tuple[list[Code], list[str]]:
        """Split codes into listings and unknown codes, raising for error codes."""
        label = self.blocklist.label
        listings: list[Code] = []
        unknown: list[str] = []
        for code in codes:
            address = ipaddress.ip_address(code)
            meaning = self.blocklist.errors.get(code)
            if meaning is None and address in ERROR_RANGE:
                meaning = "an error code in 127.255.255.0/24"
            if meaning is not None:
                raise UpstreamError(f"{label} rejected the query ({code}): {meaning}")
            if address not in ipaddress.ip_network("127.0.0.0/8"):
                raise UpstreamError(
                    f"{label} returned {code}, which is not a blocklist return "
                    "code: the resolver may rewrite NXDOMAIN answers"
                )
            found = self.blocklist.decode(code)
            listings.extend(found)
            if not found:
                unknown.append(code)
        if unknown and not listings:
            raise UpstreamError(
                f"{label} returned {', '.join(unknown)}, which is not a documented "
                "return code"
            )
        return listings, unknown

    async def _check_test_point(self) -> None:
        """Raise unless the list's test point is listed through this resolver."""
        test_point = self.blocklist.test_point
        if test_point is None or time.monotonic() < self._test_point_valid_until:
            return
        answer = await query(self._resolver, f"{test_point}.{self.blocklist.zone}", "A")
        codes = records(answer)
        if not codes:
            raise UpstreamError(
                f"{self.blocklist.label} did not list its test point {test_point}, "
                "so its NXDOMAIN answers cannot be trusted; Spamhaus answers "
                f"NXDOMAIN to some public resolvers: {_OWN_RESOLVER}"
            )
        self._decode(codes)
        self._test_point_valid_until = time.monotonic() + TEST_POINT_TTL_S

    def _result(self, codes: list[str], names: list[str]) -> SourceResult:
        listings, unknown = self._decode(codes)
        verdicts = {entry.verdict for entry in listings}
        verdict = CONTEXT
        if MAL in verdicts:
            verdict = MAL
        elif SUS in verdicts:
            verdict = SUS
        labels = list(dict.fromkeys(entry.label for entry in listings))
        summary = f"listed in {self.blocklist.label}: {', '.join(labels)}"
        if verdict is CONTEXT:
            summary += " (a policy listing for end-user ranges, not evidence of abuse)"
        prefix = self.blocklist.tag_prefix
        return SourceResult(
            status=Status.OK,
            verdict=verdict,
            confidence={MAL: 0.9, SUS: 0.6}.get(verdict),
            summary=summary,
            tags=sorted({f"{prefix}:{entry.slug}" for entry in listings}),
            data={
                "zone": self.blocklist.zone,
                "queried": names,
                "codes": codes,
                "lists": labels,
                "unknown_codes": unknown,
            },
        )


def load(context: SourceContext) -> list[Source]:
    """Build one source per blocklist, each with its own resolver rather than HTTP."""
    return [DnsblSource(blocklist, context.settings) for blocklist in BLOCKLISTS]
