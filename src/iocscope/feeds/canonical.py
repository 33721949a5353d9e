"""Canonical keys for feed values, in the form lookups use.

Every observable-shaped value goes through
:func:`iocscope.observables.parse_observable`, so a feed entry and a looked-up
observable always share one canonical form. Feed data gets two allowances
that user input does not: a listed network may have host bits set (cleared,
as FireHOL's iprange does), and any prefix length is accepted.

Every function raises ``ValueError`` with a short reason on invalid input;
parsers turn that into a bad line.
"""

from __future__ import annotations

import ipaddress

from iocscope.errors import InvalidObservable
from iocscope.feeds.records import EntryKind
from iocscope.models import Observable
from iocscope.observables import parse_observable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


# Shortest network prefixes a feed line may list. Real lists carry networks as
# short as 224.0.0.0/4 and fc00::/7 (bogons, multicast). A shorter network would
# cover an eighth of the address space or more, so such a line (0.0.0.0/0, say)
# is reported as bad instead of matching everything.
FEED_MIN_IPV4_PREFIX = 4
FEED_MIN_IPV6_PREFIX = 7


def _parse(raw: str, type_hint: str | None) -> Observable:
    try:
        return parse_observable(
            raw,
            type_hint,
            min_ipv4_prefix=FEED_MIN_IPV4_PREFIX,
            min_ipv6_prefix=FEED_MIN_IPV6_PREFIX,
        )
    except InvalidObservable as exc:
        raise ValueError(exc.message) from None


def canonical_address(raw: str) -> tuple[EntryKind, str]:
    """Canonicalize an address or a network, returning its kind and key.

    A /32 or /128 network becomes the plain address. Host bits set in a
    listed network are cleared (``1.2.3.4/24`` lists ``1.2.3.0/24``).
    """
    text = raw.strip()
    if "/" not in text:
        return EntryKind.IP, _parse(text, "ip").value
    try:
        text = str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        pass  # parse_observable below reports the reason
    observable = _parse(text, "cidr")
    return EntryKind(observable.type.value), observable.value


def canonical_hostname(raw: str) -> str:
    """Canonicalize a listed hostname. A leading ``*.`` or ``.``, which some
    allow lists use for "this name and its subdomains", is dropped."""
    text = raw.strip().removeprefix("*").removeprefix(".")
    return _parse(text, "domain").value


def canonical_asn(raw: str) -> str:
    text = raw.strip().upper().removeprefix("AS")
    if not text.isdigit() or int(text) >= 2**32:
        raise ValueError("invalid AS number")
    return str(int(text))


def canonical(kind: EntryKind, raw: str) -> tuple[EntryKind, str]:
    """Canonicalize ``raw`` as ``kind``.

    An ip given with a prefix comes back as a cidr, and a /32 or /128 cidr as
    an ip.
    """
    if kind in (EntryKind.IP, EntryKind.CIDR):
        return canonical_address(raw)
    if kind is EntryKind.HOSTNAME:
        return kind, canonical_hostname(raw)
    if kind is EntryKind.ASN:
        return kind, canonical_asn(raw)
    if kind is EntryKind.SUBSTRING:
        return kind, raw.strip().lower()
    if kind is EntryKind.URL and "://" not in raw:
        # With a url hint, parse_observable reads "example.com" as a URL.
        raise ValueError("invalid URL: no scheme")
    return kind, _parse(raw, kind.value).value


def classify(raw: str) -> tuple[EntryKind, str]:
    """Detect the kind of a bare value (address, network, hash, URL, email or
    domain) and canonicalize it."""
    text = raw.strip()
    if "/" in text and "://" not in text:
        return canonical_address(text)
    observable = _parse(text, None)
    return EntryKind(observable.type.value), observable.value


def parse_ip(raw: str) -> IPAddress:
    """Parse an address that is already canonical, such as an observable's
    value or a URL host, into an address object."""
    address = ipaddress.ip_address(raw.strip().strip("[]"))
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def fits(kind: EntryKind, raw: str) -> bool:
    """Tell whether ``raw`` is a valid value of ``kind``."""
    try:
        canonical(kind, raw)
    except ValueError:
        return False
    return True
