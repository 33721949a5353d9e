"""The TheHive sync against a loopback TheHive 5 emulator checked with the OpenAPI spec.

Most tests use a recording enricher, so they can assert what was (and was not)
sent for enrichment. One test runs the real engine in process, and one runs the
``iocscope thehive`` command as a subprocess against a loopback iocscope emulator.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from iocscope.config import Settings
from iocscope.integrations.enrichers import EngineEnricher, EnrichmentUnavailable
from iocscope.integrations.thehive import (
    COMMENT_MARKER,
    CommentAction,
    Outcome,
    TheHiveConnection,
    TheHiveSync,
    connect,
    observable_tlp,
    render_comment,
    tag_changes,
)
from iocscope.models import Report, Verdict
from iocscope.runtime import open_engine
from iocscope.tlp import TLP
from tests.integrations.cortex_support import analyzer_env
from tests.integrations.live_service import collect_network_sources
from tests.integrations.test_cortex_analyzer import (
    API_KEY as IOCSCOPE_KEY,
)
from tests.integrations.test_cortex_analyzer import (
    EnrichEmulator,
    build_report,
)
from tests.integrations.thehive_emulator import TheHiveEmulator
from tests.loopback import LoopbackServer

THEHIVE_KEY = "thehive-test-key-0123456789"
REPO_ROOT = Path(__file__).resolve().parents[2]


class RecordingEnricher:
    """Returns a fixed verdict per value and records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, TLP]] = []
        self.scores: dict[str, tuple[Verdict, int]] = {}
        self.unavailable = False

    async def enrich(self, value: str, type_hint: str, tlp: TLP) -> Report:
        self.calls.append((value, type_hint, tlp))
        if self.unavailable:
            raise EnrichmentUnavailable("iocscope is down")
        verdict, score = self.scores.get(value, (Verdict.MALICIOUS, 82))
        document = build_report(
            value,
            type_hint if type_hint != "domain" else "domain",
            risk_score=score,
            verdict=verdict,
            tlp=tlp.label,
        )
        return Report.model_validate(document)


@pytest.fixture
def thehive(shared_fixtures: Path) -> Iterator[TheHiveEmulator]:
    spec = shared_fixtures / "thehive" / "openapi-v5.7.3-subset.json"
    emulator = TheHiveEmulator(spec, THEHIVE_KEY).start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def enricher() -> RecordingEnricher:
    return RecordingEnricher()


def make_sync(
    thehive: TheHiveEmulator, enricher: Any, max_tlp: TLP = TLP.AMBER
) -> TheHiveSync:
    api = connect(
        TheHiveConnection(
            url=thehive.url,
            api_key=THEHIVE_KEY,
            organisation="SOC",
            timeout_s=5.0,
        )
    )
    return TheHiveSync(api, enricher, max_tlp=max_tlp)


def tags_of(thehive: TheHiveEmulator, observable_id: str) -> list[str]:
    tags: list[str] = thehive.observables[observable_id]["tags"]
    return tags


# --- enrich-case ------------------------------------------------------------


async def test_enrich_case_tags_and_comment(
    thehive: TheHiveEmulator, enricher: RecordingEnricher
) -> None:
    case_id = thehive.add_case()
    ip_id = thehive.add_observable(("case", case_id), "ip", "203.0.113.7")
    fqdn_id = thehive.add_observable(("case", case_id), "fqdn", "mail.example.com")
    mail_id = thehive.add_observable(("case", case_id), "mail", "user@example.com")
    sync = make_sync(thehive, enricher)

    result = await sync.enrich_case(case_id)

    assert thehive.violations == []
    assert result.comment is CommentAction.CREATED
    assert [r.outcome for r in result.observables] == [Outcome.ENRICHED] * 3
    assert enricher.calls == [
        ("203.0.113.7", "ip", TLP.AMBER),
        ("mail.example.com", "domain", TLP.AMBER),
        ("user@example.com", "email", TLP.AMBER),
    ]
    for observable_id in (ip_id, fqdn_id, mail_id):
        assert tags_of(thehive, observable_id) == [
            "iocscope:malicious",
            "iocscope:score=82",
        ]
    comments = thehive.case_comments(case_id)
    assert len(comments) == 1
    message = comments[0]["message"]
    assert COMMENT_MARKER in message
    assert "| `203.0.113.7` | ip | malicious | 82 | 2/3 |" in message
    assert "feed_one: listed by feed (+60)" in message
    sent_headers = thehive.headers[0]
    assert sent_headers["X-Organisation"] == "SOC"
    assert sent_headers["Authorization"] == f"Bearer {THEHIVE_KEY}"


