"""Match an observable against stored block and context feeds.

Each observable type matches the entry kinds of the same name by canonical
key. An ip also matches every listed network that contains it, and a cidr
matches listed networks that contain or equal it. Neither is ever compared
as a string against a range. A URL matches listed URLs exactly, and its host
matches listed domains (or addresses) exactly, reported with ``via="host"``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from iocscope.feeds import canonical
from iocscope.feeds.records import EntryKind
from iocscope.feeds.store import FeedStore, Match
from iocscope.models import Observable, ObservableType


def find_matches(
    store: FeedStore, feeds: Sequence[str], observable: Observable
) -> list[Match]:
    """Return the entries of ``feeds`` that match ``observable``, most
    specific first."""
    kind = observable.type
    if kind is ObservableType.IP:
        matches = store.match_address(feeds, canonical.parse_ip(observable.value))
    elif kind is ObservableType.CIDR:
        network = ipaddress.ip_network(observable.value, strict=False)
        matches = store.match_network(feeds, network)
    elif kind is ObservableType.URL:
        matches = _url_matches(store, feeds, observable)
    else:
        matches = store.match_keys(feeds, (EntryKind(kind.value),), [observable.value])
    return most_specific_first(matches)


def observable_host(observable: Observable) -> str | None:
    """Return the canonical host of a URL or email observable, unbracketed."""
    return observable.host.strip("[]") if observable.host else None


def _url_matches(
    store: FeedStore, feeds: Sequence[str], observable: Observable
) -> list[Match]:
    found = store.match_keys(feeds, (EntryKind.URL,), [observable.value])
    host = observable_host(observable)
    if host is None:
        return found
    return found + host_matches(store, feeds, host)


def host_matches(store: FeedStore, feeds: Sequence[str], host: str) -> list[Match]:
    """Return domain or address entries equal to ``host``, marked ``host``."""
    try:
        address = canonical.parse_ip(host)
    except ValueError:
        matches = store.match_keys(feeds, (EntryKind.DOMAIN,), [host])
    else:
        matches = store.match_address(feeds, address)
    return [_via_host(match) for match in matches]


def _via_host(match: Match) -> Match:
    return Match(match.feed, match.kind, match.key, match.context, "host")


def most_specific_first(matches: list[Match]) -> list[Match]:
    """Sort exact matches first, then ranges from the longest prefix and
    listed parent domains from the longest name."""
    return sorted(matches, key=_specificity)


def _specificity(match: Match) -> tuple[int, int]:
    if match.kind is EntryKind.CIDR:
        return 1, -int(match.key.rpartition("/")[2])
    if match.via == "suffix":
        return 1, -len(match.key)
    return 0, 0
