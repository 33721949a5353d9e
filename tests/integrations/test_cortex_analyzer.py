"""The Cortex analyzer, run as a subprocess on job folders built from Cortex samples.

Most tests talk to a loopback emulator of ``POST /v1/ioc/enrich`` that returns
documents built with iocscope's own ``Report`` model. The tests at the end run
against a live ``iocscope serve`` on loopback when the service package is
installed, and are skipped otherwise.
"""

from __future__ import annotations

import copy
import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from iocscope.models import (
    Explanation,
    ObservableInfo,
    ObservableType,
    PolicyInfo,
    Report,
    SourceResult,
    Status,
    Verdict,
)
from tests.integrations.cortex_support import (
    ANALYZER_DIR,
    assert_cortex_failure,
    assert_cortex_success,
    make_job,
    run_job,
    run_stdin,
    taxonomy,
)
from tests.loopback import LoopbackServer, Reply, SeenRequest

API_KEY = "ioc_test_key_cortex"


def build_report(
    value: str,
    observable_type: str,
    *,
    risk_score: int = 82,
    verdict: Verdict = Verdict.MALICIOUS,
    tlp: str = "amber",
) -> dict[str, Any]:
    """A /v1 document as the service returns it, built with the real model."""
    report = Report(
        observable=ObservableInfo(
            type=ObservableType(observable_type)
            if observable_type != "hash"
            else ObservableType.MD5,
            value=value,
            input=value,
            refanged=False,
        ),
        risk_score=risk_score,
        verdict=verdict,
        confidence=0.8,
        sources_queried=3,
        sources_flagged=2,
        sources_failed=0,
        sources_skipped=1,
        enrichment={
            "feed_one": SourceResult(
                status=Status.OK, verdict=Verdict.MALICIOUS, summary="listed"
            ),
            "feed_two": SourceResult(
                status=Status.OK, verdict=Verdict.SUSPICIOUS, summary="seen"
            ),
            "vendor": SourceResult(status=Status.NOT_FOUND),
            "remote": SourceResult.skipped("tlp"),
        },
        tags=["botnet:test"],
        explanation=[
            Explanation(source="feed_one", contribution=60, reason="listed by feed"),
        ],
        policy=PolicyInfo(name="default", version=1, malicious_at=75, suspicious_at=40),
        tlp=tlp,
        request_id="req-test",
        generated_at=datetime(2026, 1, 1, tzinfo=UTC),
        elapsed_ms=5,
    )
    return report.model_dump(mode="json")


class EnrichEmulator:
    """A loopback stand-in for iocscope's ``POST /v1/ioc/enrich``.

    Scripted replies are served first, in order; after them every request with
    the right key gets a Report-shaped document for the requested value.
    """

    def __init__(self, server: LoopbackServer) -> None:
        self.server = server
        self.scripted: list[Reply] = []
        self.verdict = Verdict.MALICIOUS
        self.risk_score = 82
        server.route("POST", "/v1/ioc/enrich", self._reply)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in self.server.requests]

    def _reply(self, request: SeenRequest) -> Reply:
        if self.scripted:
            return self.scripted.pop(0)
        if request.headers.get("x-api-key") != API_KEY:
            return error_reply(401, "unauthorized", "invalid API key")
        body = json.loads(request.body)
        document = build_report(
            body["value"],
            body["type"],
            risk_score=self.risk_score,
            verdict=self.verdict,
        )
        return Reply(status=200, body=json.dumps(document))


