"""The known-benign source: the bundled allow list plus imported allow lists.

The bundled list (``data/known_benign.json``: public DNS resolvers and top
sites) works before anything is imported. Imported MISP warninglists and
top-sites lists add to it. Matching is per type: an address list clears ip
observables only, and a domain list clears domain observables. A URL whose
host is on a domain list is not cleared, because benign sites host malicious
URLs too. The host match is reported in ``data`` only.

Listed hostnames cover their subdomains, but never above the observable's
registered domain, so a listed ``github.io`` cannot clear ``evil.github.io``.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from iocscope.feeds import canonical
from iocscope.feeds.catalog import FEEDS, FeedRole, get_feed
from iocscope.feeds.lookup import most_specific_first, observable_host
from iocscope.feeds.records import HASH_KINDS, EntryKind
from iocscope.feeds.store import FeedInfo, FeedStore, Match
from iocscope.models import Observable, ObservableType, SourceResult, Status, Verdict
from iocscope.sources.base import Source, SourceContext, SourceSpec
from iocscope.sources.feeds import describe, match_data

BUNDLED_FEED = "bundled"
_BUNDLED_CONFIDENCE = 0.8
_EXACT_KINDS = frozenset(HASH_KINDS | {EntryKind.EMAIL, EntryKind.URL})

SPEC = SourceSpec(
    name="known_benign",
    types=frozenset(
        {
            ObservableType.IP,
            ObservableType.DOMAIN,
            ObservableType.URL,
            ObservableType.EMAIL,
            ObservableType.MD5,
            ObservableType.SHA1,
            ObservableType.SHA256,
            ObservableType.SHA512,
        }
    ),
    description="known-benign lists: bundled defaults, MISP warninglists, top sites",
    network=False,
    timeout_s=2.0,
    tags=("allow-list",),
)


@dataclass
class BundledAllowList:
    """The allow list shipped with iocscope, held in memory."""

    addresses: dict[str, str] = field(default_factory=dict)
    networks: list[tuple[canonical.IPNetwork, str]] = field(default_factory=list)
    hostnames: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> BundledAllowList:
        bundled = cls()
        for item in document["lists"]:
            for value in item["entries"]:
                bundled.add(EntryKind(item["kind"]), value, item["name"])
        return bundled

    def add(self, kind: EntryKind, value: str, list_name: str) -> None:
        found, key = canonical.canonical(kind, value)
        if found is EntryKind.CIDR:
            self.networks.append((ipaddress.ip_network(key), list_name))
        elif found is EntryKind.IP:
            self.addresses[key] = list_name
        else:
            self.hostnames[key] = list_name

    def match_address(self, address: canonical.IPAddress) -> list[Match]:
        key = str(address)
        found = []
        if key in self.addresses:
            found.append(_bundled(EntryKind.IP, key, self.addresses[key], "exact"))
        return found + [
            _bundled(EntryKind.CIDR, str(network), name, "range")
            for network, name in self.networks
            if address in network
        ]

    def match_hostnames(self, candidates: Sequence[str]) -> list[Match]:
        return [
            _bundled(
                EntryKind.HOSTNAME, key, self.hostnames[key], _via(key, candidates)
            )
            for key in candidates
            if key in self.hostnames
        ]


def load_bundled() -> BundledAllowList:
    text = (resources.files("iocscope") / "data" / "known_benign.json").read_text()
    return BundledAllowList.from_document(json.loads(text))


class KnownBenignSource:
    """Source that clears observables listed on an allow list, per type."""

    spec = SPEC

    def __init__(self, store: FeedStore, bundled: BundledAllowList) -> None:
        self._store = store
        self._bundled = bundled

    async def lookup(self, observable: Observable) -> SourceResult:
        feeds = self._allow_feeds()
        if observable.type is ObservableType.URL:
            return self._lookup_url(observable, feeds)
        matches = most_specific_first(self._matches(observable, feeds))
        if not matches:
            return SourceResult.not_found()
        return _clean(matches, feeds)

    def _allow_feeds(self) -> list[FeedInfo]:
        return [
            info
            for definition in FEEDS
            if definition.role is FeedRole.ALLOW
            for info in self._store.feed_family(definition.name)
        ]

    def _matches(self, observable: Observable, feeds: list[FeedInfo]) -> list[Match]:
        names = [info.name for info in feeds]
        kind = observable.type
        if kind is ObservableType.IP:
            return self._address_matches(canonical.parse_ip(observable.value), names)
        if kind is ObservableType.DOMAIN:
            return self._domain_matches(
                observable.value, observable.registered_domain, names
            )
        return self._store.match_keys(
            names, (EntryKind(kind.value),), [observable.value]
        )

    def _address_matches(
        self, address: canonical.IPAddress, names: list[str]
    ) -> list[Match]:
        found = self._bundled.match_address(address)
        return found + self._store.match_address(names, address)

    def _domain_matches(
        self, domain: str, registered: str | None, names: list[str]
    ) -> list[Match]:
        candidates = domain_candidates(domain, registered)
        found = self._bundled.match_hostnames(candidates)
        listed = self._store.match_keys(names, (EntryKind.HOSTNAME,), candidates)
        found += [_with_via(match, _via(match.key, candidates)) for match in listed]
        found += self._store.match_keys(names, (EntryKind.DOMAIN,), [domain])
        return found + self._store.match_substrings(names, domain)

    def _lookup_url(
        self, observable: Observable, feeds: list[FeedInfo]
    ) -> SourceResult:
        names = [info.name for info in feeds]
        listed = self._store.match_keys(names, _EXACT_KINDS, [observable.value])
        if listed:
            return _clean(listed, feeds)
        host = observable_host(observable)
        if host is None:
            return SourceResult.not_found()
        host_matches = most_specific_first(
            self._host_matches(host, observable.registered_domain, names)
        )
        if not host_matches:
            return SourceResult.not_found()
        summary = (
            f"the URL host {host} is known-benign, "
            "but a benign host does not clear a URL"
        )
        return SourceResult.not_found(
            summary,
            host=host,
            host_listed=_describe(host_matches[0], feeds),
            **match_data(host_matches),
        )

    def _host_matches(
        self, host: str, registered: str | None, names: list[str]
    ) -> list[Match]:
        try:
            address = canonical.parse_ip(host)
        except ValueError:
            return self._domain_matches(host, registered, names)
        return self._address_matches(address, names)


def domain_candidates(domain: str, registered: str | None) -> list[str]:
    """Return ``domain`` and its parent domains down to ``registered``, or
    only ``domain`` when the registered domain is unknown or not a parent."""
    if registered is None or not (
        domain == registered or domain.endswith("." + registered)
    ):
        return [domain]
    labels = domain.split(".")
    keep = len(labels) - registered.count(".")
    return [".".join(labels[start:]) for start in range(keep)]


def _clean(matches: Sequence[Match], feeds: Sequence[FeedInfo]) -> SourceResult:
    return SourceResult(
        status=Status.OK,
        verdict=Verdict.CLEAN,
        known_benign=True,
        confidence=_confidence(matches[0]),
        summary=_describe(matches[0], feeds),
        data=match_data(matches),
    )


def _describe(match: Match, feeds: Sequence[FeedInfo]) -> str:
    if match.feed == BUNDLED_FEED:
        return f"listed in the bundled known-benign list ({match.context['list']})"
    return describe(get_feed(match.feed), feeds, match)


def _confidence(match: Match) -> float:
    if match.feed == BUNDLED_FEED:
        return _BUNDLED_CONFIDENCE
    return get_feed(match.feed).confidence


def _bundled(kind: EntryKind, key: str, list_name: str, via: str) -> Match:
    return Match(BUNDLED_FEED, kind, key, {"list": list_name}, via)


def _via(key: str, candidates: Sequence[str]) -> str:
    return "exact" if key == candidates[0] else "suffix"


def _with_via(match: Match, via: str) -> Match:
    return Match(match.feed, match.kind, match.key, match.context, via)


def load(context: SourceContext) -> Iterable[Source]:
    return [KnownBenignSource(context.store, load_bundled())]
