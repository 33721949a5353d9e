"""Input parsing faults seen in other enrichment tools, checked end to end here.

The parser tests in test_observables*.py pin each accepted spelling. This file
adds what only shows through the engine, the HTTP API, the CLI or the Cortex
analyzer: a defanged spelling served from the clean spelling's cache entry, an
upper-case hash that still matches a lower-case local list, a network that
reaches only the sources that accept networks, and the domain type family. It
also widens a few parser checks to the whole kind of input: every letter case of
a defanged scheme, every bracket style and every host that can end in a dot.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from iocscope.cli import build_app
from iocscope.config import Settings
from iocscope.errors import InvalidObservable
from iocscope.feeds.importer import FeedFile, import_files
from iocscope.feeds.store import FeedStore
from iocscope.models import ObservableType, Status
from iocscope.observables import extract_observables, parse_observable
from iocscope.runtime import open_engine
from iocscope.sources.feeds import NOT_IMPORTED
from tests.api.service import RunningService, build_settings, run_server
from tests.integrations.cortex_support import assert_cortex_success, make_job, run_job
from tests.integrations.live_service import (
    collect_network_sources,
    start_live_service,
)
from tests.loopback import LoopbackServer, Reply
from tests.vendors.dnsctx_server import LoopbackDns

T = ObservableType

EICAR_MD5 = "44d88612fea8a8f36de82e1278abb02f"
EICAR_SHA1 = "3395856ce81f2b7382dee72602f798b642f14140"
EICAR_SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"

# Settings of every vendor credential, so that no source is skipped for a key.
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

# A MalwareBazaar CSV export that lists the EICAR file with lower-case digests.
BAZAAR_CSV = (
    '# "first_seen_utc","sha256_hash","md5_hash","sha1_hash","reporter",'
    '"file_name","file_type_guess","mime_type","signature","clamav",'
    '"vtpercent","imphash","ssdeep","tlsh"\n'
    f'"2024-01-02 03:04:05", "{EICAR_SHA256}", "{EICAR_MD5}", "{EICAR_SHA1}", '
    '"tester", "eicar.com", "com", "application/octet-stream", "EICAR", '
    '"n/a", "n/a", "n/a", "n/a", "n/a"\n'
)

# The live service loads one plugin module. The sha1 test needs only the built-in
# feeds, so this plugin serves no observable type.
IDLE_PLUGIN = '''
"""A source with no observable types, so the engine never queries it."""

from iocscope.models import SourceResult
from iocscope.sources.base import SourceSpec


class Idle:
    spec = SourceSpec(name="idle", types=frozenset(), description="never queried")

    async def lookup(self, observable):
        return SourceResult.not_found()


def load(context):
    return [Idle()]
'''

runner = CliRunner()


# --- shared fixtures ---------------------------------------------------------


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """Start one SQLite-backed service for the API tests in this module.

    The cache and the call counters are shared, so each test uses its own values.
    """
    data_dir = tmp_path_factory.mktemp("parsing-service")
    with run_server(build_settings("sqlite", data_dir)) as running:
        yield running


@pytest.fixture(scope="module")
def api_key(service: RunningService) -> str:
    return service.create_key("parsing", "team")


def enrich(service: RunningService, key: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{service.url}/v1/ioc/enrich",
        json=body,
        headers={"X-API-Key": key},
        timeout=30,
    )


def import_bazaar(data_dir: Path) -> None:
    """Store the EICAR digests, lower-case, as the malwarebazaar feed."""
    with FeedStore(Settings(data_dir=data_dir).feed_db_path) as store:
        feed = FeedFile("recent.csv", BAZAAR_CSV, "malwarebazaar_csv", "malwarebazaar")
        import_files(store, [feed])


# --- defanged input ----------------------------------------------------------

DEFANGED_PAIRS = [
    ("test[.]example[.]com", "test.example.com"),
    ("198.51.100[.]23", "198.51.100.23"),
    ("hxxp://evil[.]example/path", "http://evil.example/path"),
    ("user[@]example[.]com", "user@example.com"),
]


@pytest.mark.parametrize(("defanged", "clean"), DEFANGED_PAIRS)
def test_defanged_served_from_cache(
    service: RunningService, api_key: str, defanged: str, clean: str
) -> None:
    first = enrich(service, api_key, {"value": clean}).json()
    second = enrich(service, api_key, {"value": defanged}).json()
    assert first["observable"]["value"] == clean
    assert second["observable"]["value"] == clean
    assert second["observable"]["input"] == defanged
    assert second["observable"]["refanged"] is True
    assert second["enrichment"]["local_intel"]["cached"] is True
    assert service.local.calls[clean] == 1
    assert service.local.calls[defanged] == 0


def case_variants(word: str) -> list[str]:
    """Return every upper/lower-case spelling of ``word``."""
    pairs = [(char.lower(), char.upper()) for char in word]
    return ["".join(letters) for letters in itertools.product(*pairs)]


@pytest.mark.parametrize(
    ("scheme", "expected"),
    [
        *((variant, "https") for variant in case_variants("hxxps")),
        *((variant, "http") for variant in case_variants("hxxp")),
        *((variant, "ftp") for variant in case_variants("fxp")),
    ],
)
def test_defanged_scheme_any_case(scheme: str, expected: str) -> None:
    observable = parse_observable(f"{scheme}://evil[.]example/login")
    assert observable.value == f"{expected}://evil.example/login"


@pytest.mark.parametrize(("opening", "closing"), [("[", "]"), ("(", ")"), ("{", "}")])
def test_bracket_styles_in_text(opening: str, closing: str) -> None:
    def wrap(token: str) -> str:
        return f"{opening}{token}{closing}"

    text = (
        f"first hxxp{wrap(':')}//evil{wrap('.')}example/a.exe, "
        f"then https{wrap('://')}evil.example{wrap('/')}b and "
        f"http://evil{wrap('.')}example{wrap('/')}path."
    )
    found = [observable.value for observable in extract_observables(text)]
    assert found == [
        "http://evil.example/a.exe",
        "https://evil.example/b",
        "http://evil.example/path",
    ]


def test_at_letters_in_text_stay_domains() -> None:
    text = "Beacons to update.example.com and news.ycombinator.com, from data.example"
    found = [(o.type, o.value) for o in extract_observables(text)]
    assert found == [
        (T.DOMAIN, "update.example.com"),
        (T.DOMAIN, "news.ycombinator.com"),
        (T.DOMAIN, "data.example"),
    ]


# --- public suffixes ---------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "registered", "is_public"),
    [
        ("www.example.co.uk", "example.co.uk", False),
        ("evil.github.io", "evil.github.io", False),
        ("co.uk", None, True),
    ],
)
def test_suffix_fields_in_document(
    service: RunningService,
    api_key: str,
    value: str,
    registered: str | None,
    is_public: bool,
) -> None:
    observable = enrich(service, api_key, {"value": value}).json()["observable"]
    assert observable["type"] == "domain"
    assert observable["registered_domain"] == registered
    assert observable["is_public_suffix"] is is_public


# --- upper-case hashes -------------------------------------------------------


@pytest.mark.parametrize("type_hint", [None, "hash", "sha1", "file"])
def test_api_lowercases_hash_before_lookup(
    service: RunningService, api_key: str, type_hint: str | None
) -> None:
    body: dict[str, Any] = {"value": EICAR_SHA1.upper(), "refresh": True}
    if type_hint is not None:
        body["type"] = type_hint
    before = service.local.calls[EICAR_SHA1]
    report = enrich(service, api_key, body).json()
    assert report["observable"]["type"] == "sha1"
    assert report["observable"]["value"] == EICAR_SHA1
    assert service.local.calls[EICAR_SHA1] == before + 1
    assert service.local.calls[EICAR_SHA1.upper()] == 0


@pytest.mark.parametrize("type_args", [[], ["--type", "hash"], ["--type", "sha1"]])
def test_cli_upper_hash_matches_feed(tmp_path: Path, type_args: list[str]) -> None:
    import_bazaar(tmp_path)
    args = ["enrich", EICAR_SHA1.upper(), *type_args, "--data-dir", str(tmp_path)]
    result = runner.invoke(build_app(), args, env={"IOCSCOPE_OFFLINE": "true"})
    document = json.loads(result.stdout)
    assert result.exit_code == 2, result.stderr
    assert document["observable"]["value"] == EICAR_SHA1
    assert document["enrichment"]["malwarebazaar"]["status"] == "ok"
    assert document["enrichment"]["malwarebazaar"]["verdict"] == "malicious"


def test_cortex_upper_hash_matches_feed(
    tmp_path: Path, shared_fixtures: Path, loopback: LoopbackServer
) -> None:
    with start_live_service(tmp_path, IDLE_PLUGIN, external_url=loopback.url) as live:
        # The running service reads the feed store on each lookup.
        import_bazaar(tmp_path / "service-data")
        sample = shared_fixtures / "cortex" / "input" / "dshield-how-to-test.input.json"
        job_input = json.loads(sample.read_text(encoding="utf-8"))
        job_input.update(dataType="hash", data=EICAR_SHA1.upper(), tlp=2)
        job_input.setdefault("config", {})
        job_input["config"].update(api_key=live["api_key"], api_url=live["url"])
        output, exit_code = run_job(make_job(tmp_path / "job", job_input))

    assert exit_code == 0, output.get("errorMessage")
    assert_cortex_success(output)
    full = output["full"]
    assert full["observable"]["type"] == "sha1"
    assert full["observable"]["value"] == EICAR_SHA1
    assert full["enrichment"]["malwarebazaar"]["status"] == "ok"
    assert full["verdict"] == "malicious"


# --- invisible characters ----------------------------------------------------


def test_api_trims_outer_blanks(service: RunningService, api_key: str) -> None:
    raw = f"\ufeff\u200b  {EICAR_MD5}\u00a0\r\n"
    response = enrich(service, api_key, {"value": raw})
    assert response.status_code == 200
    assert response.json()["observable"]["type"] == "md5"
    assert response.json()["observable"]["value"] == EICAR_MD5
    assert response.json()["observable"]["input"] == raw


def test_api_rejects_inner_space(service: RunningService, api_key: str) -> None:
    raw = "44d88612 fea8a8f36de82e1278abb02f"
    response = enrich(service, api_key, {"value": raw})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "value"
    assert error["value"] == raw
    assert "whitespace" in error["message"]


@pytest.mark.parametrize(
    "mark", ["\u200e", "\u200f", "\u202a", "\u202c", "\u2066", "\u2069", "\u180e"]
)
def test_outer_format_marks_trimmed(mark: str) -> None:
    assert parse_observable(f"{mark}{EICAR_MD5}{mark}").value == EICAR_MD5


# --- networks ----------------------------------------------------------------


@pytest.mark.parametrize("network", ["198.51.100.0/24", "2001:db8::/32"])
async def test_network_only_to_network_sources(tmp_path: Path, network: str) -> None:
    settings = Settings(data_dir=tmp_path / "data", offline=True)
    async with open_engine(settings) as engine:
        report = await engine.enrich(network)
        specs = engine.specs()
    assert report.observable.type is T.CIDR
    assert report.observable.value == network
    accepting = {name for name, spec in specs.items() if T.CIDR in spec.types}
    assert accepting, "no built-in source accepts networks"
    for name, result in report.enrichment.items():
        if name in accepting:
            assert result.reason != "unsupported type", name
        else:
            assert result.status is Status.SKIPPED, name
            assert result.reason == "unsupported type", name


@pytest.mark.parametrize(
    ("raw", "fragments"),
    [
        ("198.51.100.7/24", ["'198.51.100.0/24'", "'198.51.100.7'"]),
        ("2001:db8::1/64", ["'2001:db8::/64'", "'2001:db8::1'"]),
    ],
)
def test_host_bits_offers_both_fixes(raw: str, fragments: list[str]) -> None:
    with pytest.raises(InvalidObservable) as caught:
        parse_observable(raw)
    for fragment in fragments:
        assert fragment in caught.value.message


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("198.51.100.7/", "stray '/'"),
        ("2001:db8::1/", "stray '/'"),
        ("2001:db8::/32/", "stray '/'"),
        ("198.51.100.0/24/", "stray '/'"),
    ],
)
def test_stray_slash_never_guessed(raw: str, fragment: str) -> None:
    with pytest.raises(InvalidObservable) as caught:
        parse_observable(raw)
    assert fragment in caught.value.message


def test_network_stray_slash_rejected() -> None:
    with pytest.raises(InvalidObservable):
        parse_observable("198.51.100.0/24/")


# --- trailing dots -----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "value", "registered"),
    [
        ("HTTP://WWW.Example.COM./a", "http://www.example.com/a", "example.com"),
        (
            "http://www.example.com.:8080/a",
            "http://www.example.com:8080/a",
            "example.com",
        ),
        ("user@Mail.Example.COM.", "user@mail.example.com", "example.com"),
        ("WWW.EXAMPLE.COM.", "www.example.com", "example.com"),
    ],
)
def test_trailing_dot_every_host(raw: str, value: str, registered: str) -> None:
    observable = parse_observable(raw)
    assert observable.value == value
    assert observable.registered_domain == registered


@pytest.mark.parametrize(
    "raw",
    ["example.com..", "www..example.com", "http://example.com../", "u@example.com.."],
)
def test_empty_label_rejected_everywhere(raw: str) -> None:
    with pytest.raises(InvalidObservable) as caught:
        parse_observable(raw)
    assert "empty label" in caught.value.message


# --- the domain type family --------------------------------------------------


@pytest.mark.parametrize("type_hint", ["hostname", "fqdn", "domain", "FQDN"])
def test_api_domain_family(
    service: RunningService, api_key: str, type_hint: str
) -> None:
    response = enrich(
        service, api_key, {"value": "mail.example.com", "type": type_hint}
    )
    assert response.status_code == 200
    report = response.json()
    assert report["observable"]["type"] == "domain"
    assert report["observable"]["registered_domain"] == "example.com"
    for name in ("local_intel", "remote_intel"):
        assert report["enrichment"][name]["status"] == "not_found", name


@pytest.fixture
def dns_server() -> Iterator[LoopbackDns]:
    server = LoopbackDns().start()
    try:
        yield server
    finally:
        server.stop()


async def test_domain_family_reaches_every_source(
    tmp_path: Path, loopback: LoopbackServer, dns_server: LoopbackDns
) -> None:
    loopback.fallback = Reply(404, b"{}")
    names = await collect_network_sources(tmp_path / "probe")
    settings = Settings(
        data_dir=tmp_path / "data",
        source_endpoints=dict.fromkeys(names, loopback.url),
        source_timeouts=dict.fromkeys(names, 2.0),
        dns_servers=[dns_server.address],
        **dict.fromkeys(KEY_SETTINGS, "test-key"),
    )
    outcomes = {}
    async with open_engine(settings) as engine:
        domain_sources = {
            name for name, spec in engine.specs().items() if T.DOMAIN in spec.types
        }
        for type_hint in ("fqdn", "hostname", "domain"):
            report = await engine.enrich(
                "mail.example.com", type_hint, tlp="clear", refresh=True
            )
            # Record which sources were queried and why the others were skipped.
            # The lookup results vary with how fast the loopback servers accept
            # connections, so they are not compared.
            outcomes[type_hint] = {
                name: result.reason if result.status is Status.SKIPPED else "queried"
                for name, result in report.enrichment.items()
            }
    assert outcomes["fqdn"] == outcomes["domain"]
    assert outcomes["hostname"] == outcomes["domain"]
    for name in domain_sources:
        assert outcomes["domain"][name] in ("queried", NOT_IMPORTED), name
