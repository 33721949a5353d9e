"""The SQLite feed store: replacement, exact and containment matching."""

from __future__ import annotations

import ipaddress
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from iocscope.errors import FeedError
from iocscope.feeds.importer import FeedFile, import_files
from iocscope.feeds.lookup import find_matches
from iocscope.feeds.records import EntryKind, FeedEntry, ParseReport
from iocscope.feeds.store import FeedStore
from iocscope.observables import parse_observable


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FeedStore]:
    feed_store = FeedStore(tmp_path / "nested" / "feeds.sqlite3")
    try:
        yield feed_store
    finally:
        feed_store.close()


def entries(*values: str) -> list[FeedEntry]:
    result = []
    for value in values:
        kind = EntryKind.CIDR if "/" in value else EntryKind.IP
        result.append(FeedEntry(kind, value, {"listed": value}))
    return result


def put(store: FeedStore, name: str, *values: str) -> None:
    store.replace_feed(name, format="ip_list", source="test", entries=entries(*values))


def matched(store: FeedStore, feed: str, raw: str) -> list[str]:
    found = find_matches(store, [feed], parse_observable(raw))
    return [match.key for match in found]


# -- storage ------------------------------------------------------------------


def test_store_creates_parent_dirs_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "feeds.sqlite3"
    with FeedStore(path):
        pass
    assert path.exists()
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_replace_records_feed_row(store: FeedStore) -> None:
    report = ParseReport()
    report.bad(3, "invalid IP address", "x")
    report.meta["list_name"] = "example"
    info = store.replace_feed(
        "blocklist_de",
        format="ip_list",
        source="all.txt",
        entries=entries("192.0.2.1", "198.51.100.0/24", "2001:db8::/32"),
        reports=[report],
    )
    assert info.entry_count == 3
    assert info.bad_lines == 1
    assert info.kind_counts == {"ip": 1, "cidr": 2}
    assert info.prefix_lengths == {4: (24,), 6: (32,)}
    assert store.feed("blocklist_de") == info
    assert info.meta == {"list_name": "example"}


def test_replace_drops_previous_entries(store: FeedStore) -> None:
    put(store, "feed", "192.0.2.1")
    put(store, "feed", "192.0.2.2")
    assert matched(store, "feed", "192.0.2.1") == []
    assert matched(store, "feed", "192.0.2.2") == ["192.0.2.2"]


def test_failed_replace_keeps_previous_entries(store: FeedStore) -> None:
    put(store, "feed", "192.0.2.1")

    def broken() -> Iterator[FeedEntry]:
        yield FeedEntry(EntryKind.IP, "192.0.2.9")
        raise FeedError("invalid JSON")

    with pytest.raises(FeedError):
        store.replace_feed("feed", format="x", source="y", entries=broken())
    assert matched(store, "feed", "192.0.2.1") == ["192.0.2.1"]
    assert matched(store, "feed", "192.0.2.9") == []
    info = store.feed("feed")
    assert info is not None
    assert info.entry_count == 1


def test_import_with_no_valid_entries_keeps_feed(store: FeedStore) -> None:
    put(store, "blocklist_de", "192.0.2.1")
    item = FeedFile("page.html", "<html>\n</html>\n", "ip_list", "blocklist_de")
    with pytest.raises(FeedError, match=r"no valid entries in page.html \(2 bad"):
        import_files(store, [item])
    assert matched(store, "blocklist_de", "192.0.2.1") == ["192.0.2.1"]


def test_delete_feed(store: FeedStore) -> None:
    put(store, "feed", "192.0.2.1")
    assert store.delete_feed("feed") is True
    assert store.feed("feed") is None
    assert store.delete_feed("feed") is False


def test_other_connection_sees_new_feeds(tmp_path: Path) -> None:
    path = tmp_path / "feeds.sqlite3"
    with FeedStore(path) as reader, FeedStore(path) as writer:
        assert reader.feeds() == []
        put(writer, "feed", "192.0.2.1")
        assert [info.name for info in reader.feeds()] == ["feed"]
        assert matched(reader, "feed", "192.0.2.1") == ["192.0.2.1"]


def test_feed_family_includes_parts(store: FeedStore) -> None:
    put(store, "misp_warninglists:a", "192.0.2.1")
    put(store, "misp_warninglists:b", "192.0.2.2")
    put(store, "misp_warninglists_other", "192.0.2.3")
    names = [info.name for info in store.feed_family("misp_warninglists")]
    assert names == ["misp_warninglists:a", "misp_warninglists:b"]


# -- containment: an address inside a listed range matches -------------------


def test_address_inside_listed_range(store: FeedStore) -> None:
    put(store, "feed", "192.0.2.0/24")
    assert matched(store, "feed", "192.0.2.10") == ["192.0.2.0/24"]


def test_network_and_broadcast_addresses_match(store: FeedStore) -> None:
    put(store, "feed", "192.0.2.0/24")
    assert matched(store, "feed", "192.0.2.0") == ["192.0.2.0/24"]
    assert matched(store, "feed", "192.0.2.255") == ["192.0.2.0/24"]


def test_address_just_outside_range(store: FeedStore) -> None:
    put(store, "feed", "192.0.2.0/24")
    assert matched(store, "feed", "192.0.1.255") == []
    assert matched(store, "feed", "192.0.3.0") == []


def test_range_never_matched_as_string(store: FeedStore) -> None:
    put(store, "feed", "192.0.2.0/24", "10.1.1.1")
    # Prefix-string comparison would wrongly match these.
    assert matched(store, "feed", "192.0.20.1") == []
    assert matched(store, "feed", "10.1.1.10") == []


