"""Scoring and list-matching faults seen in other enrichment tools.

A single engine out of dozens must neither condemn a URL nor clear it. A vendor
category maps to a verdict through the shared table, and never to clean. A
local list matches addresses by containment in its networks, not by text.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from iocscope.config import Settings
from iocscope.engine import Engine
from iocscope.feeds.importer import FeedFile, import_files
from iocscope.feeds.store import FeedStore
from iocscope.models import Observable, ObservableType, Status, Verdict
from iocscope.runtime import open_engine
from iocscope.sources.categories import classify_categories, classify_category
from iocscope.sources.vendors import virustotal
from iocscope.sources.vendors.virustotal import VirusTotalSource
from iocscope.tlp import TLP
from tests.loopback import LoopbackServer, Reply

URL = "http://218.54.47.76/"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


# --- one engine out of many --------------------------------------------------


def url_report(
    shared_fixtures: Path, stats: dict[str, int], categories: dict[str, str]
) -> bytes:
    """Return the recorded one-detection URL report with its counts replaced."""
    recorded = shared_fixtures / "upstream" / "virustotal"
    path = recorded / "url_218.54.47.76_one_detection.json"
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    changed = copy.deepcopy(document)
    changed["data"]["attributes"]["last_analysis_stats"] = stats
    changed["data"]["attributes"]["categories"] = categories
    return json.dumps(changed).encode()


async def enrich_url(
    loopback: LoopbackServer, client: httpx.AsyncClient, body: bytes
) -> Any:
    loopback.fallback = Reply(200, body)
    settings = Settings(
        virustotal_api_key="vt-scoring-key",
        source_endpoints={"virustotal": loopback.url},
    )
    engine = Engine([VirusTotalSource(settings, client)], settings)
    observable = Observable(type=ObservableType.URL, value=URL, input=URL)
    return await engine.enrich_observable(observable, tlp=TLP.AMBER)


async def test_one_of_65_is_weak_suspicion(
    loopback: LoopbackServer, client: httpx.AsyncClient, shared_fixtures: Path
) -> None:
    stats = {"malicious": 1, "suspicious": 0, "harmless": 60, "undetected": 4}
    report = await enrich_url(loopback, client, url_report(shared_fixtures, stats, {}))
    result = report.enrichment["virustotal"]
    assert result.data["engines"] == "1/65"
    assert "1/65" in (result.summary or "")
    assert result.verdict is Verdict.SUSPICIOUS
    assert result.confidence is not None
    assert result.confidence < 0.5
    assert report.verdict is Verdict.SUSPICIOUS
    assert report.confidence is not None
    assert report.confidence < 0.5
    assert report.sources_flagged == 1


async def test_phishing_category_beats_count(
    loopback: LoopbackServer, client: httpx.AsyncClient, shared_fixtures: Path
) -> None:
    stats = {"malicious": 1, "suspicious": 0, "harmless": 60, "undetected": 4}
    body = url_report(shared_fixtures, stats, {"Forcepoint ThreatSeeker": "Phishing"})
    report = await enrich_url(loopback, client, body)
    result = report.enrichment["virustotal"]
    assert result.data["engines"] == "1/65"
    assert result.verdict is Verdict.MALICIOUS
    assert "category:phishing" in result.tags
    assert report.verdict is Verdict.MALICIOUS


async def test_unmapped_category_alone_unknown(
    loopback: LoopbackServer, client: httpx.AsyncClient, shared_fixtures: Path
) -> None:
    body = url_report(shared_fixtures, {}, {"Sophos": "travel", "BitDefender": "misc"})
    report = await enrich_url(loopback, client, body)
    assert report.enrichment["virustotal"].verdict is Verdict.UNKNOWN
    assert report.verdict is Verdict.UNKNOWN


@pytest.mark.parametrize(
    ("category", "label"),
    [
        ("Phishing", "phishing"),
        ("Phishing and Other Frauds", "phishing"),
        ("phishing-and-fraud", "phishing"),
        ("Malware Sites", "malware"),
        ("malicious", "malware"),
        ("Spam URLs", "spam"),
        ("spammers", "spam"),
        ("malware callhome, command and control", "malware"),
        ("Command and Control Servers", "command-and-control"),
        ("Botnet", "command-and-control"),
    ],
)
def test_threat_categories_malicious(category: str, label: str) -> None:
    match = classify_category(category)
    assert match is not None
    assert match.verdict is Verdict.MALICIOUS
    assert match.label == label


@pytest.mark.parametrize(
    "category", ["Botnets", "Keyloggers and Monitoring", "Trojans", "Exploits"]
)
def test_plural_threat_categories_malicious(category: str) -> None:
    match = classify_category(category)
    assert match is not None
    assert match.verdict is Verdict.MALICIOUS


@pytest.mark.parametrize(
    "category",
    [
        "travel",
        "uncategorized",
        "parked",
        "newly registered websites",
        "information technology",
        "anti-malware",
        "antispam",
        "",
    ],
)
def test_unmapped_category_no_verdict(category: str) -> None:
    assert classify_category(category) is None


def test_category_never_maps_clean() -> None:
    categories = ["Phishing", "Spam", "malware", "travel", "search engines", "news"]
    verdicts = {match.verdict for match in classify_categories(categories)}
    assert Verdict.CLEAN not in verdicts
    assert verdicts == {Verdict.MALICIOUS}


def test_mixed_engine_counts_generic() -> None:
    data = {
        "id": "x",
        "type": "url",
        "attributes": {
            "last_analysis_stats": {"malicious": 2, "undetected": 63, "timeout": 9}
        },
    }
    result = virustotal.map_object(data, 3)
    assert result.data["engines"] == "2/65"
    assert result.verdict is Verdict.SUSPICIOUS


# --- local lists match by containment ----------------------------------------

RANGES = "\n".join(
    [
        "# test ranges",
        "192.0.2.0/24",
        "198.51.100.0/24",
        "198.51.100.128/25",
        "10.1.1.1",
        "2001:db8::/32",
        "2001:db8:abcd::/48",
    ]
)
THREATFOX_PORTS = json.dumps(
    {
        "1": [
            {
                "ioc_value": "203.0.113.44:8848",
                "ioc_type": "ip:port",
                "threat_type": "botnet_cc",
                "malware_printable": "Test Bot",
                "confidence_level": 90,
            },
            {
                "ioc_value": "[2001:db8::44]:443",
                "ioc_type": "ip:port",
                "threat_type": "botnet_cc",
                "malware_printable": "Test Bot",
                "confidence_level": 90,
            },
        ]
    }
)
WARNINGLIST = json.dumps(
    {"name": "Documentation ranges", "type": "cidr", "list": ["192.0.2.0/24"]}
)


def import_feeds(data_dir: Path, *feeds: FeedFile) -> Settings:
    settings = Settings(data_dir=data_dir, offline=True)
    with FeedStore(settings.feed_db_path) as store:
        for feed in feeds:
            import_files(store, [feed])
    return settings


def matched_keys(report: Any, source: str) -> list[str]:
    result = report.enrichment[source]
    return [match["key"] for match in result.data.get("matches", [])]


@pytest.mark.parametrize(
    ("address", "keys"),
    [
        ("192.0.2.10", ["192.0.2.0/24"]),
        ("::ffff:192.0.2.10", ["192.0.2.0/24"]),
        ("198.51.100.200", ["198.51.100.128/25", "198.51.100.0/24"]),
        ("198.51.100.20", ["198.51.100.0/24"]),
        ("2001:db8:abcd::5", ["2001:db8:abcd::/48", "2001:db8::/32"]),
        ("2001:db8:1::5", ["2001:db8::/32"]),
        ("192.0.2.0/25", ["192.0.2.0/24"]),
    ],
)
async def test_local_list_contains_address(
    tmp_path: Path, address: str, keys: list[str]
) -> None:
    feed = FeedFile("level1.netset", RANGES, "ip_list", "firehol_level1")
    settings = import_feeds(tmp_path / "data", feed)
    async with open_engine(settings, only=["firehol_level1"]) as engine:
        report = await engine.enrich(address)
    assert report.enrichment["firehol_level1"].status is Status.OK
    assert matched_keys(report, "firehol_level1") == keys


@pytest.mark.parametrize(
    "address", ["192.0.20.1", "10.1.1.10", "198.51.10.1", "2001:db9::1"]
)
async def test_local_list_no_string_match(tmp_path: Path, address: str) -> None:
    # Each address shares its leading text with a listed entry but lies outside it.
    feed = FeedFile("level1.netset", RANGES, "ip_list", "firehol_level1")
    settings = import_feeds(tmp_path / "data", feed)
    async with open_engine(settings, only=["firehol_level1"]) as engine:
        report = await engine.enrich(address)
    assert report.enrichment["firehol_level1"].status is Status.NOT_FOUND


@pytest.mark.parametrize("address", ["203.0.113.44", "2001:db8::44"])
async def test_ip_port_entry_matches_address(tmp_path: Path, address: str) -> None:
    feed = FeedFile("recent.json", THREATFOX_PORTS, "threatfox_json", "threatfox")
    settings = import_feeds(tmp_path / "data", feed)
    async with open_engine(settings, only=["threatfox"]) as engine:
        report = await engine.enrich(address)
    result = report.enrichment["threatfox"]
    assert result.status is Status.OK
    assert result.verdict is Verdict.MALICIOUS
    assert matched_keys(report, "threatfox") == [address]


async def test_plain_list_ip_port_matches(tmp_path: Path) -> None:
    text = "203.0.113.44:8080\n[2001:db8::44]:443\n"
    feed = FeedFile("proxies.txt", text, "ip_list", "blocklist_de")
    settings = import_feeds(tmp_path / "data", feed)
    async with open_engine(settings, only=["blocklist_de"]) as engine:
        report = await engine.enrich("203.0.113.44")
    assert report.enrichment["blocklist_de"].status is Status.OK


async def test_allow_list_contains_address(tmp_path: Path) -> None:
    feed = FeedFile(
        "documentation.json", WARNINGLIST, "misp_warninglist", "misp_warninglists:docs"
    )
    settings = import_feeds(tmp_path / "data", feed)
    async with open_engine(settings, only=["known_benign"]) as engine:
        inside = await engine.enrich("192.0.2.10")
        outside = await engine.enrich("192.0.20.1")
    assert inside.enrichment["known_benign"].status is Status.OK
    assert inside.enrichment["known_benign"].known_benign is True
    assert outside.enrichment["known_benign"].status is Status.NOT_FOUND
