"""Upstream faults seen in other enrichment tools, checked end to end here.

test_engine_upstream.py and tests/vendors/ cover each adapter's quota, error
and timeout responses. This file adds checks that span every adapter or the
whole service:

* not-found responses never read as clean;
* text that cannot travel in UTF-8 is replaced in reports and CLI output;
* every HTTP request carries explicit connect and read timeouts;
* non-routable addresses cause no outbound traffic at all;
* no source escapes the TLP gate, and bad bulk items fail alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from iocscope.config import Settings
from iocscope.engine import Engine
from iocscope.errors import SourceFailure
from iocscope.feeds.importer import FeedFile, import_files
from iocscope.feeds.store import FeedStore
from iocscope.governor import UpstreamGovernor
from iocscope.models import (
    ALL_TYPES,
    Observable,
    ObservableType,
    SourceResult,
    Status,
    Verdict,
)
from iocscope.runtime import open_engine
from iocscope.sources.base import Source, SourceContext, SourceSpec, load_sources
from iocscope.sources.http import fetch
from iocscope.sources.vendors.circl_hashlookup import CirclHashlookup
from iocscope.sources.vendors.malwarebazaar_api import MalwarebazaarApi
from iocscope.sources.vendors.threatfox_api import ThreatfoxApi
from iocscope.sources.vendors.urlhaus_api import UrlhausApi
from iocscope.sources.vendors.virustotal import VirusTotalSource
from iocscope.tlp import TLP
from tests import sources_for_tests as plugin
from tests.api.service import RunningService, build_settings, run_server
from tests.integrations.live_service import collect_network_sources
from tests.loopback import LoopbackServer, Reply
from tests.plugins import registered_sources
from tests.vendors.dnsctx_server import LoopbackDns

T = ObservableType

# A sha256 that none of the recorded vendor responses lists.
UNKNOWN_SHA256 = "331a1d23e1e83ae87fb88f2f10e7fe9cfc0020ef4adc3c17ba91bd8bb4929fe2"
BAD_MD5 = "d41d8cd98f00b204e9800998ecf8427z"
NON_ROUTABLE = [
    "10.0.0.5",
    "192.168.1.20",
    "172.16.4.4",
    "100.64.0.1",
    "169.254.169.254",
    "127.0.0.1",
    "fd00::1",
    "0.0.0.0",
    "192.0.2.10",
]
# Other spellings of non-routable targets: IPv4-mapped, NAT64, bracketed, a
# network, a /32 and a URL whose host is a private address.
NON_ROUTABLE_FORMS = [
    "::ffff:10.0.0.5",
    "64:ff9b::a00:5",
    "[fd00::1]",
    "10.0.0.0/24",
    "127.0.0.1/32",
    "http://192.168.1.20/admin",
]
KEY_SETTINGS = (
    "virustotal_api_key",
    "abuseipdb_api_key",
    "shodan_api_key",
    "greynoise_api_key",
    "otx_api_key",
    "abusech_auth_key",
    "urlscan_api_key",
    "google_safebrowsing_api_key",
    "ipinfo_token",
    "circl_pdns_user",
    "circl_pdns_password",
)
# Base URL of the loopback server the undeclared-TLP source calls.
UNDECLARED_URL: list[str] = []


class UndeclaredTlpSource:
    """A network plugin whose spec leaves max_tlp at its default."""

    spec = SourceSpec(
        name="test_undeclared_tlp",
        types=ALL_TYPES,
        description="An external vendor that declares no TLP ceiling.",
        network=True,
        timeout_s=2.0,
    )

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def lookup(self, observable: Observable) -> SourceResult:
        await fetch(
            self._client,
            "GET",
            f"{UNDECLARED_URL[0]}/lookup/{observable.value}",
            timeout_s=self.spec.timeout_s,
        )
        return SourceResult(status=Status.OK, verdict=Verdict.CLEAN)


def load_undeclared(context: SourceContext) -> Iterable[Source]:
    if context.http is None:
        return []
    return [UndeclaredTlpSource(context.http)]


# --- shared fixtures ---------------------------------------------------------


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


@pytest.fixture
def dns_server() -> Iterator[LoopbackDns]:
    server = LoopbackDns().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """Start one SQLite-backed service for the API tests in this module.

    The cache and the call counters are shared, so each test uses its own values.
    """
    data_dir = tmp_path_factory.mktemp("upstream-service")
    with run_server(build_settings("sqlite", data_dir)) as running:
        yield running


@pytest.fixture(scope="module")
def api_key(service: RunningService) -> str:
    return service.create_key("upstream", "business")


def post(service: RunningService, key: str, path: str, body: Any) -> httpx.Response:
    return httpx.post(
        f"{service.url}{path}", json=body, headers={"X-API-Key": key}, timeout=60
    )


def every_key() -> dict[str, str]:
    return dict.fromkeys(KEY_SETTINGS, "test-key")


# --- not-found responses -----------------------------------------------------


async def test_not_found_shapes_stay_neutral(
    client: httpx.AsyncClient, shared_fixtures: Path
) -> None:
    recorded = shared_fixtures / "upstream"
    responses = {
        "virustotal": (VirusTotalSource, 404, "virustotal/error_404_not_found.json"),
        "urlhaus_api": (UrlhausApi, 200, "urlhaus/no_results.json"),
        "malwarebazaar_api": (
            MalwarebazaarApi,
            200,
            "malwarebazaar/get_info_hash_not_found_measured.json",
        ),
        "threatfox_api": (
            ThreatfoxApi,
            200,
            "threatfox/search_ioc_no_result.constructed.json",
        ),
        "circl_hashlookup": (
            CirclHashlookup,
            404,
            "circl_hashlookup/sha256_not_found_404.json",
        ),
    }
    servers: dict[str, LoopbackServer] = {}
    try:
        for name, (_, status, fixture) in responses.items():
            server = LoopbackServer().start()
            server.fallback = Reply(status, (recorded / fixture).read_bytes())
            servers[name] = server
        settings = Settings(
            source_endpoints={name: server.url for name, server in servers.items()},
            **every_key(),  # type: ignore[arg-type]
        )
        sources: list[Source] = [
            kind(settings, client)  # type: ignore[call-arg]
            for kind, _, _ in responses.values()
        ]
        engine = Engine(sources, settings, governor=UpstreamGovernor(settings))
        observable = Observable(type=T.SHA256, value=UNKNOWN_SHA256, input="x")
        report = await engine.enrich_observable(observable, tlp=TLP.AMBER)
    finally:
        for server in servers.values():
            server.stop()

    for name in responses:
        result = report.enrichment[name]
        assert result.status is Status.NOT_FOUND, (name, result.reason)
        assert result.verdict is None, name
        assert len(servers[name].requests) == 1, name
    assert report.verdict is Verdict.UNKNOWN
    assert report.risk_score == 0
    assert report.sources_failed == 0
    assert report.sources_flagged == 0
    assert report.explanation == []


@pytest.mark.parametrize(
    "kind", [VirusTotalSource, UrlhausApi, MalwarebazaarApi, CirclHashlookup]
)
async def test_text_not_found_never_clean(
    client: httpx.AsyncClient, loopback: LoopbackServer, kind: type[Any]
) -> None:
    # No built-in vendor documents a plain-text miss, so the adapters report such
    # a body as an error, never as a clean or ok result.
    loopback.fallback = Reply(200, b"Sample not found", content_type="text/plain")
    name = kind.spec.name
    settings = Settings(source_endpoints={name: loopback.url}, **every_key())  # type: ignore[arg-type]
    engine = Engine([kind(settings, client)], settings)
    observable = Observable(type=T.SHA256, value=UNKNOWN_SHA256, input="x")
    report = await engine.enrich_observable(observable, tlp=TLP.AMBER)
    result = report.enrichment[name]
    assert result.status is Status.ERROR
    assert result.reason is not None
    assert "not JSON" in result.reason
    assert report.verdict is Verdict.UNKNOWN


# --- text that cannot travel in UTF-8 ----------------------------------------

# A vendor body with non-ASCII text, an escaped NUL, an escaped lone surrogate
# and a byte that is not UTF-8.
VENDOR_BODY = (
    b'{"org": "'
    + "Société Exemple 株式会社".encode()
    + b'", "note": "a\\u0000b", "usage": "Data \\ud800 Center", "cc": "F\xffR"}'
)

TEXT_PLUGIN = '''
"""A local source that decodes a recorded vendor body (written by the test)."""

import os
from pathlib import Path

import httpx

from iocscope.models import ALL_TYPES, SourceResult, Status, Verdict
from iocscope.sources.base import SourceSpec
from iocscope.sources.http import HttpAnswer


class RecordedText:
    spec = SourceSpec(
        name="recorded_text", types=ALL_TYPES, description="replays a body"
    )

    async def lookup(self, observable):
        body = Path(os.environ["RECORDED_BODY"]).read_bytes()
        document = HttpAnswer(200, httpx.Headers(), body).json()
        return SourceResult(
            status=Status.OK,
            verdict=Verdict.SUSPICIOUS,
            summary=document["org"],
            data=document,
        )


def load(context):
    return [RecordedText()]
'''


def run_cli_in_c_locale(
    tmp_path: Path, output_format: str, encoding: str | None
) -> subprocess.CompletedProcess[bytes]:
    plugin_dir = tmp_path / "plugin"
    with registered_sources(plugin_dir, {"recorded_text": "recorded_text:load"}):
        (plugin_dir / "recorded_text.py").write_text(TEXT_PLUGIN, encoding="utf-8")
    body = tmp_path / "body.json"
    body.write_bytes(VENDOR_BODY)
    env = {
        **os.environ,
        "LANG": "C",
        "LC_ALL": "C",
        "IOCSCOPE_OFFLINE": "true",
        "IOCSCOPE_DATA_DIR": str(tmp_path / "data"),
        "RECORDED_BODY": str(body),
        "PYTHONPATH": os.pathsep.join(
            [str(plugin_dir), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
    }
    env.pop("PYTHONIOENCODING", None)
    if encoding is not None:
        env["PYTHONIOENCODING"] = encoding
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from iocscope.cli import main; main()",
            "enrich",
            "81.2.69.160",
            "--format",
            output_format,
        ],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("encoding", [None, "ascii"])
def test_c_locale_json_keeps_text(tmp_path: Path, encoding: str | None) -> None:
    completed = run_cli_in_c_locale(tmp_path, "json", encoding)
    assert b"Traceback" not in completed.stderr
    assert completed.returncode == 3, completed.stderr.decode(errors="replace")
    text = completed.stdout.decode("utf-8", errors="strict")
    document = json.loads(text)
    result = document["enrichment"]["recorded_text"]
    assert result["summary"] == "Société Exemple 株式会社"
    assert result["data"]["note"] == "a\ufffdb"
    assert result["data"]["usage"] == "Data \ufffd Center"
    assert result["data"]["cc"] == "F\ufffdR"
    assert "\\ud800" not in text


def test_c_locale_table_prints(tmp_path: Path) -> None:
    completed = run_cli_in_c_locale(tmp_path, "table", "ascii")
    assert b"Traceback" not in completed.stderr
    assert completed.returncode == 3, completed.stderr.decode(errors="replace")
    assert b"recorded_text" in completed.stdout
    assert b"Soci" in completed.stdout


async def test_plugin_surrogate_still_serializes(tmp_path: Path) -> None:
    plugin.LOCAL_LISTING.clear()
    plugin.LOCAL_LISTING["198.51.100.23"] = (
        Verdict.SUSPICIOUS,
        "Société Exemple \ud800 株式会社 \x00",
    )
    entry = {"test_local": "tests.sources_for_tests:load_local"}
    settings = Settings(data_dir=tmp_path / "data", offline=True)
    with registered_sources(tmp_path / "plugin", entry):
        async with open_engine(settings, only=["test_local_list"]) as engine:
            report = await engine.enrich("198.51.100.23")
    summary = report.enrichment["test_local_list"].summary
    assert summary == "Société Exemple \ufffd 株式会社 \ufffd"
    document = json.loads(report.model_dump_json().encode("utf-8"))
    assert document["enrichment"]["test_local_list"]["summary"] == summary


async def test_feed_surrogate_still_serializes(tmp_path: Path) -> None:
    entry = {
        "ioc_value": "198.51.100.44:8848",
        "ioc_type": "ip:port",
        "threat_type": "botnet_cc",
        "malware_printable": "Soci\u00e9t\u00e9 \ud800 Bot",
    }
    # json.dumps escapes the lone surrogate, as a vendor feed would.
    text = json.dumps({"1": [entry]})
    settings = Settings(data_dir=tmp_path / "data", offline=True)
    with FeedStore(settings.feed_db_path) as store:
        import_files(
            store, [FeedFile("recent.json", text, "threatfox_json", "threatfox")]
        )
    async with open_engine(settings, only=["threatfox"]) as engine:
        report = await engine.enrich("198.51.100.44")
    result = report.enrichment["threatfox"]
    assert result.status is Status.OK
    document = json.loads(report.model_dump_json().encode("utf-8"))
    listed = json.dumps(document["enrichment"]["threatfox"], ensure_ascii=False)
    assert "Société \ufffd Bot" in listed


# --- timeouts ----------------------------------------------------------------


async def test_every_http_request_has_timeouts(tmp_path: Path) -> None:
    budget_s = 3.0
    seen: list[tuple[str, dict[str, float | None]]] = []

    def respond(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.extensions.get("timeout", {})))
        return httpx.Response(404, stream=httpx.ByteStream(b"{}"))

    names = await collect_network_sources(tmp_path / "probe")
    settings = Settings(
        data_dir=tmp_path / "data",
        source_endpoints={name: f"http://{name}.test" for name in names},
        source_timeouts=dict.fromkeys(names, budget_s),
        **every_key(),  # type: ignore[arg-type]
    )
    samples = {
        T.IP: Observable(type=T.IP, value="81.2.69.160", input="x", scope="global"),
        T.DOMAIN: Observable(
            type=T.DOMAIN,
            value="evil.example",
            input="x",
            registered_domain="evil.example",
        ),
        T.URL: Observable(
            type=T.URL,
            value="http://evil.example/a",
            input="x",
            host="evil.example",
            registered_domain="evil.example",
        ),
        T.SHA256: Observable(type=T.SHA256, value=UNKNOWN_SHA256, input="x"),
    }
    async with httpx.AsyncClient(transport=httpx.MockTransport(respond)) as client:
        with FeedStore(settings.feed_db_path) as store:
            context = SourceContext(settings=settings, store=store, http=client)
            sources = [
                source
                for source in load_sources(context)
                if source.spec.network and not _resolves_names(source)
            ]
            assert len(sources) >= 10
            for source in sources:
                kind = next(k for k in samples if k in source.spec.types)
                seen.clear()
                # Some adapters read the 404 as a miss, others as an error.
                with contextlib.suppress(SourceFailure):
                    await source.lookup(samples[kind])
                name = source.spec.name
                assert seen, f"{name} sent no request"
                for _, timeout in seen:
                    assert timeout.get("connect") is not None, name
                    assert timeout.get("read") is not None, name
                    assert timeout["connect"] <= budget_s, name
                    assert timeout["read"] <= budget_s, name


def _resolves_names(source: Source) -> bool:
    """Tell whether a source uses DNS rather than HTTP (the DNS and DNSBL ones)."""
    module = type(source).__module__
    return module.endswith((".vendors.dns", ".vendors.dnsbl"))


# --- non-routable addresses --------------------------------------------------


async def test_non_routable_sends_nothing(
    tmp_path: Path, loopback: LoopbackServer, dns_server: LoopbackDns
) -> None:
    names = await collect_network_sources(tmp_path / "probe")
    settings = Settings(
        data_dir=tmp_path / "data",
        source_endpoints=dict.fromkeys(names, loopback.url),
        dns_servers=[dns_server.address],
        **every_key(),  # type: ignore[arg-type]
    )
    async with open_engine(settings) as engine:
        network = {name for name, spec in engine.specs().items() if spec.network}
        for value in NON_ROUTABLE + NON_ROUTABLE_FORMS:
            report = await engine.enrich(value, tlp="clear")
            assert report.observable.scope not in (None, "global"), value
            assert report.verdict is not Verdict.MALICIOUS, value
            assert any("non-routable" in line.reason for line in report.explanation)
            for name in network:
                result = report.enrichment[name]
                assert result.status is Status.SKIPPED, (value, name)
                assert result.reason in ("non-routable", "unsupported type"), name
    assert loopback.requests == []
    assert dns_server.queries == []


@pytest.mark.parametrize("address", NON_ROUTABLE)
def test_api_non_routable_explained(
    service: RunningService, api_key: str, address: str
) -> None:
    response = post(service, api_key, "/v1/ioc/enrich", {"value": address})
    assert response.status_code == 200
    report = response.json()
    assert report["enrichment"]["remote_intel"]["status"] == "skipped"
    assert report["enrichment"]["remote_intel"]["reason"] == "non-routable"
    assert report["verdict"] != "malicious"
    reasons = [line["reason"] for line in report["explanation"]]
    assert any("non-routable" in reason for reason in reasons), reasons
    assert service.remote.calls[report["observable"]["value"]] == 0


# --- TLP ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tlp", "remote_queried"),
    [
        ("red", False),
        ("TLP:RED", False),
        ("amber+strict", False),
        ("TLP:AMBER+STRICT", False),
        (3, False),
        ("3", False),
        ("amber", True),
        (2, True),
        ("green", True),
        ("clear", True),
        ("white", True),
        (0, True),
    ],
)
def test_api_tlp_gate(
    service: RunningService, api_key: str, tlp: object, remote_queried: bool
) -> None:
    value = f"tlp-{str(tlp).replace(':', '-').replace('+', '-')}.example".lower()
    report = post(
        service, api_key, "/v1/ioc/enrich", {"value": value, "tlp": tlp}
    ).json()
    remote = report["enrichment"]["remote_intel"]
    assert report["enrichment"]["local_intel"]["status"] == "not_found"
    if remote_queried:
        assert remote["status"] == "not_found"
        assert service.remote.calls[value] == 1
    else:
        assert remote["status"] == "skipped"
        assert remote["reason"] == "tlp"
        assert service.remote.calls[value] == 0


def test_api_default_tlp_echoed(service: RunningService, api_key: str) -> None:
    report = post(
        service, api_key, "/v1/ioc/enrich", {"value": "no-tlp.example"}
    ).json()
    assert report["tlp"] == "amber"


def test_configured_default_tlp_applies(tmp_path: Path) -> None:
    settings = build_settings("sqlite", tmp_path / "data", default_tlp="red")
    with run_server(settings) as running:
        key = running.create_key("strict", "team")
        report = post(
            running, key, "/v1/ioc/enrich", {"value": "strict.example"}
        ).json()
        assert report["tlp"] == "red"
        assert report["enrichment"]["remote_intel"]["reason"] == "tlp"
        assert running.remote.calls["strict.example"] == 0


async def test_undeclared_tlp_never_gets_red(
    tmp_path: Path, loopback: LoopbackServer
) -> None:
    UNDECLARED_URL[:] = [loopback.url]
    loopback.fallback = Reply(200, b"{}")
    entry = {"test_undeclared": "tests.test_failure_cases_upstream:load_undeclared"}
    settings = Settings(data_dir=tmp_path / "data")
    with registered_sources(tmp_path / "plugin", entry):
        async with open_engine(settings, only=["test_undeclared_tlp"]) as engine:
            report = await engine.enrich("evil.example", tlp="red")
    assert report.enrichment["test_undeclared_tlp"].reason == "tlp"
    assert loopback.requests == []


# --- bulk requests -----------------------------------------------------------


def test_bulk_bad_items_fail_alone(service: RunningService, api_key: str) -> None:
    items = [
        {"value": "bulk.example"},
        {"value": " BULK[.]example\t"},
        {"value": BAD_MD5},
        {"value": "bulk.example", "tlp": "purple"},
        {"value": "10.0.0.5"},
        {"value": "hxxp://bulk[.]example/a"},
    ]
    response = post(service, api_key, "/v1/ioc/bulk", {"items": items})
    assert response.status_code == 200
    body = response.json()
    results = body["results"]
    assert [entry["index"] for entry in results] == list(range(len(items)))

    bad_hash = results[2]["error"]
    assert bad_hash["field"] == "value"
    assert bad_hash["value"] == BAD_MD5
    assert "hex digit" in bad_hash["message"]
    bad_tlp = results[3]["error"]
    assert bad_tlp["field"] == "tlp"
    assert "purple" in bad_tlp["message"]

    assert results[1]["result"]["observable"]["value"] == "bulk.example"
    assert results[4]["result"]["enrichment"]["remote_intel"]["reason"] == (
        "non-routable"
    )
    assert service.local.calls["bulk.example"] == 1
    assert service.remote.calls["10.0.0.5"] == 0

    summary = body["summary"]
    assert summary["total"] == 6
    assert summary["succeeded"] == 4
    assert summary["failed"] == 2
    assert summary["unique"] == 3


def test_bulk_bounds_source_concurrency(tmp_path: Path) -> None:
    concurrency = 3
    settings = build_settings(
        "sqlite", tmp_path / "data", service_bulk_concurrency=concurrency
    )
    with run_server(settings) as running:
        # Slow every lookup down, so that unbounded workers would overlap at the
        # source. The recording source alone returns too fast to show an overlap.
        in_flight = {"now": 0, "max": 0}
        recorded_lookup = running.local.lookup

        async def slow_lookup(observable: Observable) -> SourceResult:
            in_flight["now"] += 1
            in_flight["max"] = max(in_flight["max"], in_flight["now"])
            try:
                await asyncio.sleep(0.05)
                return await recorded_lookup(observable)
            finally:
                in_flight["now"] -= 1

        running.local.lookup = slow_lookup  # type: ignore[method-assign]
        key = running.create_key("bounded", "business")
        items = [{"value": f"slow{i}.example"} for i in range(30)]
        response = post(running, key, "/v1/ioc/bulk", {"items": items})
    assert response.status_code == 200
    assert response.json()["summary"]["succeeded"] == 30
    assert in_flight["max"] <= concurrency
    # The lookups did overlap, so the bound above was put to the test.
    assert in_flight["max"] >= 2
