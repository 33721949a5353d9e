# ruff: noqa: E501 - the CSV lines keep the feeds' own layout, one entry per line
"""Well-known benign observables stay out of ``malicious`` even when a feed lists
them, and a private address never reaches a network source.

The feeds here are small files written in the documented Feodo Tracker and
ThreatFox CSV layouts, imported through ``iocscope feeds import``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from iocscope.cli import build_app

runner = CliRunner()

FEODO_CSV = """\
# abuse.ch Feodo Tracker Botnet C2 IP Blocklist (CSV), written for this test
"first_seen_utc","dst_ip","dst_port","c2_status","last_online","malware"
"2024-01-17 07:30:05","8.8.8.8","443","online","2024-08-18","Dridex"
"2024-01-17 07:30:05","1.1.1.1","443","online","2024-08-18","Dridex"
"""

THREATFOX_CSV = """\
# ThreatFox IOCs: recent additions - CSV format, written for this test
# "first_seen_utc","ioc_id","ioc_value","ioc_type","threat_type","fk_malware","malware_alias","malware_printable","last_seen_utc","confidence_level","is_compromised","reference","tags","anonymous","reporter"
"2024-03-23 14:50:33", "1", "google.com", "domain", "botnet_cc", "win.houdini", "None", "Houdini", "", "100", "False", "None", "None", "0", "abuse_ch"
"2024-03-23 14:50:33", "2", "https://google.com/evil/payload.exe", "url", "payload_delivery", "win.houdini", "None", "Houdini", "", "100", "False", "None", "None", "0", "abuse_ch"
"""


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    feodo = tmp_path / "ipblocklist.csv"
    threatfox = tmp_path / "threatfox_recent.csv"
    feodo.write_text(FEODO_CSV)
    threatfox.write_text(THREATFOX_CSV)
    for path, feed in ((feodo, "feodo_tracker"), (threatfox, "threatfox")):
        result = runner.invoke(
            build_app(),
            ["feeds", "import", str(path), "--feed", feed, "--data-dir", str(folder)],
        )
        assert result.exit_code == 0, result.output
    return folder


def enrich(data_dir: Path, value: str) -> tuple[int, dict[str, object]]:
    result = runner.invoke(
        build_app(),
        ["enrich", value, "--data-dir", str(data_dir)],
        env={"IOCSCOPE_OFFLINE": "true"},
    )
    return result.exit_code, json.loads(result.stdout)


@pytest.mark.parametrize("value", ["8.8.8.8", "1.1.1.1", "google.com"])
def test_listed_benign_is_not_malicious(data_dir: Path, value: str) -> None:
    code, report = enrich(data_dir, value)
    enrichment = report["enrichment"]
    assert isinstance(enrichment, dict)
    assert any(
        r["status"] == "ok" and r["verdict"] == "malicious" for r in enrichment.values()
    )
    assert enrichment["known_benign"]["known_benign"] is True
    assert report["verdict"] != "malicious"
    assert code != 2


def test_malicious_url_on_benign_domain(data_dir: Path) -> None:
    code, report = enrich(data_dir, "https://google.com/evil/payload.exe")
    assert report["verdict"] == "malicious"
    assert code == 2


def test_private_address_skips_network(tmp_path: Path) -> None:
    folder = str(tmp_path / "data")
    listing = runner.invoke(build_app(), ["sources", "--json", "--data-dir", folder])
    network_ip_sources = {
        row["name"]
        for row in json.loads(listing.stdout)
        if row["network"] and "ip" in row["types"]
    }
    result = runner.invoke(build_app(), ["enrich", "10.0.0.5", "--data-dir", folder])
    report = json.loads(result.stdout)
    enrichment = report["enrichment"]
    assert len(network_ip_sources) >= 10
    for name in network_ip_sources:
        assert enrichment[name]["status"] == "skipped", name
        assert enrichment[name]["reason"] == "non-routable", name
    assert report["verdict"] != "malicious"
    assert result.exit_code == 0


def test_sources_show_feed_state(data_dir: Path) -> None:
    listing = runner.invoke(
        build_app(), ["sources", "--json", "--data-dir", str(data_dir)]
    )
    rows = {row["name"]: row for row in json.loads(listing.stdout)}
    assert rows["feodo_tracker"]["status"] == "ready (2 entries)"
    assert rows["urlhaus"]["status"] == "not imported"
