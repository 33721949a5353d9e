"""Every real feed snapshot, imported and looked up through its Source.

Each snapshot file is imported on its own into a fresh store. Then one listed
value of every entry kind in the file is looked up through the source
registered for the feed, and the feed's own context must show up in the
result's summary, tags and data.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from iocscope.config import Settings
from iocscope.feeds.catalog import CATALOG
from iocscope.feeds.importer import import_paths
from iocscope.feeds.records import EntryKind
from iocscope.feeds.store import FeedStore
from iocscope.models import SourceResult, Status, Verdict
from iocscope.observables import parse_observable
from iocscope.sources import benign, feeds
from iocscope.sources.base import Source, SourceContext


@dataclass(frozen=True)
class Probe:
    """A value to look up and what the result must show."""

    value: str
    # Entry kind this probe covers, and the key it must match.
    kind: EntryKind
    matched: str
    summary: str
    tags: frozenset[str] = frozenset()
    context: dict[str, Any] = field(default_factory=dict)
    via: str = "exact"


SNAPSHOTS: dict[str, tuple[str, list[Probe]]] = {
    "blocklist_de_all.derived.txt": (
        "blocklist_de",
        [
            Probe(
                "1.0.188.221",
                EntryKind.IP,
                "1.0.188.221",
                "listed in blocklist.de as an attack source",
                frozenset({"attack-source:blocklist_de"}),
            )
        ],
    ),
    "blocklist_de_firehol_ipset_excerpt.txt": (
        "blocklist_de",
        [
            Probe(
                "2.39.30.174",
                EntryKind.IP,
                "2.39.30.174",
                "listed in blocklist.de as an attack source",
            )
        ],
    ),
    "cins_army_ci-badguys.derived.txt": (
        "cins_army",
        [
            Probe(
                "58.22.87.35",
                EntryKind.IP,
                "58.22.87.35",
                "listed in CINS Army as an attack source",
                frozenset({"attack-source:cins_army"}),
            )
        ],
    ),
    "cins_army_firehol_ipset_excerpt.txt": (
        "cins_army",
        [Probe("1.93.5.114", EntryKind.IP, "1.93.5.114", "listed in CINS Army")],
    ),
    "feodo_ipblocklist.csv": (
        "feodo_tracker",
        [
            Probe(
                "67.213.75.205",
                EntryKind.IP,
                "67.213.75.205",
                "listed in Feodo Tracker as Dridex C2 since 2021-01-17",
                frozenset({"botnet:feodo", "malware:dridex"}),
                {"port": 443, "status": "offline", "last_online": "2021-08-18"},
            )
        ],
    ),
    "feodo_ipblocklist.json": (
        "feodo_tracker",
        [
            Probe(
                "185.117.90.142",
                EntryKind.IP,
                "185.117.90.142",
                "listed in Feodo Tracker as QakBot C2 since 2024-01-17",
                frozenset({"botnet:feodo", "malware:qakbot"}),
                {"port": 2222, "as_name": "HZ-EU-AS", "country": "NL"},
            )
        ],
    ),
    "firehol_level1_excerpt.txt": (
        "firehol_level1",
        [
            Probe(
                "1.93.0.224",
                EntryKind.IP,
                "1.93.0.224",
                "listed in FireHOL level1 (1.93.0.224)",
                frozenset({"firehol:level1"}),
            ),
            Probe(
                "1.4.100.1",
                EntryKind.CIDR,
                "1.4.0.0/17",
                "listed in FireHOL level1 (1.4.0.0/17)",
                via="range",
            ),
            Probe(
                "5.8.62.128/25",
                EntryKind.CIDR,
                "5.8.62.0/24",
                "listed in FireHOL level1 (5.8.62.0/24)",
                via="range",
            ),
        ],
    ),
    "malwarebazaar_recent.constructed.csv": (
        "malwarebazaar",
        [
            Probe(
                "f4910ea08d14eeb634084de47cf590d4dc5e554552f111da20d22ae71d7b425b",
                EntryKind.SHA256,
                "f4910ea08d14eeb634084de47cf590d4dc5e554552f111da20d22ae71d7b425b",
                "listed in MalwareBazaar as a Hancitor sample since 2021-04-06",
                frozenset({"malware:hancitor"}),
                {"file_name": "DropDll.dat"},
            ),
            Probe(
                "A4838DD31C672122441BEBCBF7E9D277",
                EntryKind.MD5,
                "a4838dd31c672122441bebcbf7e9d277",
                "listed in MalwareBazaar as a Hancitor sample",
                context={"file_type_guess": "dll"},
            ),
            Probe(
                "bf103996196df8255881127dee103c22fc12bef3",
                EntryKind.SHA1,
                "bf103996196df8255881127dee103c22fc12bef3",
                "listed in MalwareBazaar as a Hancitor sample",
            ),
        ],
    ),
    "openphish_feed.constructed.txt": (
        "openphish",
        [
            Probe(
                "http://secure-update.example.invalid/account/signin.php",
                EntryKind.URL,
                "http://secure-update.example.invalid/account/signin.php",
                "listed in OpenPhish as phishing",
                frozenset({"phishing"}),
            )
        ],
    ),
    "phishtank_online-valid.constructed.csv": (
        "phishtank",
        [
            Probe(
                "https://bank.example.invalid/a,b/login",
                EntryKind.URL,
                "https://bank.example.invalid/a,b/login",
                "listed in PhishTank as phishing (Microsoft) since 2023-02-09",
                frozenset({"phishing", "target:microsoft"}),
                {"phish_id": 1111112, "verified": "yes"},
            )
        ],
    ),
    "phishtank_online-valid.constructed.json": (
        "phishtank",
        [
            Probe(
                "http://phish-login.example/verify",
                EntryKind.URL,
                "http://phish-login.example/verify",
                "listed in PhishTank as phishing (Other) since 2023-02-09",
                frozenset({"phishing", "target:other"}),
                {"phish_id": 1111111, "online": "yes"},
            )
        ],
    ),
    "spamhaus_drop.txt": (
        "spamhaus_drop",
        [
            Probe(
                "5.134.131.7",
                EntryKind.CIDR,
                "5.134.128.0/19",
                "listed in Spamhaus DROP: range 5.134.128.0/19 (SBL270738)",
                frozenset({"spamhaus:drop", "sbl:sbl270738"}),
                {"sblid": "SBL270738"},
                via="range",
            ),
            Probe(
                "1.32.128.0/18",
                EntryKind.CIDR,
                "1.32.128.0/18",
                "listed in Spamhaus DROP: range 1.32.128.0/18 (SBL286275)",
                via="range",
            ),
        ],
    ),
    "spamhaus_drop_v4_jsonl_excerpt.txt": (
        "spamhaus_drop",
        [
            Probe(
                "223.254.17.9",
                EntryKind.CIDR,
                "223.254.0.0/16",
                "listed in Spamhaus DROP: range 223.254.0.0/16 (SBL212803)",
                frozenset({"sbl:sbl212803"}),
                {"rir": "apnic"},
                via="range",
            )
        ],
    ),
    "spamhaus_drop_v6_jsonl_excerpt.txt": (
        "spamhaus_drop",
        [
            Probe(
                "2a06:e487:ffff::1",
                EntryKind.CIDR,
                "2a06:e480::/29",
                "listed in Spamhaus DROP: range 2a06:e480::/29 (SBL399299)",
                frozenset({"sbl:sbl399299"}),
                {"rir": "ripencc"},
                via="range",
            ),
            Probe(
                "2a14:7c3:8000::/33",
                EntryKind.CIDR,
                "2a14:7c3::/32",
                "listed in Spamhaus DROP: range 2a14:7c3::/32 (SBL641930)",
                via="range",
            ),
        ],
    ),
    "threatfox_recent.constructed.csv": (
        "threatfox",
        [
            Probe(
                "139.180.203.104",
                EntryKind.IP,
                "139.180.203.104",
                "listed in ThreatFox as Cobalt Strike botnet_cc since 2020-12-06",
                frozenset({"threat:botnet_cc", "malware:cobalt-strike"}),
                {"port": 443, "confidence_level": 75, "ioc_type": "ip:port"},
            ),
            Probe(
                "jquery.su",
                EntryKind.DOMAIN,
                "jquery.su",
                "listed in ThreatFox as magecart cc_skimming since 2020-12-06",
                frozenset({"threat:cc_skimming", "malware:magecart"}),
                {
                    "reference": "https://twitter.com/AffableKraut/status/1335501765031174145"
                },
            ),
            Probe(
                "http://harold.jetos.com:3606/is-ready",
                EntryKind.URL,
                "http://harold.jetos.com:3606/is-ready",
                "listed in ThreatFox as Houdini botnet_cc since 2021-03-23",
                frozenset({"malware:houdini"}),
                {"tags": "WSHRAT", "malware": "win.houdini"},
            ),
        ],
    ),
    "threatfox_recent.constructed.json": (
        "threatfox",
        [
            Probe(
                "43.255.30.192",
                EntryKind.IP,
                "43.255.30.192",
                "listed in ThreatFox as Cobalt Strike botnet_cc since 2020-12-06",
                frozenset({"malware:cobalt-strike"}),
                {"port": 8848, "ioc_id": "21"},
            ),
            Probe(
                "https://jquery.su/checkout.js",
                EntryKind.DOMAIN,
                "jquery.su",
                "listed in ThreatFox as magecart cc_skimming since 2020-12-06 "
                "(matched the URL host jquery.su)",
                frozenset({"malware:magecart"}),
                via="host",
            ),
            Probe(
                "HTTP://Harold.Jetos.com:3606/is-ready",
                EntryKind.URL,
                "http://harold.jetos.com:3606/is-ready",
                "listed in ThreatFox as Houdini botnet_cc",
                context={"confidence_level": 100},
            ),
        ],
    ),
    "tor_exit_addresses_excerpt.txt": (
        "tor_exit",
        [
            Probe(
                "93.95.230.253",
                EntryKind.IP,
                "93.95.230.253",
                "Tor exit node (last status 2022-08-18 14:00:00)",
                frozenset({"tor-exit"}),
                {"fingerprint": "D2A4BEE6754A9711EB0FAC47F3059BE6FC0D72C7"},
            )
        ],
    ),
    "tor_exit_nodes_list.txt": (
        "tor_exit",
        [
            Probe(
                "104.244.77.208",
                EntryKind.IP,
                "104.244.77.208",
                "Tor exit node",
                frozenset({"tor-exit"}),
            ),
            Probe(
                "2001:678:e3c::a",
                EntryKind.IP,
                "2001:678:e3c::a",
                "Tor exit node",
                frozenset({"tor-exit"}),
            ),
            Probe(
                "2001:0620:20d0:0000:0000:0000:0000:0019",
                EntryKind.IP,
                "2001:620:20d0::19",
                "Tor exit node",
            ),
        ],
    ),
    "urlhaus_csv_online.constructed.csv": (
        "urlhaus",
        [
            Probe(
                "http://sskymedia.com/VMYB-ht_JAQo-gi/INV/99401FORPO/20673114777/US/"
                "Outstanding-Invoices/",
                EntryKind.URL,
                "http://sskymedia.com/VMYB-ht_JAQo-gi/INV/99401FORPO/20673114777/US/"
                "Outstanding-Invoices/",
                "listed in URLhaus as malware_download (online) since 2019-01-19",
                frozenset({"threat:malware_download", "urlhaus:emotet"}),
                {"reporter": "Cryptolaemus1", "id": "105821"},
            )
        ],
    ),
}

# Allow lists are served by the known_benign source.
ALLOW_SNAPSHOTS: dict[str, list[Probe]] = {
    "tranco_top.constructed.csv": [
        Probe(
            "googleapis.com",
            EntryKind.HOSTNAME,
            "googleapis.com",
            "listed in the top sites list (rank 7)",
            context={"rank": 7},
        )
    ],
    "tranco_top10k_membership_misp_20250115.txt": [
        Probe(
            "my.1password.com",
            EntryKind.HOSTNAME,
            "1password.com",
            "listed in the top sites list",
            via="suffix",
        )
    ],
}

# Stored and counted, but reached only through the store API.
STORE_ONLY_SNAPSHOTS = {"spamhaus_asndrop_jsonl_excerpt.txt"}


def snapshot_names(shared_fixtures: Path) -> set[str]:
    folder = shared_fixtures / "feeds"
    return {path.name for path in folder.iterdir() if path.name != "SOURCE.md"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FeedStore]:
    feed_store = FeedStore(tmp_path / "feeds.sqlite3")
    try:
        yield feed_store
    finally:
        feed_store.close()


def sources_by_name(store: FeedStore, tmp_path: Path) -> dict[str, Source]:
    context = SourceContext(settings=Settings(data_dir=tmp_path), store=store)
    loaded = [*feeds.load(context), *benign.load(context)]
    return {source.spec.name: source for source in loaded}


def import_snapshot(store: FeedStore, path: Path) -> str:
    result = import_paths(store, [path])
    assert result.failures == []
    (item,) = result.files
    assert item.report.bad_count == 0, item.report.bad_lines
    assert item.entry_count > 0
    return item.feed


def covered_kinds(probes: list[Probe]) -> set[str]:
    return {probe.kind.value for probe in probes}


def test_every_snapshot_has_probes(shared_fixtures: Path) -> None:
    covered = set(SNAPSHOTS) | set(ALLOW_SNAPSHOTS) | STORE_ONLY_SNAPSHOTS
    assert snapshot_names(shared_fixtures) == covered


async def lookup(source: Source, raw: str) -> SourceResult:
    observable = parse_observable(raw)
    assert observable.type in source.spec.types
    return await source.lookup(observable)


@pytest.mark.parametrize("file_name", sorted(SNAPSHOTS))
async def test_snapshot_found_through_source(
    shared_fixtures: Path, store: FeedStore, tmp_path: Path, file_name: str
) -> None:
    expected_feed, probes = SNAPSHOTS[file_name]
    feed = import_snapshot(store, shared_fixtures / "feeds" / file_name)
    assert feed == expected_feed
    info = store.feed(feed)
    assert info is not None
    assert set(info.kind_counts) <= covered_kinds(probes)
    source = sources_by_name(store, tmp_path)[feed]
    for probe in probes:
        result = await lookup(source, probe.value)
        check_hit(result, probe, CATALOG[feed].verdict)


def check_hit(result: SourceResult, probe: Probe, verdict: Verdict) -> None:
    assert result.status is Status.OK, probe.value
    assert result.verdict is verdict
    assert result.summary is not None
    assert result.summary.startswith(probe.summary), result.summary
    assert probe.tags <= set(result.tags), result.tags
    first = result.data["matches"][0]
    assert first["key"] == probe.matched
    assert first["kind"] == probe.kind.value
    assert first["via"] == probe.via
    for name, value in probe.context.items():
        assert first["context"].get(name) == value, name


@pytest.mark.parametrize("file_name", sorted(ALLOW_SNAPSHOTS))
async def test_allow_snapshot_found_through_known_benign(
    shared_fixtures: Path, store: FeedStore, tmp_path: Path, file_name: str
) -> None:
    feed = import_snapshot(store, shared_fixtures / "feeds" / file_name)
    assert feed == "top_sites"
    source = sources_by_name(store, tmp_path)["known_benign"]
    for probe in ALLOW_SNAPSHOTS[file_name]:
        result = await lookup(source, probe.value)
        check_hit(result, probe, Verdict.CLEAN)
        assert result.known_benign is True


def test_asndrop_stored_and_counted(shared_fixtures: Path, store: FeedStore) -> None:
    path = shared_fixtures / "feeds" / "spamhaus_asndrop_jsonl_excerpt.txt"
    assert import_snapshot(store, path) == "spamhaus_asndrop"
    info = store.feed("spamhaus_asndrop")
    assert info is not None
    assert info.kind_counts == {"asn": 2}
    assert info.meta["records"] == 280
    found = store.match_keys(["spamhaus_asndrop"], [EntryKind.ASN], ["400992"])
    assert found[0].context["asname"] == "ZHOUYISAT-COMMUNICATIONS"


def test_asndrop_has_no_source(store: FeedStore, tmp_path: Path) -> None:
    names = set(sources_by_name(store, tmp_path))
    assert "spamhaus_asndrop" not in names
    assert {"feodo_tracker", "spamhaus_drop", "tor_exit", "known_benign"} <= names


async def test_network_address_and_inside_both_flagged(
    shared_fixtures: Path, store: FeedStore, tmp_path: Path
) -> None:
    import_snapshot(store, shared_fixtures / "feeds" / "spamhaus_drop.txt")
    source = sources_by_name(store, tmp_path)["spamhaus_drop"]
    for value in ("1.10.16.0", "1.10.16.1", "1.10.31.255"):
        result = await lookup(source, value)
        assert result.flagged, value
        assert result.data["matches"][0]["key"] == "1.10.16.0/20"
    outside = await lookup(source, "1.10.32.0")
    assert outside.status is Status.NOT_FOUND


async def test_tor_exit_is_context_not_a_flag(
    shared_fixtures: Path, store: FeedStore, tmp_path: Path
) -> None:
    import_snapshot(store, shared_fixtures / "feeds" / "tor_exit_nodes_list.txt")
    source = sources_by_name(store, tmp_path)["tor_exit"]
    result = await lookup(source, "2001:678:e3c::d")
    assert result.status is Status.OK
    assert result.verdict is Verdict.UNKNOWN
    assert result.flagged is False
    assert result.tags == ["tor-exit"]


async def test_unlisted_value_not_found(
    shared_fixtures: Path, store: FeedStore, tmp_path: Path
) -> None:
    import_snapshot(store, shared_fixtures / "feeds" / "feodo_ipblocklist.csv")
    source = sources_by_name(store, tmp_path)["feodo_tracker"]
    result = await lookup(source, "198.51.100.7")
    assert result.status is Status.NOT_FOUND


async def test_feed_never_imported_is_skipped(store: FeedStore, tmp_path: Path) -> None:
    source = sources_by_name(store, tmp_path)["urlhaus"]
    result = await lookup(source, "http://evil.example/a.exe")
    assert result.status is Status.SKIPPED
    assert result.reason == (
        "feed not imported; run `iocscope feeds import` or `iocscope feeds update`"
    )


def test_source_specs_are_local(store: FeedStore, tmp_path: Path) -> None:
    for name, source in sources_by_name(store, tmp_path).items():
        assert source.spec.network is False, name
        assert source.spec.types, name