def test_subnet_of_listed_range_matches_both(store: FeedStore) -> None:
    put(store, "feed", "192.0.2.0/24", "192.0.2.128/25")
    assert matched(store, "feed", "192.0.2.200") == ["192.0.2.128/25", "192.0.2.0/24"]
    assert matched(store, "feed", "192.0.2.10") == ["192.0.2.0/24"]


def test_exact_address_sorted_before_ranges(store: FeedStore) -> None:
    put(store, "feed", "192.0.2.0/24", "192.0.2.7")
    assert matched(store, "feed", "192.0.2.7") == ["192.0.2.7", "192.0.2.0/24"]


def test_ip_port_entry_matches_address(store: FeedStore) -> None:
    text = '{"1": [{"ioc_value": "192.0.2.44:8848", "ioc_type": "ip:port"}]}'
    item = FeedFile("recent.json", text, "threatfox_json", "threatfox")
    import_files(store, [item])
    found = find_matches(store, ["threatfox"], parse_observable("192.0.2.44"))
    assert [match.key for match in found] == ["192.0.2.44"]
    assert found[0].context["port"] == 8848
    assert matched(store, "threatfox", "192.0.2.45") == []


def test_ipv6_ranges(store: FeedStore) -> None:
    put(store, "feed", "2001:db8::/32", "2001:db8:abcd::/48")
    assert matched(store, "feed", "2001:db8:abcd:12::1") == [
        "2001:db8:abcd::/48",
        "2001:db8::/32",
    ]
    assert matched(store, "feed", "2001:db8:1::1") == ["2001:db8::/32"]
    assert matched(store, "feed", "2001:db9::1") == []


def test_ipv4_mapped_query_matches_ipv4_range(store: FeedStore) -> None:
    put(store, "feed", "192.0.2.0/24")
    assert matched(store, "feed", "::ffff:192.0.2.10") == ["192.0.2.0/24"]


def test_ipv4_range_does_not_match_ipv6(store: FeedStore) -> None:
    put(store, "feed", "0.0.0.0/8")
    assert matched(store, "feed", "::1") == []


def test_cidr_query_inside_listed_range(store: FeedStore) -> None:
    put(store, "feed", "192.0.2.0/24")
    assert matched(store, "feed", "192.0.2.128/25") == ["192.0.2.0/24"]
    assert matched(store, "feed", "192.0.2.0/24") == ["192.0.2.0/24"]


def test_cidr_query_wider_than_listed_range(store: FeedStore) -> None:
    put(store, "feed", "192.0.2.0/24", "192.0.2.1")
    assert matched(store, "feed", "192.0.0.0/16") == []


def test_every_prefix_length(store: FeedStore) -> None:
    networks = [
        str(ipaddress.ip_network(f"203.0.113.77/{length}", strict=False))
        for length in range(1, 32)
    ]
    put(store, "feed", *networks)
    assert len(matched(store, "feed", "203.0.113.77")) == 31
    assert len(matched(store, "feed", "203.0.113.78")) == 30


# -- exact kinds --------------------------------------------------------------


def put_kinds(store: FeedStore) -> None:
    items = [
        FeedEntry(EntryKind.DOMAIN, "evil.example"),
        FeedEntry(EntryKind.URL, "http://evil.example/a.exe"),
        FeedEntry(EntryKind.SHA1, "3395856ce81f2b7382dee72602f798b642f14140"),
        FeedEntry(EntryKind.EMAIL, "user@evil.example"),
        FeedEntry(EntryKind.ASN, "64496", {"asname": "EX"}),
    ]
    store.replace_feed("feed", format="x", source="y", entries=items)


def test_hash_matches_after_case_folding(store: FeedStore) -> None:
    put_kinds(store)
    raw = "3395856CE81F2B7382DEE72602F798B642F14140"
    assert matched(store, "feed", raw) == ["3395856ce81f2b7382dee72602f798b642f14140"]


def test_domain_matches_exactly(store: FeedStore) -> None:
    put_kinds(store)
    assert matched(store, "feed", "EVIL.example.") == ["evil.example"]
    assert matched(store, "feed", "sub.evil.example") == []


def test_url_matches_url_and_host(store: FeedStore) -> None:
    put_kinds(store)
    found = find_matches(
        store, ["feed"], parse_observable("HTTP://evil.example:80/a.exe")
    )
    assert [(match.key, match.via) for match in found] == [
        ("http://evil.example/a.exe", "exact"),
        ("evil.example", "host"),
    ]


def test_url_on_other_host_does_not_match(store: FeedStore) -> None:
    put_kinds(store)
    assert matched(store, "feed", "http://good.example/a.exe") == []


def test_email_matches(store: FeedStore) -> None:
    put_kinds(store)
    assert matched(store, "feed", "User@Evil.example") == ["user@evil.example"]


def test_asn_reachable_through_store(store: FeedStore) -> None:
    put_kinds(store)
    found = store.match_keys(["feed"], [EntryKind.ASN], ["64496"])
    assert [match.context for match in found] == [{"asname": "EX"}]


def test_kind_filter_applies(store: FeedStore) -> None:
    put_kinds(store)
    assert store.match_keys(["feed"], [EntryKind.URL], ["evil.example"]) == []


def test_substring_entries(store: FeedStore) -> None:
    items = [FeedEntry(EntryKind.SUBSTRING, "tracker.")]
    store.replace_feed("list", format="x", source="y", entries=items)
    found = store.match_substrings(["list"], "ads.tracker.example")
    assert [match.key for match in found] == ["tracker."]
    assert store.match_substrings(["list"], "example.com") == []