def error_reply(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Reply:
    envelope = {
        "error": {
            "type": "error",
            "code": code,
            "message": message,
            "request_id": "req-err",
        }
    }
    return Reply(status=status, body=json.dumps(envelope), headers=headers or {})


@pytest.fixture
def emulator(loopback: LoopbackServer) -> EnrichEmulator:
    return EnrichEmulator(loopback)


@pytest.fixture
def dshield_input(shared_fixtures: Path) -> dict[str, Any]:
    """The realistic Cortex input from the DShield how-to-test sample."""
    path = shared_fixtures / "cortex" / "input" / "dshield-how-to-test.input.json"
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def job_input(base: dict[str, Any], api_url: str, **changes: Any) -> dict[str, Any]:
    """Adapt a Cortex sample input to this analyzer: key, URL and job fields."""
    adapted = copy.deepcopy(base)
    adapted.setdefault("config", {})
    adapted["config"]["api_key"] = API_KEY
    adapted["config"]["api_url"] = api_url
    for name, value in changes.items():
        if name.startswith("config_"):
            adapted["config"][name.removeprefix("config_")] = value
        else:
            adapted[name] = value
    return adapted


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# --- success path against the emulator -------------------------------------


def test_job_folder_success_report(
    tmp_path: Path, emulator: EnrichEmulator, dshield_input: dict[str, Any]
) -> None:
    job = make_job(tmp_path, job_input(dshield_input, emulator.url))

    output, exit_code = run_job(job)

    assert exit_code == 0
    assert_cortex_success(output)
    assert output["full"] == build_report("185.162.131.25", "ip")
    assert output["artifacts"] == []
    assert output["operations"] == [
        {"type": "AddTagToArtifact", "tag": "iocscope:malicious"}
    ]
    assert taxonomy(output, "Verdict") == {
        "level": "malicious",
        "namespace": "iocscope",
        "predicate": "Verdict",
        "value": "malicious",
    }
    assert taxonomy(output, "Score")["value"] == 82
    assert taxonomy(output, "Score")["level"] == "malicious"
    assert taxonomy(output, "Sources")["value"] == "2/3"
    sent = emulator.server.requests[0]
    assert sent.headers["x-api-key"] == API_KEY
    assert emulator.bodies == [{"type": "ip", "value": "185.162.131.25", "tlp": 0}]


@pytest.mark.parametrize(
    ("data_type", "data", "service_type"),
    [
        ("ip", "203.0.113.7", "ip"),
        ("domain", "example.com", "domain"),
        ("fqdn", "mail.example.com", "domain"),
        ("url", "http://example.com/login", "url"),
        ("hash", "44d88612fea8a8f36de82e1278abb02f", "hash"),
        ("mail", "user@example.com", "email"),
    ],
)
def test_data_type_mapping(
    tmp_path: Path,
    emulator: EnrichEmulator,
    dshield_input: dict[str, Any],
    data_type: str,
    data: str,
    service_type: str,
) -> None:
    job = make_job(
        tmp_path,
        job_input(dshield_input, emulator.url, dataType=data_type, data=data),
    )

    output, exit_code = run_job(job)

    assert exit_code == 0
    assert_cortex_success(output)
    assert emulator.bodies == [{"type": service_type, "value": data, "tlp": 0}]


@pytest.mark.parametrize(
    ("verdict", "score", "verdict_level", "score_level"),
    [
        (Verdict.MALICIOUS, 75, "malicious", "malicious"),
        (Verdict.SUSPICIOUS, 40, "suspicious", "suspicious"),
        (Verdict.SUSPICIOUS, 39, "suspicious", "info"),
        (Verdict.CLEAN, 10, "safe", "safe"),
        (Verdict.UNKNOWN, 0, "info", "info"),
    ],
)
def test_taxonomy_levels(
    tmp_path: Path,
    emulator: EnrichEmulator,
    dshield_input: dict[str, Any],
    verdict: Verdict,
    score: int,
    verdict_level: str,
    score_level: str,
) -> None:
    emulator.verdict = verdict
    emulator.risk_score = score
    job = make_job(tmp_path, job_input(dshield_input, emulator.url))

    output, _ = run_job(job)

    assert_cortex_success(output)
    assert taxonomy(output, "Verdict")["level"] == verdict_level
    assert taxonomy(output, "Score")["level"] == score_level
    assert output["operations"][0]["tag"] == f"iocscope:{verdict.value}"


def test_thehive5_red_tlp_forwarded(
    tmp_path: Path, emulator: EnrichEmulator, dshield_input: dict[str, Any]
) -> None:
    # TheHive 5 numbers TLP:RED as 4; with max_tlp 4 the job passes the gate and
    # iocscope receives the number unchanged.
    job = make_job(
        tmp_path, job_input(dshield_input, emulator.url, tlp=4, config_max_tlp=4)
    )

    output, exit_code = run_job(job)

    assert exit_code == 0
    assert_cortex_success(output)
    assert emulator.bodies[0]["tlp"] == 4


def test_minimal_input_no_auto_extract(
    tmp_path: Path, emulator: EnrichEmulator, shared_fixtures: Path
) -> None:
    # Without auto_extract keys cortexutils would regex-extract artifacts from
    # ``full``; the analyzer returns none unless extraction is switched on.
    minimal = json.loads(
        (
            shared_fixtures
            / "cortex"
            / "input"
            / "cortexutils-test-minimal-config.json"
        ).read_text(encoding="utf-8")
    )
    job = make_job(tmp_path, job_input(minimal, emulator.url))

    output, exit_code = run_job(job)

    assert exit_code == 0
    assert_cortex_success(output)
    assert output["artifacts"] == []
    assert emulator.bodies == [{"type": "ip", "value": "1.1.1.1", "tlp": 2}]


def test_auto_extract_artifact_keys(
    tmp_path: Path, emulator: EnrichEmulator, dshield_input: dict[str, Any]
) -> None:
    job = make_job(
        tmp_path,
        job_input(
            dshield_input,
            emulator.url,
            dataType="fqdn",
            data="mail.example.com",
            config_auto_extract_artifacts=True,
        ),
    )

    output, _ = run_job(job)

    assert_cortex_success(output)
    for artifact in output["artifacts"]:
        assert set(artifact) == {"dataType", "data"}


def test_stdin_stdout_mode(
    tmp_path: Path, emulator: EnrichEmulator, dshield_input: dict[str, Any]
) -> None:
    output, exit_code = run_stdin(job_input(dshield_input, emulator.url), tmp_path)

    assert exit_code == 0
    assert_cortex_success(output)
    assert output["full"]["observable"]["value"] == "185.162.131.25"


def test_stdin_mode_failure(tmp_path: Path, dshield_input: dict[str, Any]) -> None:
    api_url = f"http://127.0.0.1:{closed_port()}"
    output, exit_code = run_stdin(job_input(dshield_input, api_url), tmp_path)

    message = assert_cortex_failure(output, exit_code)
    assert api_url in message


# --- failures ---------------------------------------------------------------


def test_service_down_names_url(tmp_path: Path, dshield_input: dict[str, Any]) -> None:
    api_url = f"http://127.0.0.1:{closed_port()}"
    job = make_job(tmp_path, job_input(dshield_input, api_url))

    output, exit_code = run_job(job)

    message = assert_cortex_failure(output, exit_code)
    assert f"Could not connect to iocscope at {api_url}" in message
    assert "iocscope serve" in message
    assert API_KEY not in json.dumps(output)


def test_service_timeout(
    tmp_path: Path, emulator: EnrichEmulator, dshield_input: dict[str, Any]
) -> None:
    emulator.scripted.append(Reply(status=200, body="{}", delay_s=float("inf")))
    job = make_job(
        tmp_path, job_input(dshield_input, emulator.url, config_timeout_s=0.5)
    )

    output, exit_code = run_job(job)

    message = assert_cortex_failure(output, exit_code)
    assert "did not answer within 0.5 s" in message
    assert emulator.url in message


def test_bad_api_key(
    tmp_path: Path, emulator: EnrichEmulator, dshield_input: dict[str, Any]
) -> None:
    job = make_job(tmp_path, job_input(dshield_input, emulator.url))
    job_json = json.loads((job / "input" / "input.json").read_text())
    job_json["config"]["api_key"] = "ioc_wrong"
    (job / "input" / "input.json").write_text(json.dumps(job_json))

    output, exit_code = run_job(job)

    message = assert_cortex_failure(output, exit_code)
    assert "rejected the API key (HTTP 401)" in message
    assert "invalid API key (request_id req-err)" in message
    assert "ioc_wrong" not in json.dumps(output)


def test_missing_api_key(tmp_path: Path, emulator: EnrichEmulator) -> None:
    job = make_job(
        tmp_path,
        {"dataType": "ip", "data": "203.0.113.7", "config": {"api_url": emulator.url}},
    )

    output, exit_code = run_job(job)

    message = assert_cortex_failure(output, exit_code)
    assert message.startswith("Missing api_key")
    assert emulator.server.requests == []


def test_out_of_credits(
    tmp_path: Path, emulator: EnrichEmulator, dshield_input: dict[str, Any]
) -> None:
    emulator.scripted.append(
        error_reply(402, "out_of_credits", "monthly credits used up")
    )
    job = make_job(tmp_path, job_input(dshield_input, emulator.url))

    output, exit_code = run_job(job)

    message = assert_cortex_failure(output, exit_code)
    assert "out of credits (HTTP 402)" in message
    assert "monthly credits used up" in message


def test_invalid_observable_rejected(
    tmp_path: Path, emulator: EnrichEmulator, dshield_input: dict[str, Any]
) -> None:
    emulator.scripted.append(
        error_reply(422, "invalid_observable", "invalid IP address '999.1.1.1'")
    )
    job = make_job(tmp_path, job_input(dshield_input, emulator.url, data="999.1.1.1"))

    output, exit_code = run_job(job)

    message = assert_cortex_failure(output, exit_code)
    assert "rejected the observable (HTTP 422)" in message
    assert "999.1.1.1" in message


def test_rate_limited_then_success(
    tmp_path: Path, emulator: EnrichEmulator, dshield_input: dict[str, Any]
) -> None:
    emulator.scripted.append(
        error_reply(429, "rate_limited", "slow down", {"Retry-After": "1"})
    )
    job = make_job(tmp_path, job_input(dshield_input, emulator.url))

    output, exit_code = run_job(job)

    assert exit_code == 0
    assert_cortex_success(output)
    assert len(emulator.server.requests) == 2


def test_rate_limited_twice_fails(
    tmp_path: Path, emulator: EnrichEmulator, dshield_input: dict[str, Any]
) -> None:
    limited = error_reply(429, "rate_limited", "slow down", {"Retry-After": "1"})
    emulator.scripted.extend([limited, limited, limited])
    job = make_job(tmp_path, job_input(dshield_input, emulator.url))

    output, exit_code = run_job(job)

    message = assert_cortex_failure(output, exit_code)
    assert "still rate limiting" in message
    assert len(emulator.server.requests) == 2


def test_retry_after_beyond_job_timeout(
    tmp_path: Path, emulator: EnrichEmulator, dshield_input: dict[str, Any]
) -> None:
    emulator.scripted.append(
        error_reply(429, "rate_limited", "slow down", {"Retry-After": "3600"})
    )
    # jobTimeout is in minutes: one minute leaves no room for a one-hour wait.
    job = make_job(
        tmp_path, job_input(dshield_input, emulator.url, config_jobTimeout=1)
    )

    output, exit_code = run_job(job, timeout_s=20)

    message = assert_cortex_failure(output, exit_code)
    assert "Retry-After asks for 3600 s" in message
    assert len(emulator.server.requests) == 1


def test_rate_limited_without_retry_after(
    tmp_path: Path, emulator: EnrichEmulator, dshield_input: dict[str, Any]
) -> None:
    emulator.scripted.append(error_reply(429, "rate_limited", "slow down"))
    job = make_job(tmp_path, job_input(dshield_input, emulator.url))

    output, exit_code = run_job(job)

    message = assert_cortex_failure(output, exit_code)
    assert "no usable Retry-After" in message
    assert len(emulator.server.requests) == 1


@pytest.mark.parametrize("data_type", ["filename", "other", "user-agent"])
def test_unsupported_data_type(
    tmp_path: Path,
    emulator: EnrichEmulator,
    dshield_input: dict[str, Any],
    data_type: str,
) -> None:
    job = make_job(
        tmp_path,
        job_input(dshield_input, emulator.url, dataType=data_type, data="evil.exe"),
    )

    output, exit_code = run_job(job)

    message = assert_cortex_failure(output, exit_code)
    assert f"Unsupported data type '{data_type}'" in message
    assert emulator.server.requests == []


def test_file_observable_unsupported(
    tmp_path: Path, emulator: EnrichEmulator, shared_fixtures: Path
) -> None:
    sample = json.loads(
        (
            shared_fixtures
            / "cortex"
            / "input"
            / "file-observable.synthetic-from-cortex-source.input.json"
        ).read_text(encoding="utf-8")
    )
    job = make_job(tmp_path, job_input(sample, emulator.url))
    (job / "input" / "attachment123").write_bytes(b"MZ not really a program")

    output, exit_code = run_job(job)

    message = assert_cortex_failure(output, exit_code)
    assert "Unsupported data type 'file'" in message
    assert emulator.server.requests == []


def test_tlp_above_max_rejected(
    tmp_path: Path, emulator: EnrichEmulator, shared_fixtures: Path
) -> None:
    sample = json.loads(
        (
            shared_fixtures / "cortex" / "input" / "cortexutils-test-tlp-config.json"
        ).read_text(encoding="utf-8")
    )
    job = make_job(tmp_path, job_input(sample, emulator.url, tlp=3))

    output, exit_code = run_job(job)

    message = assert_cortex_failure(output, exit_code)
    assert message.startswith("TLP is higher than allowed")
    assert "TLP 3" in message
    assert "max_tlp is 2" in message
    assert emulator.server.requests == []


def test_pap_above_max_rejected(
    tmp_path: Path, emulator: EnrichEmulator, dshield_input: dict[str, Any]
) -> None:
    job = make_job(tmp_path, job_input(dshield_input, emulator.url, pap=3))

    output, exit_code = run_job(job)

    message = assert_cortex_failure(output, exit_code)
    assert message.startswith("PAP is higher than allowed")
    assert emulator.server.requests == []


def test_secrets_redacted_on_failure(tmp_path: Path, shared_fixtures: Path) -> None:
    sample = json.loads(
        (
            shared_fixtures
            / "cortex"
            / "input"
            / "cortexutils-test-error-response.json"
        ).read_text(encoding="utf-8")
    )
    job = make_job(tmp_path, job_input(sample, f"http://127.0.0.1:{closed_port()}"))

    output, exit_code = run_job(job)

    assert_cortex_failure(output, exit_code)
    config = output["input"]["config"]
    for name in ("password", "key", "apikey", "api_key", "apiSecret"):
        assert config[name] == "REMOVED", name


def test_non_json_response(
    tmp_path: Path, emulator: EnrichEmulator, dshield_input: dict[str, Any]
) -> None:
    emulator.scripted.append(
        Reply(status=200, body="<html>proxy login</html>", content_type="text/html")
    )
    job = make_job(tmp_path, job_input(dshield_input, emulator.url))

    output, exit_code = run_job(job)

    message = assert_cortex_failure(output, exit_code)
    assert "returned invalid JSON" in message


# --- descriptor -------------------------------------------------------------


def test_descriptor_fields() -> None:
    descriptor = json.loads(
        (ANALYZER_DIR / "iocscope_enrich.json").read_text(encoding="utf-8")
    )
    for field in (
        "name",
        "version",
        "author",
        "url",
        "license",
        "description",
        "dataTypeList",
        "command",
        "baseConfig",
    ):
        assert descriptor.get(field), field
    assert " " not in descriptor["name"]

    assert descriptor["dataTypeList"] == ["ip", "domain", "fqdn", "url", "hash", "mail"]
    command = ANALYZER_DIR.parent / descriptor["command"]
    assert command.is_file()
    assert command.stat().st_mode & 0o111
    assert command.read_text(encoding="utf-8").startswith("#!")

    items = {item["name"]: item for item in descriptor["configurationItems"]}
    assert items["api_key"]["type"] == "string"
    assert items["api_key"]["required"] is True
    assert items["api_url"]["defaultValue"] == "http://127.0.0.1:8000"
    assert items["timeout_s"]["type"] == "number"
    for item in items.values():
        assert set(item) >= {"name", "description", "type", "multi", "required"}
    for gate in ("check_tlp", "max_tlp", "check_pap", "max_pap"):
        assert gate in descriptor["config"], gate


# --- live iocscope service ---------------------------------------------------

LIVE_SOURCE_MODULE = '''
"""A TLP:AMBER external source for the Cortex live tests (written by the test)."""

import os

import httpx

from iocscope.models import ALL_TYPES, Observable, SourceResult, Status, Verdict
from iocscope.sources.base import SourceSpec
from iocscope.tlp import TLP


class AmberExternal:
    spec = SourceSpec(
        name="cortex_test_external",
        types=ALL_TYPES,
        description="Loopback vendor cleared up to TLP:AMBER.",
        network=True,
        max_tlp=TLP.AMBER,
        timeout_s=2.0,
    )

    async def lookup(self, observable: Observable) -> SourceResult:
        url = os.environ["CORTEX_TEST_EXTERNAL_URL"]
        async with httpx.AsyncClient() as client:
            await client.get(f"{url}/lookup/{observable.value}", timeout=2.0)
        return SourceResult(status=Status.OK, verdict=Verdict.CLEAN)


def load(context):
    return [AmberExternal()]
'''


@pytest.fixture
def live_service(tmp_path: Path, loopback: LoopbackServer) -> Iterator[dict[str, Any]]:
    """Start ``iocscope serve`` on a free loopback port with a fresh data dir.

    A plugin source capped at TLP:AMBER is registered through the entry-point
    group; it calls the ``loopback`` server, so tests can count its requests.
    """
    from tests.integrations.live_service import start_live_service

    with start_live_service(
        tmp_path, LIVE_SOURCE_MODULE, external_url=loopback.url
    ) as service:
        service["external"] = loopback
        yield service


def test_live_success(
    tmp_path: Path, live_service: dict[str, Any], dshield_input: dict[str, Any]
) -> None:
    job = make_job(
        tmp_path / "job",
        job_input(
            dshield_input,
            live_service["url"],
            data="203.0.113.7",
            config_api_key=live_service["api_key"],
        ),
    )

    output, exit_code = run_job(job)

    assert exit_code == 0
    assert_cortex_success(output)
    full = output["full"]
    for field in (
        "risk_score",
        "verdict",
        "sources_queried",
        "sources_flagged",
        "enrichment",
        "tags",
    ):
        assert field in full, field
    assert full["observable"]["type"] == "ip"
    assert taxonomy(output, "Score")["value"] == full["risk_score"]


def test_live_fqdn_domain_family(
    tmp_path: Path, live_service: dict[str, Any], dshield_input: dict[str, Any]
) -> None:
    # A Cortex fqdn must reach exactly the sources a domain reaches, with the
    # same outcome per source.
    outputs = {}
    for data_type in ("fqdn", "domain"):
        job = make_job(
            tmp_path / data_type,
            job_input(
                dshield_input,
                live_service["url"],
                dataType=data_type,
                data="mail.example.com",
                config_api_key=live_service["api_key"],
            ),
        )
        output, exit_code = run_job(job)
        assert exit_code == 0, output.get("errorMessage")
        assert_cortex_success(output)
        outputs[data_type] = output["full"]

    full = outputs["fqdn"]
    assert full["observable"]["type"] == "domain"
    assert full["observable"]["value"] == "mail.example.com"
    assert full["observable"]["registered_domain"] == "example.com"
    assert full["enrichment"]["cortex_test_external"]["status"] == "ok"
    # Built-in network sources are disabled for these tests: listed, never asked.
    assert full["enrichment"]["dns"]["status"] == "skipped"
    assert full["enrichment"]["dns"]["reason"] == "disabled"
    outcome = {
        name: (result["status"], result.get("reason"))
        for name, result in full["enrichment"].items()
    }
    domain_outcome = {
        name: (result["status"], result.get("reason"))
        for name, result in outputs["domain"]["enrichment"].items()
    }
    assert outcome == domain_outcome


def test_live_amber_source_not_sent_tlp3(
    tmp_path: Path, live_service: dict[str, Any], dshield_input: dict[str, Any]
) -> None:
    # Cortex numbers 3 as red; iocscope reads 3 as red too, so a source cleared
    # up to amber must be skipped and never contacted.
    job = make_job(
        tmp_path / "job",
        job_input(
            dshield_input,
            live_service["url"],
            data="203.0.113.9",
            tlp=3,
            config_max_tlp=3,
            config_api_key=live_service["api_key"],
        ),
    )

    output, exit_code = run_job(job)

    assert exit_code == 0
    assert_cortex_success(output)
    result = output["full"]["enrichment"]["cortex_test_external"]
    assert result["status"] == "skipped"
    assert result["reason"] == "tlp"
    assert live_service["external"].requests == []


def test_live_amber_source_used_tlp2(
    tmp_path: Path, live_service: dict[str, Any], dshield_input: dict[str, Any]
) -> None:
    # The control case for the test above: at TLP 2 the same source is called.
    # The address must be globally routable, or network sources are skipped.
    job = make_job(
        tmp_path / "job",
        job_input(
            dshield_input,
            live_service["url"],
            data="185.162.131.25",
            tlp=2,
            config_api_key=live_service["api_key"],
        ),
    )

    output, exit_code = run_job(job)

    assert exit_code == 0
    assert_cortex_success(output)
    result = output["full"]["enrichment"]["cortex_test_external"]
    assert result["status"] == "ok", result.get("reason")
    assert len(live_service["external"].requests) == 1


def test_live_bad_key(
    tmp_path: Path, live_service: dict[str, Any], dshield_input: dict[str, Any]
) -> None:
    job = make_job(
        tmp_path / "job",
        job_input(dshield_input, live_service["url"], config_api_key="ioc_wrong"),
    )

    output, exit_code = run_job(job)

    message = assert_cortex_failure(output, exit_code)
    assert "HTTP 401" in message