async def test_enrich_case_twice_idempotent(
    thehive: TheHiveEmulator, enricher: RecordingEnricher
) -> None:
    case_id = thehive.add_case()
    ip_id = thehive.add_observable(("case", case_id), "ip", "203.0.113.7")
    sync = make_sync(thehive, enricher)
    await sync.enrich_case(case_id)
    writes_after_first = [
        r for r in thehive.requests if r[0] != "POST" or r[1] != "/api/v1/query"
    ]

    second = await sync.enrich_case(case_id)

    assert thehive.violations == []
    assert second.comment is CommentAction.UNCHANGED
    assert len(thehive.case_comments(case_id)) == 1
    assert tags_of(thehive, ip_id) == ["iocscope:malicious", "iocscope:score=82"]
    writes_after_second = [
        r for r in thehive.requests if r[0] != "POST" or r[1] != "/api/v1/query"
    ]
    assert writes_after_second == writes_after_first


async def test_changed_score_replaces_tag(
    thehive: TheHiveEmulator, enricher: RecordingEnricher
) -> None:
    case_id = thehive.add_case()
    ip_id = thehive.add_observable(
        ("case", case_id), "ip", "203.0.113.7", tags=["phishing", "iocscope:score=12"]
    )
    sync = make_sync(thehive, enricher)
    await sync.enrich_case(case_id)
    first_comment = thehive.case_comments(case_id)[0]["message"]
    enricher.scores["203.0.113.7"] = (Verdict.SUSPICIOUS, 55)

    result = await sync.enrich_case(case_id)

    assert thehive.violations == []
    assert tags_of(thehive, ip_id) == [
        "phishing",
        "iocscope:suspicious",
        "iocscope:score=55",
    ]
    assert result.comment is CommentAction.UPDATED
    comments = thehive.case_comments(case_id)
    assert len(comments) == 1
    assert comments[0]["message"] != first_comment
    assert "| suspicious | 55 |" in comments[0]["message"]


async def test_tlp_above_max_not_enriched(
    thehive: TheHiveEmulator, enricher: RecordingEnricher
) -> None:
    case_id = thehive.add_case()
    red_id = thehive.add_observable(("case", case_id), "ip", "203.0.113.66", tlp=4)
    strict_id = thehive.add_observable(
        ("case", case_id), "domain", "secret.example", tlp=3
    )
    amber_id = thehive.add_observable(("case", case_id), "ip", "203.0.113.7", tlp=2)
    sync = make_sync(thehive, enricher)

    result = await sync.enrich_case(case_id)

    assert thehive.violations == []
    assert [call[0] for call in enricher.calls] == ["203.0.113.7"]
    assert tags_of(thehive, red_id) == []
    assert tags_of(thehive, strict_id) == []
    assert tags_of(thehive, amber_id) == ["iocscope:malicious", "iocscope:score=82"]
    skipped = {
        r.data: r.reason for r in result.observables if r.outcome is Outcome.SKIPPED
    }
    assert skipped == {
        "203.0.113.66": "TLP:RED is above the configured maximum TLP:AMBER",
        "secret.example": "TLP:AMBER+STRICT is above the configured maximum TLP:AMBER",
    }
    message = thehive.case_comments(case_id)[0]["message"]
    assert "not enriched" in message


async def test_unsupported_types_skipped(
    thehive: TheHiveEmulator, enricher: RecordingEnricher
) -> None:
    case_id = thehive.add_case()
    thehive.add_observable(("case", case_id), "filename", "invoice.pdf.exe")
    thehive.add_observable(("case", case_id), "other", "some note")
    sync = make_sync(thehive, enricher)

    result = await sync.enrich_case(case_id)

    assert thehive.violations == []
    assert enricher.calls == []
    assert [r.outcome for r in result.observables] == [Outcome.SKIPPED] * 2


async def test_case_without_observables_no_comment(
    thehive: TheHiveEmulator, enricher: RecordingEnricher
) -> None:
    case_id = thehive.add_case()
    sync = make_sync(thehive, enricher)

    result = await sync.enrich_case(case_id)

    assert result.comment is CommentAction.NONE
    assert thehive.case_comments(case_id) == []


