"""Failure responses that every HTTP vendor adapter handles the same way.

Each test runs one response shape against the adapters in ``ADAPTERS``: a rejected
key, a 429 with Retry-After, a 5xx, a server that never responds, a body that is not
JSON, a secret that must stay out of the logs, and loading with and without an HTTP
client. Vendor bodies, recorded or built, and vendor-specific messages stay in each
adapter's own test file.
"""

from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import SecretStr

from iocscope.config import Settings
from iocscope.errors import RateLimited, UpstreamError, UpstreamTimeout
from iocscope.models import Observable, ObservableType, SourceResult
from iocscope.sources.base import SourceContext, SourceLoader
from iocscope.sources.vendors import (
    abuseipdb,
    circl_hashlookup,
    circl_pdns,
    google_safebrowsing,
    greynoise,
    ipinfo,
    malwarebazaar_api,
    otx,
    rdap,
    shodan_host,
    shodan_internetdb,
    threatfox_api,
    urlhaus_api,
    urlscan,
    virustotal,
)
from tests.loopback import LoopbackServer, Reply, SeenRequest
from tests.vendors.support import (
    AUTH_KEY,
    GARBLED,
    NO_STORE,
    TRUNCATED_JSON,
    PdnsSettings,
    SourceFactory,
    make_observable,
    output_of_lookups,
    run_lookup,
    settings_for,
)

SHA256 = "0078c8132fb99b4bccbb2e2429885a857d6a89534f74e23e6a12821abd2c3db2"
PDNS_USER = "csirt-example"
PDNS_PASSWORD = "pdns-common-password-4c7e"
PDNS_TOKEN = base64.b64encode(f"{PDNS_USER}:{PDNS_PASSWORD}".encode()).decode()
IPINFO_TOKEN = "ipinfo-common-token-2b9d"
HANG_TIMEOUT_S = 0.25


@dataclass(frozen=True)
class Credential:
    """An adapter's secret: the settings fields that contain it and where it is sent.

    Exactly one of ``header`` and ``query_parameter`` is set.
    """

    settings: dict[str, Any]
    sent: str
    header: str | None = None
    query_parameter: str | None = None
    # Strings that must never appear in a result, an error or a log line.
    secrets: tuple[str, ...] = ()

    def sent_in(self, request: SeenRequest) -> str | None:
        """Return the credential as ``request`` carried it, or None if it is absent."""
        if self.header is not None:
            return request.headers.get(self.header)
        values = parse_qs(request.query).get(self.query_parameter or "", [])
        return values[0] if values else None


def api_key(setting: str, key: str, header: str) -> Credential:
    """Build a credential for a key that one request header carries unchanged."""
    return Credential({setting: key}, sent=key, header=header, secrets=(key,))


@dataclass(frozen=True)
class Adapter:
    """One HTTP vendor adapter, a sample observable and the route it requests."""

    # The source name, which keys source_endpoints and source_timeouts.
    name: str
    factory: SourceFactory
    load: SourceLoader
    method: str
    path: str
    target: Observable
    # The reply for the 5xx test. The rows use different statuses and bodies, so
    # the table covers each status that fetch() retries, with and without a body.
    server_error: Reply
    credential: Credential | None = None
    settings_type: type[Settings] = Settings

    def route(self, server: LoopbackServer, reply: Reply) -> None:
        server.route(self.method, self.path, reply)

    async def lookup(self, server: LoopbackServer, **fields: Any) -> SourceResult:
        if self.credential is not None:
            fields = self.credential.settings | fields
        settings = settings_for(
            server, self.name, settings_type=self.settings_type, **fields
        )
        return await run_lookup(self.factory, settings, self.target)


