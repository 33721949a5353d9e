"""VirusTotal v3 adapter against a loopback server replaying recorded responses."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from iocscope.config import Settings
from iocscope.errors import RateLimited, UpstreamError
from iocscope.models import Observable, ObservableType, SourceResult, Status, Verdict
from iocscope.sources.base import SourceContext
from iocscope.sources.vendors import virustotal
from iocscope.sources.vendors.virustotal import VirusTotalSource
from tests.loopback import LoopbackServer, Reply
from tests.vendors.support import (
    local_body,
    make_observable,
    recorded_body,
    run_lookup,
    settings_for,
)

NAME = "virustotal"
KEY = "vt-test-key-0c1d9e7a"
SHA256 = "0078c8132fb99b4bccbb2e2429885a857d6a89534f74e23e6a12821abd2c3db2"
FILE_PATH = f"/api/v3/files/{SHA256}"


class ThresholdSettings(Settings):
    """Settings with the engine threshold field the adapter reads when present."""

    virustotal_malicious_engines: int = 3


def vt_settings(server: LoopbackServer, **fields: Any) -> Settings:
    fields.setdefault("virustotal_api_key", KEY)
    return settings_for(server, NAME, settings_type=ThresholdSettings, **fields)


async def lookup(
    server: LoopbackServer, target: Observable | None = None, **fields: Any
) -> SourceResult:
    return await run_lookup(
        VirusTotalSource,
        vt_settings(server, **fields),
        target or make_observable(ObservableType.SHA256, SHA256),
    )


def recorded(shared: Path, name: str) -> bytes:
    return recorded_body(shared, NAME, name)


def url_id(url: str) -> str:
    return base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


async def test_file_hit_maps_detections(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "file_0078c813_malicious_ransomware_trimmed.json")
    loopback.route("GET", FILE_PATH, Reply(200, body))
    result = await lookup(loopback)
    assert result.status is Status.OK
    assert result.verdict is Verdict.MALICIOUS
    assert result.data["engines"] == "44/73"
    assert result.summary is not None and "44/73" in result.summary
    assert result.score == 60
    assert result.confidence is not None and result.confidence >= 0.9
    assert result.data["type_description"] == "Win32 EXE"
    assert result.data["last_analysis_stats"]["type-unsupported"] == 4
    assert result.data["last_analysis_date"] == "2025-05-13T04:05:44Z"


async def test_request_sends_key_header(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "file_eicar_stats_only_measured.json")
    loopback.route("GET", FILE_PATH, Reply(200, body))
    await lookup(loopback)
    assert len(loopback.requests) == 1
    seen = loopback.requests[0]
    assert seen.method == "GET"
    assert seen.path == FILE_PATH
    assert seen.query == ""
    assert seen.headers["x-apikey"] == KEY
    assert seen.headers["accept"] == "application/json"


async def test_eight_buckets_counted_generically(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "file_eicar_stats_only_measured.json")
    loopback.route("GET", FILE_PATH, Reply(200, body))
    result = await lookup(loopback)
    # failure, timeout and type-unsupported engines gave no verdict.
    assert result.data["engines"] == "65/68"
    assert result.data["suggested_threat_label"] == "virus.eicar/test"
    assert "threat:virus.eicar/test" in result.tags


async def test_url_uses_unpadded_base64url_id(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    url = "http://218.54.47.76/"
    body = recorded(shared_fixtures, "url_218.54.47.76_one_detection.json")
    path = f"/api/v3/urls/{url_id(url)}"
    loopback.route("GET", path, Reply(200, body))
    await lookup(loopback, make_observable(ObservableType.URL, url))
    assert loopback.requests[0].path == path
    assert "=" not in loopback.requests[0].path


async def test_one_detection_is_weak_suspicious(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    url = "http://218.54.47.76/"
    body = recorded(shared_fixtures, "url_218.54.47.76_one_detection.json")
    loopback.route("GET", f"/api/v3/urls/{url_id(url)}", Reply(200, body))
    result = await lookup(loopback, make_observable(ObservableType.URL, url))
    assert result.verdict is Verdict.SUSPICIOUS
    assert result.confidence is not None and result.confidence <= 0.3
    assert result.data["engines"] == "1/80"
    assert result.summary is not None and "1/80" in result.summary


async def test_threshold_setting_changes_verdict(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    url = "http://218.54.47.76/"
    body = recorded(shared_fixtures, "url_218.54.47.76_one_detection.json")
    loopback.route("GET", f"/api/v3/urls/{url_id(url)}", Reply(200, body))
    settings = vt_settings(loopback, virustotal_malicious_engines=1)
    async with httpx.AsyncClient(trust_env=False) as client:
        source = VirusTotalSource(settings, client)
        result = await source.lookup(make_observable(ObservableType.URL, url))
    assert result.verdict is Verdict.MALICIOUS
    assert "malicious_engines=1" in source.fingerprint


async def test_phishing_categories_are_malicious(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    url = "http://something_definitely_unsecure.com"
    body = recorded(shared_fixtures, "url_phishing_malicious_redacted.json")
    loopback.route("GET", f"/api/v3/urls/{url_id(url)}", Reply(200, body))
    result = await lookup(loopback, make_observable(ObservableType.URL, url))
    assert result.verdict is Verdict.MALICIOUS
    assert "category:phishing" in result.tags
    assert result.data["categories"]["Webroot"] == "Phishing and Other Frauds"
    assert result.data["threat_names"] == ["Mal/HTMLGen-A"]


async def test_unmapped_category_never_clean_alone(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    url = "https://www.irctc.co.in/"
    body = recorded(shared_fixtures, "url_irctc_benign.json")
    loopback.route("GET", f"/api/v3/urls/{url_id(url)}", Reply(200, body))
    result = await lookup(loopback, make_observable(ObservableType.URL, url))
    # Clean comes from 0/97 engines. The "travel" category adds no tag or verdict.
    assert result.verdict is Verdict.CLEAN
    assert result.tags == []
    assert result.data["engines"] == "0/97"


def test_category_alone_cannot_make_clean() -> None:
    data = {
        "id": "x",
        "type": "url",
        "attributes": {"last_analysis_stats": {}, "categories": {"Sophos": "travel"}},
    }
    result = virustotal.map_object(data, 3)
    assert result.verdict is Verdict.UNKNOWN
    assert result.summary == "no engine results yet"


def test_malware_category_raises_clean_stats() -> None:
    data = {
        "id": "x",
        "type": "domain",
        "attributes": {
            "last_analysis_stats": {"harmless": 70, "undetected": 10},
            "categories": {"sophos": "malware callhome, command and control"},
        },
    }
    result = virustotal.map_object(data, 3)
    assert result.verdict is Verdict.MALICIOUS
    assert "category:malware" in result.tags


async def test_suspicious_engine_only(loopback: LoopbackServer) -> None:
    md5 = "5d41402abc4b2a76b9719d911017c592"
    body = local_body(NAME, "file_suspicious_only.constructed.json")
    loopback.route("GET", f"/api/v3/files/{md5}", Reply(200, body))
    result = await lookup(loopback, make_observable(ObservableType.MD5, md5))
    assert result.verdict is Verdict.SUSPICIOUS
    assert result.confidence is not None and result.confidence <= 0.3
    assert result.data["engines"] == "0/61"
    assert result.summary == "0/61 engines flagged malicious, 1 suspicious"


async def test_ip_clean_with_context(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "ip_8.8.8.8_benign.json")
    loopback.route("GET", "/api/v3/ip_addresses/8.8.8.8", Reply(200, body))
    result = await lookup(loopback, make_observable(ObservableType.IP, "8.8.8.8"))
    assert result.verdict is Verdict.CLEAN
    assert result.data["as_owner"] == "GOOGLE"
    assert result.data["asn"] == 15169
    assert result.data["reputation"] == 556
    assert result.data["engines"] == "0/94"


async def test_domain_malicious_with_categories(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "domain_mykings_malicious_redacted.json")
    loopback.route("GET", "/api/v3/domains/mykings.example", Reply(200, body))
    result = await lookup(
        loopback, make_observable(ObservableType.DOMAIN, "mykings.example")
    )
    assert result.verdict is Verdict.MALICIOUS
    assert result.data["engines"] == "8/98"
    assert "category:malware" in result.tags


async def test_not_found_body_is_not_found(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "error_404_not_found.json")
    loopback.route("GET", FILE_PATH, Reply(404, body))
    result = await lookup(loopback)
    assert result.status is Status.NOT_FOUND
    assert result.verdict is None


async def test_404_without_vendor_body_is_error(loopback: LoopbackServer) -> None:
    loopback.route("GET", FILE_PATH, Reply(404, b'{"detail": "no route"}'))
    with pytest.raises(UpstreamError, match="404 without a report object"):
        await lookup(loopback)


@pytest.mark.parametrize("status", [401, 403])
async def test_rejected_key_is_error(
    loopback: LoopbackServer, shared_fixtures: Path, status: int
) -> None:
    body = recorded(shared_fixtures, "error_401_auth_required.json")
    loopback.route("GET", FILE_PATH, Reply(status, body))
    with pytest.raises(UpstreamError, match="rejected the API key") as caught:
        await lookup(loopback)
    assert KEY not in str(caught.value)


async def test_429_keeps_retry_after(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "error_429_quota_exceeded.constructed.json")
    loopback.route("GET", FILE_PATH, Reply(429, body, {"Retry-After": "42"}))
    with pytest.raises(RateLimited) as caught:
        await lookup(loopback)
    assert caught.value.retry_after_s == 42
    assert "QuotaExceededError" in caught.value.message


async def test_429_without_header_waits_a_minute(loopback: LoopbackServer) -> None:
    loopback.route("GET", FILE_PATH, Reply(429, b""))
    with pytest.raises(RateLimited) as caught:
        await lookup(loopback)
    assert caught.value.retry_after_s == 60


async def test_quota_body_in_200_is_rate_limited(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "error_429_quota_exceeded.constructed.json")
    loopback.route("GET", FILE_PATH, Reply(200, body))
    with pytest.raises(RateLimited, match="quota exceeded"):
        await lookup(loopback)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>gateway</html>", "not JSON"),
        (b"", "empty body"),
        (b"[1, 2]", "not an object"),
        (b'{"data": "x"}', "without a report object"),
    ],
)
async def test_garbled_body_is_error(
    loopback: LoopbackServer, body: bytes, message: str
) -> None:
    loopback.route("GET", FILE_PATH, Reply(200, body))
    with pytest.raises(UpstreamError, match=message):
        await lookup(loopback)


async def test_non_utf8_body_is_replaced(loopback: LoopbackServer) -> None:
    report = {
        "data": {
            "id": SHA256,
            "type": "file",
            "attributes": {
                "last_analysis_stats": {"malicious": 0, "undetected": 50},
                "meaningful_name": "NAME",
            },
        }
    }
    body = json.dumps(report).encode().replace(b"NAME", b"caf\xe9-\xff.exe")
    loopback.route("GET", FILE_PATH, Reply(200, body))
    result = await lookup(loopback)
    assert result.data["meaningful_name"] == "caf\ufffd-\ufffd.exe"
    assert result.verdict is Verdict.CLEAN


async def test_loaded_source_is_network() -> None:
    async with httpx.AsyncClient(trust_env=False) as client:
        context = SourceContext(settings=Settings(), store=None, http=client)  # type: ignore[arg-type]
        [source] = virustotal.load(context)
    assert source.spec.network is True


async def test_fingerprint_has_endpoint_not_key() -> None:
    config = Settings(
        virustotal_api_key=KEY, source_endpoints={"virustotal": "http://127.0.0.1:9"}
    )
    async with httpx.AsyncClient(trust_env=False) as client:
        source = VirusTotalSource(config, client)
    assert "http://127.0.0.1:9" in source.fingerprint
    assert KEY not in source.fingerprint