async def test_wrong_thehive_key_fails(
    thehive: TheHiveEmulator, enricher: RecordingEnricher
) -> None:
    from iocscope.integrations.thehive import TheHiveUnavailable

    case_id = thehive.add_case()
    api = connect(TheHiveConnection(url=thehive.url, api_key="wrong", timeout_s=5))
    sync = TheHiveSync(api, enricher)

    with pytest.raises(TheHiveUnavailable, match="AuthenticationError"):
        await sync.enrich_case(case_id)


async def test_enrich_case_real_engine(
    thehive: TheHiveEmulator, tmp_path: Path
) -> None:
    # The in-process engine with the local built-in sources of an empty data
    # dir; the network sources are disabled so nothing leaves the machine.
    case_id = thehive.add_case()
    ip_id = thehive.add_observable(("case", case_id), "ip", "185.162.131.25")
    settings = Settings(
        data_dir=tmp_path, disabled_sources=await collect_network_sources(tmp_path)
    )
    async with open_engine(settings) as engine:
        sync = make_sync(thehive, EngineEnricher(engine))
        result = await sync.enrich_case(case_id)

    assert thehive.violations == []
    report = result.observables[0].report
    assert report is not None
    tags = tags_of(thehive, ip_id)
    assert f"iocscope:{report.verdict.value}" in tags
    assert f"iocscope:score={report.risk_score}" in tags
    assert len(thehive.case_comments(case_id)) == 1
    assert "address_scope" in report.enrichment
    assert report.enrichment["dns"].reason == "disabled"


# --- watch ------------------------------------------------------------------


async def test_watch_picks_up_new_once(
    thehive: TheHiveEmulator, enricher: RecordingEnricher, tmp_path: Path
) -> None:
    case_id = thehive.add_case()
    alert_id = thehive.add_alert()
    thehive.add_observable(("case", case_id), "ip", "203.0.113.1")
    state_file = tmp_path / "watch.json"
    sync = make_sync(thehive, enricher)

    first = await sync.poll_new_observables(state_file)
    new_id = thehive.add_observable(("case", case_id), "domain", "evil.example")
    alert_obs_id = thehive.add_observable(("alert", alert_id), "ip", "203.0.113.2")
    second = await sync.poll_new_observables(state_file)
    third = await sync.poll_new_observables(state_file)

    assert thehive.violations == []
    assert first == []
    assert [r.observable_id for r in second] == [new_id, alert_obs_id]
    assert third == []
    assert [call[0] for call in enricher.calls] == ["evil.example", "203.0.113.2"]
    assert tags_of(thehive, new_id) == ["iocscope:malicious", "iocscope:score=82"]
    assert tags_of(thehive, alert_obs_id) == [
        "iocscope:malicious",
        "iocscope:score=82",
    ]


async def test_watch_state_survives_restart(
    thehive: TheHiveEmulator, enricher: RecordingEnricher, tmp_path: Path
) -> None:
    case_id = thehive.add_case()
    state_file = tmp_path / "watch.json"
    await make_sync(thehive, enricher).poll_new_observables(state_file)
    thehive.add_observable(("case", case_id), "ip", "203.0.113.3")

    # A new sync object (a restarted process) resumes from the state file.
    results = await make_sync(thehive, enricher).poll_new_observables(state_file)
    again = await make_sync(thehive, enricher).poll_new_observables(state_file)

    assert [r.data for r in results] == ["203.0.113.3"]
    assert again == []
    saved = json.loads(state_file.read_text())
    assert (
        saved["since_ms"] == thehive.observables[results[0].observable_id]["_createdAt"]
    )


async def test_watch_retries_after_outage(
    thehive: TheHiveEmulator, enricher: RecordingEnricher, tmp_path: Path
) -> None:
    case_id = thehive.add_case()
    state_file = tmp_path / "watch.json"
    sync = make_sync(thehive, enricher)
    await sync.poll_new_observables(state_file)
    observable_id = thehive.add_observable(("case", case_id), "ip", "203.0.113.4")
    enricher.unavailable = True

    with pytest.raises(EnrichmentUnavailable):
        await sync.poll_new_observables(state_file)
    enricher.unavailable = False
    results = await sync.poll_new_observables(state_file)

    assert [r.observable_id for r in results] == [observable_id]
    assert tags_of(thehive, observable_id) == [
        "iocscope:malicious",
        "iocscope:score=82",
    ]


async def test_watch_skips_tlp_above_max(
    thehive: TheHiveEmulator, enricher: RecordingEnricher, tmp_path: Path
) -> None:
    case_id = thehive.add_case()
    state_file = tmp_path / "watch.json"
    sync = make_sync(thehive, enricher, max_tlp=TLP.GREEN)
    await sync.poll_new_observables(state_file)
    thehive.add_observable(("case", case_id), "ip", "203.0.113.5", tlp=2)

    results = await sync.poll_new_observables(state_file)

    assert [r.outcome for r in results] == [Outcome.SKIPPED]
    assert enricher.calls == []


