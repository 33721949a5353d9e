"""The known-benign source: bundled list, warninglists, per-type clearing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from iocscope.feeds.importer import import_paths
from iocscope.feeds.store import FeedStore
from iocscope.models import SourceResult, Status, Verdict
from iocscope.observables import parse_observable
from iocscope.sources.benign import (
    KnownBenignSource,
    domain_candidates,
    load_bundled,
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FeedStore]:
    feed_store = FeedStore(tmp_path / "feeds.sqlite3")
    try:
        yield feed_store
    finally:
        feed_store.close()


@pytest.fixture
def source(store: FeedStore) -> KnownBenignSource:
    return KnownBenignSource(store, load_bundled())


async def check(source: KnownBenignSource, raw: str) -> SourceResult:
    return await source.lookup(parse_observable(raw))


def assert_cleared(result: SourceResult) -> None:
    assert result.status is Status.OK
    assert result.verdict is Verdict.CLEAN
    assert result.known_benign is True


# -- bundled list -------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["8.8.8.8", "1.1.1.1", "9.9.9.9", "2001:4860:4860::8888"]
)
async def test_bundled_resolvers_cleared(source: KnownBenignSource, value: str) -> None:
    result = await check(source, value)
    assert_cleared(result)
    assert result.summary == (
        "listed in the bundled known-benign list (public DNS resolvers)"
    )


async def test_bundled_domain_cleared(source: KnownBenignSource) -> None:
    result = await check(source, "google.com")
    assert_cleared(result)
    assert result.summary == "listed in the bundled known-benign list (top sites)"


async def test_bundled_domain_covers_subdomain(source: KnownBenignSource) -> None:
    result = await check(source, "mail.google.com")
    assert_cleared(result)
    assert result.data["matches"][0]["via"] == "suffix"


async def test_lookalike_domain_not_cleared(source: KnownBenignSource) -> None:
    result = await check(source, "google.com.evil.example")
    assert result.status is Status.NOT_FOUND
    result = await check(source, "notgoogle.com")
    assert result.status is Status.NOT_FOUND


async def test_url_on_benign_domain_not_cleared(source: KnownBenignSource) -> None:
    result = await check(source, "https://google.com/url?q=http://evil.example/")
    assert result.status is Status.NOT_FOUND
    assert result.known_benign is False
    assert result.verdict is None
    assert result.data["host"] == "google.com"
    assert result.data["matches"][0]["key"] == "google.com"
    assert "does not clear a URL" in (result.summary or "")


async def test_url_with_benign_ip_host_not_cleared(source: KnownBenignSource) -> None:
    result = await check(source, "http://8.8.8.8/payload.exe")
    assert result.status is Status.NOT_FOUND
    assert result.known_benign is False
    assert result.data["matches"][0]["key"] == "8.8.8.8"


async def test_resolver_address_does_not_clear_domain(
    source: KnownBenignSource,
) -> None:
    result = await check(source, "resolver.evil.example")
    assert result.status is Status.NOT_FOUND


async def test_unlisted_ip_not_found(source: KnownBenignSource) -> None:
    result = await check(source, "198.51.100.7")
    assert result.status is Status.NOT_FOUND


def test_source_types_exclude_cidr(source: KnownBenignSource) -> None:
    assert "cidr" not in {kind.value for kind in source.spec.types}


# -- imported warninglists ----------------------------------------------------


def warninglist_files(shared_fixtures: Path) -> list[Path]:
    folder = shared_fixtures / "warninglists"
    return sorted(
        path for path in folder.glob("*.json") if "list" in json.loads(path.read_text())
    )


def test_every_warninglist_imports(shared_fixtures: Path, store: FeedStore) -> None:
    files = warninglist_files(shared_fixtures)
    assert {path.stem for path in files} == {
        "cloudflare",
        "public-dns-v6",
        "rfc5735",
        "whats-my-ip",
    }
    result = import_paths(store, files)
    assert result.failures == []
    for item in result.files:
        document = json.loads(Path(item.source).read_text())
        assert item.feed == f"misp_warninglists:{Path(item.source).stem}"
        assert item.report.bad_count == 0
        assert item.entry_count == len(document["list"])


@pytest.fixture
def warninglists(shared_fixtures: Path, store: FeedStore) -> FeedStore:
    result = import_paths(store, warninglist_files(shared_fixtures))
    assert result.failures == []
    return store


@pytest.mark.usefixtures("warninglists")
async def test_cidr_list_bare_ipv6_address(source: KnownBenignSource) -> None:
    result = await check(source, "2001:1608:10:25::1c04:b12f")
    assert_cleared(result)
    assert result.summary == (
        "listed in MISP warninglist 'List of known IPv6 public DNS resolvers'"
    )
    assert result.data["matches"][0]["kind"] == "ip"


@pytest.mark.usefixtures("warninglists")
async def test_cidr_list_range_containment(source: KnownBenignSource) -> None:
    result = await check(source, "104.16.12.34")
    assert_cleared(result)
    assert result.data["matches"][0]["key"] == "104.16.0.0/13"
    assert result.data["matches"][0]["via"] == "range"
    ipv6 = await check(source, "2606:4700:10::6816:1")
    assert_cleared(ipv6)
    outside = await check(source, "104.24.0.0")
    assert outside.data["matches"][0]["key"] == "104.24.0.0/14"
    assert (await check(source, "104.28.0.1")).status is Status.NOT_FOUND


@pytest.mark.usefixtures("warninglists")
async def test_rfc5735_single_address_entry(source: KnownBenignSource) -> None:
    result = await check(source, "255.255.255.255")
    assert_cleared(result)
    assert result.data["matches"][0]["key"] == "255.255.255.255"


@pytest.mark.usefixtures("warninglists")
async def test_hostname_list_exact_and_suffix(source: KnownBenignSource) -> None:
    exact = await check(source, "api.ipify.org")
    assert_cleared(exact)
    assert exact.data["matches"][0]["via"] == "exact"
    child = await check(source, "eu.api.ipify.org")
    assert_cleared(child)
    assert child.data["matches"][0]["key"] == "api.ipify.org"
    assert child.data["matches"][0]["via"] == "suffix"


@pytest.mark.usefixtures("warninglists")
async def test_hostname_list_does_not_cover_parent(source: KnownBenignSource) -> None:
    assert_cleared(await check(source, "checkip.amazonaws.com"))
    result = await check(source, "amazonaws.com")
    assert result.status is Status.NOT_FOUND


@pytest.mark.usefixtures("warninglists")
async def test_hostname_list_does_not_clear_url(source: KnownBenignSource) -> None:
    result = await check(source, "https://api.ipify.org/?format=json")
    assert result.status is Status.NOT_FOUND
    assert result.known_benign is False
    assert result.data["matches"][0]["key"] == "api.ipify.org"


@pytest.mark.usefixtures("warninglists")
async def test_ip_list_does_not_clear_domain(source: KnownBenignSource) -> None:
    result = await check(source, "cloudflare.example")
    assert result.status is Status.NOT_FOUND


async def test_listed_suffix_stops_at_registered_domain(
    store: FeedStore, tmp_path: Path, source: KnownBenignSource
) -> None:
    path = tmp_path / "hosting.json"
    document = {"name": "Hosting", "type": "hostname", "list": ["github.io"]}
    path.write_text(json.dumps(document))
    assert import_paths(store, [path]).ok
    result = await check(source, "evil.github.io")
    assert result.status is Status.NOT_FOUND
    assert_cleared(await check(source, "github.io"))


async def test_string_list_hash_cleared(
    store: FeedStore, tmp_path: Path, source: KnownBenignSource
) -> None:
    path = tmp_path / "empty-hashes.json"
    empty_md5 = "d41d8cd98f00b204e9800998ecf8427e"
    document = {"name": "Empty hashes", "type": "string", "list": [empty_md5]}
    path.write_text(json.dumps(document))
    assert import_paths(store, [path]).ok
    result = await check(source, empty_md5.upper())
    assert_cleared(result)
    assert result.summary == "listed in MISP warninglist 'Empty hashes'"


async def test_substring_list_clears_domain_only(
    store: FeedStore, tmp_path: Path, source: KnownBenignSource
) -> None:
    path = tmp_path / "cdn-substrings.json"
    document = {"name": "CDN", "type": "substring", "list": [".cdn.example."]}
    path.write_text(json.dumps(document))
    assert import_paths(store, [path]).ok
    assert_cleared(await check(source, "a.cdn.example.net"))
    url = await check(source, "http://a.cdn.example.net/x")
    assert url.known_benign is False


def test_domain_candidates() -> None:
    assert domain_candidates("a.b.example.co.uk", "example.co.uk") == [
        "a.b.example.co.uk",
        "b.example.co.uk",
        "example.co.uk",
    ]
    assert domain_candidates("evil.github.io", "evil.github.io") == ["evil.github.io"]
    assert domain_candidates("localhost", None) == ["localhost"]
    assert domain_candidates("a.example", "other.example") == ["a.example"]


def test_bundled_list_is_canonical() -> None:
    bundled = load_bundled()
    assert len(bundled.hostnames) >= 90
    assert "2606:4700:4700::1111" in bundled.addresses
    assert all(name == name.lower() for name in bundled.hostnames)
