"""Feed updates from a real HTTP server on 127.0.0.1 serving the snapshots."""

from __future__ import annotations

import gzip
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from iocscope.feeds.catalog import CATALOG
from iocscope.feeds.download import (
    DownloadLimits,
    UpdateOutcome,
    UpdateStatus,
    feed_downloads,
    update_feeds,
)
from iocscope.feeds.records import EntryKind
from iocscope.feeds.store import FeedStore
from tests.loopback import LoopbackServer, Reply

FAST = DownloadLimits(connect_timeout_s=2.0, read_timeout_s=2.0)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FeedStore]:
    feed_store = FeedStore(tmp_path / "feeds.sqlite3")
    try:
        yield feed_store
    finally:
        feed_store.close()


@pytest.fixture
def server(loopback: LoopbackServer, shared_fixtures: Path) -> LoopbackServer:
    """Serve every feed snapshot under /feeds/<file name>."""
    for path in (shared_fixtures / "feeds").iterdir():
        loopback.route("GET", f"/feeds/{path.name}", Reply(body=path.read_bytes()))
    warninglist = (shared_fixtures / "warninglists" / "cloudflare.json").read_bytes()
    loopback.route("GET", "/lists/cloudflare/list.json", Reply(body=warninglist))
    return loopback


def closed_port() -> int:
    """Return a loopback port that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def update_one(
    store: FeedStore, name: str, url: str, limits: DownloadLimits = FAST
) -> UpdateOutcome:
    (outcome,) = update_feeds(store, [name], urls={name: url}, limits=limits)
    return outcome


def stored_keys(store: FeedStore, feed: str, kind: EntryKind, key: str) -> list[str]:
    return [match.key for match in store.match_keys([feed], [kind], [key])]


def test_update_imports_served_file(server: LoopbackServer, store: FeedStore) -> None:
    url = f"{server.url}/feeds/feodo_ipblocklist.json"
    outcome = update_one(store, "feodo_tracker", url)
    assert outcome.status is UpdateStatus.UPDATED
    assert outcome.info is not None
    assert outcome.info.entry_count == 3
    assert outcome.info.source == url
    assert outcome.files[0].format == "feodo_json"
    assert stored_keys(store, "feodo_tracker", EntryKind.IP, "51.161.81.190")
    assert server.requests[0].headers["user-agent"] == "iocscope-feeds"


def test_update_detects_format_of_override(
    server: LoopbackServer, store: FeedStore
) -> None:
    outcome = update_one(
        store, "feodo_tracker", f"{server.url}/feeds/feodo_ipblocklist.csv"
    )
    assert outcome.status is UpdateStatus.UPDATED
    assert outcome.files[0].format == "feodo_csv"


def test_update_unpacks_gzip(
    loopback: LoopbackServer, shared_fixtures: Path, store: FeedStore
) -> None:
    body = (shared_fixtures / "feeds" / "blocklist_de_all.derived.txt").read_bytes()
    loopback.route("GET", "/all.txt.gz", Reply(body=gzip.compress(body)))
    outcome = update_one(store, "blocklist_de", f"{loopback.url}/all.txt.gz")
    assert outcome.status is UpdateStatus.UPDATED
    assert outcome.info is not None
    assert outcome.info.entry_count == 50


def test_warninglist_part_named_after_url(
    server: LoopbackServer, store: FeedStore
) -> None:
    url = f"{server.url}/lists/cloudflare/list.json"
    outcome = update_one(store, "misp_warninglists", url)
    assert outcome.feed == "misp_warninglists:cloudflare"
    assert outcome.status is UpdateStatus.UPDATED


def test_update_follows_one_redirect(server: LoopbackServer, store: FeedStore) -> None:
    target = f"{server.url}/feeds/cins_army_ci-badguys.derived.txt"
    server.route("GET", "/moved", Reply(status=302, headers={"Location": target}))
    outcome = update_one(store, "cins_army", f"{server.url}/moved")
    assert outcome.status is UpdateStatus.UPDATED


def test_update_reports_progress(server: LoopbackServer, store: FeedStore) -> None:
    calls: list[tuple[str, int, int | None]] = []
    url = f"{server.url}/feeds/spamhaus_drop.txt"
    size = len(server.routes[("GET", "/feeds/spamhaus_drop.txt")].body)  # type: ignore[union-attr]
    update_feeds(
        store,
        ["spamhaus_drop"],
        urls={"spamhaus_drop": url},
        limits=FAST,
        progress=lambda *call: calls.append(call),
    )
    assert calls[-1] == ("spamhaus_drop spamhaus_drop.txt", size, size)


# -- failures keep the previous data ------------------------------------------


@pytest.fixture
def previous(server: LoopbackServer, store: FeedStore) -> FeedStore:
    url = f"{server.url}/feeds/blocklist_de_all.derived.txt"
    assert update_one(store, "blocklist_de", url).status is UpdateStatus.UPDATED
    return store


def assert_previous_kept(store: FeedStore) -> None:
    assert stored_keys(store, "blocklist_de", EntryKind.IP, "1.0.188.221")
    info = store.feed("blocklist_de")
    assert info is not None
    assert info.entry_count == 50


def test_unreachable_host_fails_with_hint(previous: FeedStore) -> None:
    port = closed_port()
    outcome = update_one(previous, "blocklist_de", f"http://127.0.0.1:{port}/all.txt")
    assert outcome.status is UpdateStatus.FAILED
    assert outcome.message.startswith(f"could not reach 127.0.0.1:{port}: ")
    assert "check the network or import a file with `iocscope feeds import`" in (
        outcome.message
    )
    assert outcome.message.endswith("the previous data is kept")
    assert_previous_kept(previous)


def test_http_error_status(server: LoopbackServer, previous: FeedStore) -> None:
    outcome = update_one(previous, "blocklist_de", f"{server.url}/gone")
    assert outcome.status is UpdateStatus.FAILED
    assert f"returned HTTP 404 for {server.url}/gone" in outcome.message
    assert_previous_kept(previous)


def test_redirect_loop_stops(server: LoopbackServer, previous: FeedStore) -> None:
    server.route("GET", "/loop", Reply(status=302, headers={"Location": "/loop"}))
    outcome = update_one(previous, "blocklist_de", f"{server.url}/loop")
    assert outcome.status is UpdateStatus.FAILED
    assert "too many redirects" in outcome.message
    assert len(server.requests) == 1 + FAST.max_redirects + 1
    assert_previous_kept(previous)


def test_read_timeout(server: LoopbackServer, previous: FeedStore) -> None:
    server.route("GET", "/slow", Reply(body="1.2.3.4\n", delay_s=float("inf")))
    limits = DownloadLimits(connect_timeout_s=2.0, read_timeout_s=0.3)
    outcome = update_one(previous, "blocklist_de", f"{server.url}/slow", limits)
    assert outcome.status is UpdateStatus.FAILED
    assert "timed out: no data for 0.3 s" in outcome.message
    assert_previous_kept(previous)


def test_size_cap(server: LoopbackServer, previous: FeedStore) -> None:
    server.route("GET", "/big", Reply(body="1.2.3.4\n" * 200))
    limits = DownloadLimits(max_bytes=1000)
    outcome = update_one(previous, "blocklist_de", f"{server.url}/big", limits)
    assert outcome.status is UpdateStatus.FAILED
    assert "larger than" in outcome.message
    assert_previous_kept(previous)


def test_error_page_does_not_empty_feed(
    server: LoopbackServer, previous: FeedStore
) -> None:
    page = "<html>\n<body>rate limited</body>\n</html>\n"
    server.route("GET", "/page", Reply(body=page, content_type="text/html"))
    outcome = update_one(previous, "blocklist_de", f"{server.url}/page")
    assert outcome.status is UpdateStatus.FAILED
    assert "no valid entries" in outcome.message
    assert_previous_kept(previous)


def test_wrong_json_does_not_empty_feed(
    server: LoopbackServer, store: FeedStore
) -> None:
    url = f"{server.url}/feeds/feodo_ipblocklist.json"
    assert update_one(store, "feodo_tracker", url).status is UpdateStatus.UPDATED
    server.route("GET", "/broken.json", Reply(body="[{"))
    outcome = update_one(store, "feodo_tracker", f"{server.url}/broken.json")
    assert outcome.status is UpdateStatus.FAILED
    info = store.feed("feodo_tracker")
    assert info is not None
    assert info.entry_count == 3


# -- feeds that need a key ----------------------------------------------------


def test_phishtank_has_no_default_url() -> None:
    definition = CATALOG["phishtank"]
    assert definition.needs_key
    assert feed_downloads(definition, {}) == []


def test_phishtank_named_without_url_fails(store: FeedStore) -> None:
    (outcome,) = update_feeds(store, ["phishtank"], limits=FAST)
    assert outcome.status is UpdateStatus.FAILED
    assert "application key" in outcome.message


def test_phishtank_skipped_when_updating_all(
    server: LoopbackServer, store: FeedStore
) -> None:
    # Every other feed points at the loopback server, so nothing leaves it.
    urls = {name: f"{server.url}/gone" for name in CATALOG if name != "phishtank"}
    outcomes = {o.feed: o for o in update_feeds(store, urls=urls, limits=FAST)}
    assert outcomes["phishtank"].status is UpdateStatus.SKIPPED
    assert "feed_urls.phishtank" in outcomes["phishtank"].message
    failed = [o for o in outcomes.values() if o.status is UpdateStatus.FAILED]
    assert len(failed) == len(CATALOG) - 1


def test_phishtank_with_configured_url(
    server: LoopbackServer, store: FeedStore
) -> None:
    url = f"{server.url}/feeds/phishtank_online-valid.constructed.json"
    outcome = update_one(store, "phishtank", url)
    assert outcome.status is UpdateStatus.UPDATED
    assert outcome.files[0].format == "phishtank_json"


def test_spamhaus_minimum_interval(server: LoopbackServer, store: FeedStore) -> None:
    url = f"{server.url}/feeds/spamhaus_drop.txt"
    assert update_one(store, "spamhaus_drop", url).status is UpdateStatus.UPDATED
    again = update_one(store, "spamhaus_drop", url)
    assert again.status is UpdateStatus.SKIPPED
    assert "at most one download every 60 minutes" in again.message
    assert len(server.requests) == 1
    (forced,) = update_feeds(
        store, ["spamhaus_drop"], urls={"spamhaus_drop": url}, limits=FAST, force=True
    )
    assert forced.status is UpdateStatus.UPDATED
    assert len(server.requests) == 2