ADAPTERS = [
    Adapter(
        "virustotal",
        virustotal.VirusTotalSource,
        virustotal.load,
        "GET",
        f"/api/v3/files/{SHA256}",
        make_observable(ObservableType.SHA256, SHA256),
        server_error=Reply(
            503, b'{"error": {"code": "TransientError", "message": "try again"}}'
        ),
        credential=api_key("virustotal_api_key", "vt-common-key-5d2e81", "x-apikey"),
    ),
    Adapter(
        "abuseipdb",
        abuseipdb.AbuseIPDBSource,
        abuseipdb.load,
        "GET",
        "/api/v2/check",
        make_observable(ObservableType.IP, "118.25.6.39"),
        server_error=Reply(502, b"<html>bad gateway</html>"),
        credential=api_key("abuseipdb_api_key", "abuseipdb-common-key-0f3a", "key"),
    ),
    Adapter(
        "greynoise",
        greynoise.GreyNoiseSource,
        greynoise.load,
        "GET",
        "/v3/community/1.2.3.4",
        make_observable(ObservableType.IP, "1.2.3.4"),
        server_error=Reply(500, b"{}"),
        credential=api_key("greynoise_api_key", "greynoise-common-key-7e21", "key"),
    ),
    Adapter(
        "otx",
        otx.OTXSource,
        otx.load,
        "GET",
        "/api/v1/indicators/IPv4/103.205.14.176/general",
        make_observable(ObservableType.IP, "103.205.14.176"),
        server_error=Reply(500, "Internal Server Error"),
        credential=api_key("otx_api_key", "otx-common-key-c88b", "x-otx-api-key"),
    ),
    Adapter(
        "urlscan",
        urlscan.URLScanSource,
        urlscan.load,
        "GET",
        "/api/v1/search/",
        make_observable(ObservableType.DOMAIN, "example.com"),
        server_error=Reply(502, "Bad Gateway"),
        credential=api_key("urlscan_api_key", "urlscan-common-key-41d6", "api-key"),
    ),
    Adapter(
        "shodan_host",
        shodan_host.ShodanHost,
        shodan_host.load,
        "GET",
        "/shodan/host/8.8.8.8",
        make_observable(ObservableType.IP, "8.8.8.8"),
        server_error=Reply(502, ""),
        credential=Credential(
            {"shodan_api_key": "shodan-common-key-93ab"},
            sent="shodan-common-key-93ab",
            query_parameter="key",
            secrets=("shodan-common-key-93ab",),
        ),
    ),
    Adapter(
        "ipinfo",
        ipinfo.IPinfoSource,
        ipinfo.load,
        "GET",
        "/8.8.8.8/json",
        make_observable(ObservableType.IP, "8.8.8.8"),
        server_error=Reply(504, "Gateway Timeout"),
        credential=Credential(
            {"ipinfo_token": IPINFO_TOKEN},
            sent=f"Bearer {IPINFO_TOKEN}",
            header="authorization",
            secrets=(IPINFO_TOKEN,),
        ),
    ),
    Adapter(
        "google_safebrowsing",
        google_safebrowsing.GoogleSafeBrowsing,
        google_safebrowsing.load,
        "POST",
        "/v4/threatMatches:find",
        make_observable(ObservableType.URL, "http://www.urltocheck1.org/"),
        server_error=Reply(503, '{"error": {"code": 503}}'),
        credential=api_key(
            "google_safebrowsing_api_key",
            "AIzaSy-gsb-common-key-6a0f",
            "x-goog-api-key",
        ),
    ),
    Adapter(
        "shodan_internetdb",
        shodan_internetdb.ShodanInternetDB,
        shodan_internetdb.load,
        "GET",
        "/1.1.1.1",
        make_observable(ObservableType.IP, "1.1.1.1"),
        server_error=Reply(503, "Service Unavailable"),
    ),
    Adapter(
        "circl_hashlookup",
        circl_hashlookup.CirclHashlookup,
        circl_hashlookup.load,
        "GET",
        f"/lookup/sha256/{SHA256}",
        make_observable(ObservableType.SHA256, SHA256),
        server_error=Reply(500, '{"message": "Internal"}'),
    ),
    Adapter(
        "circl_pdns",
        circl_pdns.CirclPassiveDNS,
        circl_pdns.load,
        "GET",
        "/pdns/query/ietf.org",
        make_observable(ObservableType.DOMAIN, "ietf.org"),
        server_error=Reply(503, "Service Unavailable"),
        credential=Credential(
            {
                "circl_pdns_user": PDNS_USER,
                "circl_pdns_password": SecretStr(PDNS_PASSWORD),
            },
            sent=f"Basic {PDNS_TOKEN}",
            header="authorization",
            secrets=(PDNS_PASSWORD, PDNS_TOKEN),
        ),
        settings_type=PdnsSettings,
    ),
    Adapter(
        "urlhaus_api",
        urlhaus_api.UrlhausApi,
        urlhaus_api.load,
        "POST",
        "/v1/url/",
        make_observable(ObservableType.URL, "http://sskymedia.com/VMYB-ht_JAQo-gi/"),
        server_error=Reply(503, "unavailable"),
        credential=api_key("abusech_auth_key", AUTH_KEY, "auth-key"),
    ),
    Adapter(
        "threatfox_api",
        threatfox_api.ThreatfoxApi,
        threatfox_api.load,
        "POST",
        "/api/v1/",
        make_observable(ObservableType.IP, "139.180.203.104"),
        server_error=Reply(502, "bad gateway"),
        credential=api_key("abusech_auth_key", AUTH_KEY, "auth-key"),
    ),
    Adapter(
        "malwarebazaar_api",
        malwarebazaar_api.MalwarebazaarApi,
        malwarebazaar_api.load,
        "POST",
        "/api/v1/",
        make_observable(ObservableType.SHA256, SHA256),
        server_error=Reply(500, "internal error"),
        credential=api_key("abusech_auth_key", AUTH_KEY, "auth-key"),
    ),
    Adapter(
        "rdap",
        rdap.Rdap,
        rdap.load,
        "GET",
        "/domain/google.com",
        make_observable(ObservableType.DOMAIN, "google.com"),
        server_error=Reply(504, "gateway timeout"),
    ),
]
KEYED_ADAPTERS = [adapter for adapter in ADAPTERS if adapter.credential is not None]