# --- pure helpers -----------------------------------------------------------


def test_observable_tlp_prefers_label() -> None:
    assert observable_tlp({"tlp": 3, "tlpLabel": "AMBER+STRICT"}) is TLP.AMBER_STRICT
    assert observable_tlp({"tlp": 3}) is TLP.RED
    assert observable_tlp({"tlp": 4, "tlpLabel": "RED"}) is TLP.RED
    assert observable_tlp({"tlp": 0, "tlpLabel": "CLEAR"}) is TLP.CLEAR


def test_tag_changes_keeps_other_tags() -> None:
    report = Report.model_validate(
        build_report("203.0.113.7", "ip", risk_score=40, verdict=Verdict.SUSPICIOUS)
    )
    current = ["iocscope:malicious", "iocscope:score=90", "iocscope:custom", "x"]

    added, removed = tag_changes(current, report)

    assert added == ["iocscope:suspicious", "iocscope:score=40"]
    assert removed == ["iocscope:malicious", "iocscope:score=90"]


def test_comment_escapes_table_cells() -> None:
    from iocscope.integrations.thehive import ObservableResult

    result = ObservableResult(
        observable_id="~1",
        data_type="url",
        data="http://evil.example/a|b`c",
        outcome=Outcome.SKIPPED,
        reason="reason with | pipe\nand newline",
    )

    message = render_comment([result])

    row = message.splitlines()[4]
    assert row.count(" | ") == 5
    assert "a\\|bc" in row
    assert "\n" not in row


# --- command line -----------------------------------------------------------


def run_cli(*args: str, env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # Offline: the in-process network guard does not reach a child process.
    env = analyzer_env() | {"IOCSCOPE_OFFLINE": "true"} | env_extra
    return subprocess.run(
        [str(Path(sys.executable).parent / "iocscope"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO_ROOT,
    )


def test_cli_enrich_case_via_service(
    thehive: TheHiveEmulator, loopback: LoopbackServer, tmp_path: Path
) -> None:
    iocscope = EnrichEmulator(loopback)
    case_id = thehive.add_case()
    ip_id = thehive.add_observable(("case", case_id), "ip", "203.0.113.7")
    env = {
        "IOCSCOPE_THEHIVE_API_KEY": THEHIVE_KEY,
        "IOCSCOPE_THEHIVE_IOCSCOPE_API_KEY": IOCSCOPE_KEY,
    }
    args = (
        "thehive",
        "enrich-case",
        case_id,
        "--url",
        thehive.url,
        "--iocscope-url",
        iocscope.url,
        "--data-dir",
        str(tmp_path),
    )

    first = run_cli(*args, env_extra=env)
    second = run_cli(*args, env_extra=env)

    assert first.returncode == 0, first.stderr
    assert "comment created" in first.stdout
    assert second.returncode == 0, second.stderr
    assert "comment unchanged" in second.stdout
    assert thehive.violations == []
    assert len(thehive.case_comments(case_id)) == 1
    assert tags_of(thehive, ip_id) == ["iocscope:malicious", "iocscope:score=82"]
    assert json.loads(loopback.requests[0].body) == {
        "type": "ip",
        "value": "203.0.113.7",
        "tlp": "amber",
    }
    assert THEHIVE_KEY not in first.stdout + first.stderr


def test_cli_insecure_warns(thehive: TheHiveEmulator, tmp_path: Path) -> None:
    case_id = thehive.add_case()
    completed = run_cli(
        "thehive",
        "enrich-case",
        case_id,
        "--url",
        thehive.url,
        "--insecure",
        "--data-dir",
        str(tmp_path),
        env_extra={"IOCSCOPE_THEHIVE_API_KEY": THEHIVE_KEY},
    )

    assert completed.returncode == 0, completed.stderr
    assert "warning: --insecure turns off TLS certificate verification" in (
        completed.stderr
    )


def test_cli_missing_url(tmp_path: Path) -> None:
    completed = run_cli(
        "thehive",
        "enrich-case",
        "~1",
        "--data-dir",
        str(tmp_path),
        env_extra={"IOCSCOPE_THEHIVE_API_KEY": THEHIVE_KEY},
    )

    assert completed.returncode == 1
    assert "missing TheHive URL" in completed.stderr
