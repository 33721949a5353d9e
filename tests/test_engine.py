"""Engine: policy gates, TLP, non-routable addresses, failures and deadlines.

Every source here is loaded through the ``iocscope.sources`` entry-point group,
the same way built-in and third-party sources are.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog.testing

from iocscope.config import Settings
from iocscope.errors import InvalidTLP
from iocscope.models import Status, Verdict
from iocscope.runtime import open_engine
from iocscope.tlp import parse_tlp
from tests import sources_for_tests as plugin
from tests.loopback import LoopbackServer, Reply
from tests.plugins import registered_sources

ENTRY_POINTS = {
    "test_local": "tests.sources_for_tests:load_local",
    "test_external": "tests.sources_for_tests:load_external",
    "test_faulty": "tests.sources_for_tests:load_faulty",
    "test_crashing": "tests.sources_for_tests:load_crashing_loader",
    "test_scoring": "tests.sources_for_tests:load_scoring",
}
LOCAL_AND_EXTERNAL = ["test_local_list", "test_external"]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture(autouse=True)
def plugin_sources(tmp_path: Path, loopback: LoopbackServer) -> Iterator[None]:
    plugin.LOCAL_LISTING.clear()
    plugin.EXTERNAL_URL[:] = [loopback.url]
    loopback.route(
        "GET", "/lookup/evil.example", Reply(body='{"verdict": "malicious"}')
    )
    with registered_sources(tmp_path / "plugin", ENTRY_POINTS):
        yield


async def test_tlp_red_skips_external(
    settings: Settings, loopback: LoopbackServer
) -> None:
    plugin.LOCAL_LISTING["evil.example"] = (Verdict.SUSPICIOUS, "listed locally")
    async with open_engine(settings, only=LOCAL_AND_EXTERNAL) as engine:
        report = await engine.enrich("evil.example", tlp="red")
    assert report.enrichment["test_external"].status is Status.SKIPPED
    assert report.enrichment["test_external"].reason == "tlp"
    assert report.enrichment["test_local_list"].status is Status.OK
    assert loopback.requests == []
    assert report.tlp == "red"


@pytest.mark.parametrize("label", ["red", 3, "3", "amber+strict", "TLP:RED", 4])
async def test_tlp_above_amber_never_sent(
    settings: Settings, loopback: LoopbackServer, label: object
) -> None:
    async with open_engine(settings, only=LOCAL_AND_EXTERNAL) as engine:
        report = await engine.enrich("evil.example", tlp=label)
    assert report.enrichment["test_external"].reason == "tlp"
    assert loopback.requests == []


async def test_tlp_amber_reaches_external(
    settings: Settings, loopback: LoopbackServer
) -> None:
    async with open_engine(settings, only=LOCAL_AND_EXTERNAL) as engine:
        report = await engine.enrich("evil.example", tlp="amber")
    assert report.enrichment["test_external"].status is Status.OK
    assert len(loopback.requests) == 1


async def test_unknown_tlp_rejected(settings: Settings) -> None:
    async with open_engine(settings, only=LOCAL_AND_EXTERNAL) as engine:
        with pytest.raises(InvalidTLP) as caught:
            await engine.enrich("evil.example", tlp="purple")
    assert caught.value.field == "tlp"
    assert "purple" in caught.value.message


async def test_missing_tlp_uses_default(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", default_tlp="green")
    async with open_engine(settings, only=LOCAL_AND_EXTERNAL) as engine:
        report = await engine.enrich("evil.example")
    assert report.tlp == "green"


NON_ROUTABLE = [
    ("10.0.0.5", "private"),
    ("192.168.1.20", "private"),
    ("172.16.4.4", "private"),
    ("100.64.0.1", "shared"),
    ("169.254.169.254", "link-local"),
    ("127.0.0.1", "loopback"),
    ("fd00::1", "private"),
    ("0.0.0.0", None),
    ("192.0.2.10", "documentation"),
]


@pytest.mark.parametrize(("address", "scope"), NON_ROUTABLE)
async def test_non_routable_makes_no_call(
    settings: Settings, loopback: LoopbackServer, address: str, scope: str | None
) -> None:
    plugin.LOCAL_LISTING[address] = (Verdict.MALICIOUS, "listed as malicious")
    async with open_engine(settings, only=LOCAL_AND_EXTERNAL) as engine:
        report = await engine.enrich(address)
    assert loopback.requests == []
    assert report.enrichment["test_external"].reason == "non-routable"
    assert report.verdict is not Verdict.MALICIOUS
    assert report.observable.scope != "global"
    if scope is not None:
        assert report.observable.scope == scope
    assert any("non-routable" in line.reason for line in report.explanation)


async def test_failing_source_never_fails_lookup(settings: Settings) -> None:
    only = ["test_local_list", "test_broken", "test_slow"]
    plugin.LOCAL_LISTING["evil.example"] = (Verdict.MALICIOUS, "listed")
    async with open_engine(settings, only=only) as engine:
        report = await engine.enrich("evil.example")
    broken = report.enrichment["test_broken"]
    slow = report.enrichment["test_slow"]
    assert broken.status is Status.ERROR
    assert broken.reason == "internal error in source: ZeroDivisionError"
    assert slow.status is Status.TIMEOUT
    assert "limit 0.3 s" in (slow.reason or "")
    assert report.verdict is Verdict.MALICIOUS
    assert report.sources_failed == 2


async def test_overall_deadline_reports_timeout(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        overall_timeout_s=0.2,
        source_timeouts={"test_slow": 10},
    )
    async with open_engine(settings, only=["test_slow"]) as engine:
        report = await engine.enrich("evil.example")
    assert report.enrichment["test_slow"].status is Status.TIMEOUT
    assert report.verdict is Verdict.UNKNOWN


async def test_crashing_loader_leaves_others(settings: Settings) -> None:
    async with open_engine(settings, only=LOCAL_AND_EXTERNAL) as engine:
        names = set(engine.specs())
    assert names == set(LOCAL_AND_EXTERNAL)


async def test_unsupported_type_is_skipped(settings: Settings) -> None:
    async with open_engine(settings, only=["test_engines"]) as engine:
        report = await engine.enrich("44d88612fea8a8f36de82e1278abb02f")
    assert report.enrichment["test_engines"].status is Status.SKIPPED
    assert report.enrichment["test_engines"].reason == "unsupported type"
    assert report.verdict is Verdict.UNKNOWN


async def test_report_counts_statuses(
    settings: Settings, loopback: LoopbackServer
) -> None:
    plugin.LOCAL_LISTING["evil.example"] = (Verdict.MALICIOUS, "listed")
    async with open_engine(settings, only=LOCAL_AND_EXTERNAL) as engine:
        report = await engine.enrich("evil.example", tlp="amber")
    assert report.sources_queried == 2
    assert report.sources_flagged == 2
    assert report.sources_skipped == 0
    assert report.sources_failed == 0


async def test_defanged_input_shares_result(settings: Settings) -> None:
    plugin.LOCAL_LISTING["evil.example"] = (Verdict.MALICIOUS, "listed")
    async with open_engine(settings, only=["test_local_list"]) as engine:
        clean = await engine.enrich("evil.example")
        defanged = await engine.enrich("evil[.]example")
    assert defanged.observable.value == clean.observable.value
    assert defanged.observable.refanged is True
    assert defanged.observable.input == "evil[.]example"
    assert defanged.verdict is Verdict.MALICIOUS


async def test_report_is_valid_json(settings: Settings) -> None:
    async with open_engine(settings, only=["test_local_list"]) as engine:
        report = await engine.enrich("evil.example")
    document = json.loads(report.model_dump_json())
    for field in (
        "risk_score",
        "verdict",
        "sources_queried",
        "sources_flagged",
        "enrichment",
        "tags",
    ):
        assert field in document


@pytest.mark.parametrize("label", ["¹", "٣", "tlp:", " ", "5", -1, True, 2.0])
def test_odd_tlp_values_rejected(label: object) -> None:
    with pytest.raises(InvalidTLP):
        parse_tlp(label)


async def test_offline_skips_network_sources(
    tmp_path: Path, loopback: LoopbackServer
) -> None:
    settings = Settings(data_dir=tmp_path / "data", offline=True)
    async with open_engine(settings, only=LOCAL_AND_EXTERNAL) as engine:
        report = await engine.enrich("evil.example", tlp="clear")
    assert report.enrichment["test_external"].reason == "offline"
    assert report.enrichment["test_local_list"].status is Status.NOT_FOUND
    assert loopback.requests == []


async def test_disabled_source_reported_skipped(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", disabled_sources=["test_external"])
    async with open_engine(settings, only=LOCAL_AND_EXTERNAL) as engine:
        report = await engine.enrich("evil.example", tlp="clear")
    assert report.enrichment["test_external"].status is Status.SKIPPED
    assert report.enrichment["test_external"].reason == "disabled"


async def test_unknown_source_setting_warned(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", weights={"no_such_source": 0.5})
    with structlog.testing.capture_logs() as logs:
        async with open_engine(settings, only=LOCAL_AND_EXTERNAL):
            pass
    warnings = [e for e in logs if e["event"] == "settings.unknown_source"]
    assert warnings[0]["source"] == "no_such_source"
    assert warnings[0]["setting"] == "weights"