# Safe Browsing builds its 400 and 403 errors from Google's error body, so its
# rejected keys are tested in test_google_safebrowsing.py.
KEY_REJECTING_ADAPTERS = [
    adapter for adapter in ADAPTERS if adapter.name != "google_safebrowsing"
]

# NOTE: Rdap passes fetch() the time left before its own deadline, so its timeout
# message names a figure just under the setting, such as 0.249995 s for 0.25 s.
# test_rdap.py checks its timeout without the message.
TIMEOUT_MESSAGE_ADAPTERS = [adapter for adapter in ADAPTERS if adapter.name != "rdap"]

# Failures without a vendor body. Each adapter's own test file adds the vendor's.
GENERIC_FAILURES = [
    Reply(401, "Unauthorized"),
    Reply(403, "Forbidden"),
    Reply(429, "{}", {"Retry-After": "1"}),
    Reply(500, "oops"),
    Reply(200, GARBLED),
    Reply(200, TRUNCATED_JSON),
]


def adapter_cases(adapters: list[Adapter]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize(
        "adapter", adapters, ids=[adapter.name for adapter in adapters]
    )


def secrets_of(adapter: Adapter) -> tuple[str, ...]:
    return adapter.credential.secrets if adapter.credential is not None else ()


@adapter_cases(KEY_REJECTING_ADAPTERS)
@pytest.mark.parametrize("status", [401, 403])
async def test_rejected_key_is_error(
    loopback: LoopbackServer, adapter: Adapter, status: int
) -> None:
    adapter.route(loopback, Reply(status, '{"error": "denied"}'))
    with pytest.raises(UpstreamError, match="rejected the API key") as caught:
        await adapter.lookup(loopback)
    assert caught.value.http_status == status
    for secret in secrets_of(adapter):
        assert secret not in str(caught.value)


@adapter_cases(ADAPTERS)
async def test_429_keeps_retry_after(
    loopback: LoopbackServer, adapter: Adapter
) -> None:
    adapter.route(loopback, Reply(429, "", {"Retry-After": "120"}))
    with pytest.raises(RateLimited) as caught:
        await adapter.lookup(loopback)
    assert caught.value.retry_after_s == 120


@adapter_cases(ADAPTERS)
async def test_5xx_retried_once_then_error(
    loopback: LoopbackServer, adapter: Adapter
) -> None:
    reply = adapter.server_error
    expected = f"upstream returned {reply.status}"
    if not reply.body:
        expected += " with an empty body"
    adapter.route(loopback, reply)
    with pytest.raises(UpstreamError) as caught:
        await adapter.lookup(loopback)
    assert caught.value.message == expected
    assert caught.value.http_status == reply.status
    assert len(loopback.requests) == 2


@adapter_cases(TIMEOUT_MESSAGE_ADAPTERS)
async def test_hanging_server_times_out(
    loopback: LoopbackServer, adapter: Adapter
) -> None:
    adapter.route(loopback, Reply(delay_s=float("inf")))
    message = re.escape(f"timed out: no response within {HANG_TIMEOUT_S:g} s")
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout, match=message):
        await adapter.lookup(loopback, timeout_s=HANG_TIMEOUT_S)
    assert time.monotonic() - started < HANG_TIMEOUT_S + 1.0


@adapter_cases(ADAPTERS)
@pytest.mark.parametrize("body", [GARBLED, TRUNCATED_JSON], ids=["html", "truncated"])
async def test_body_not_json_is_error(
    loopback: LoopbackServer, adapter: Adapter, body: bytes
) -> None:
    adapter.route(loopback, Reply(200, body))
    with pytest.raises(UpstreamError, match="not JSON") as caught:
        await adapter.lookup(loopback)
    assert caught.value.http_status == 200


@adapter_cases(KEYED_ADAPTERS)
async def test_secret_never_in_output(
    loopback: LoopbackServer, caplog: pytest.LogCaptureFixture, adapter: Adapter
) -> None:
    credential = adapter.credential
    assert credential is not None
    texts = await output_of_lookups(
        caplog,
        loopback,
        (adapter.method, adapter.path),
        GENERIC_FAILURES,
        lambda: adapter.lookup(loopback),
    )
    # The 500 is retried once, so the server receives one request per reply plus one.
    assert len(loopback.requests) == len(GENERIC_FAILURES) + 1
    assert all(credential.sent_in(r) == credential.sent for r in loopback.requests)
    for secret in credential.secrets:
        assert not [text for text in texts if secret in text]


@adapter_cases(ADAPTERS)
def test_load_needs_http_client(adapter: Adapter, tmp_path: Path) -> None:
    context = SourceContext(Settings(data_dir=tmp_path), NO_STORE)
    assert adapter.load(context) == []


@adapter_cases(ADAPTERS)
async def test_load_builds_one_source(adapter: Adapter, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    async with httpx.AsyncClient(trust_env=False) as client:
        sources = adapter.load(SourceContext(settings, NO_STORE, client))
    assert [source.spec.name for source in sources] == [adapter.name]
