"""VirusTotal v3 adapter against a loopback server replaying recorded responses."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from iocscope.config import Settings
from iocscope.errors import RateLimited, UpstreamError, UpstreamTimeout
from iocscope.models import Observable, ObservableType, Status, Verdict
from iocscope.sources.base import SourceContext
from iocscope.sources.vendors import virustotal
from iocscope.sources.vendors.virustotal import VirusTotalSource
from tests.conftest import LOCAL_FIXTURES
from tests.loopback import LoopbackServer, Reply

KEY = "vt-test-key-0c1d9e7a"
SHA256 = "0078c8132fb99b4bccbb2e2429885a857d6a89534f74e23e6a12821abd2c3db2"
FILE_PATH = f"/api/v3/files/{SHA256}"


class ThresholdSettings(Settings):
    """Settings with the engine threshold field the adapter reads when present."""

    virustotal_malicious_engines: int = 3


@pytest.fixture
def recorded(shared_fixtures: Path) -> Path:
    return shared_fixtures / "upstream" / "virustotal"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


def make_source(
    server: LoopbackServer, client: httpx.AsyncClient, **settings: object
) -> VirusTotalSource:
    config = ThresholdSettings(
        virustotal_api_key=KEY,
        source_endpoints={"virustotal": server.url},
        **settings,  # type: ignore[arg-type]
    )
    return VirusTotalSource(config, client)


def observable(kind: ObservableType, value: str) -> Observable:
    scope = "global" if kind is ObservableType.IP else None
    return Observable(type=kind, value=value, input=value, scope=scope)


def url_id(url: str) -> str:
    return base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


async def test_file_hit_maps_detections(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path
) -> None:
    body = (recorded / "file_0078c813_malicious_ransomware_trimmed.json").read_bytes()
    loopback.route("GET", FILE_PATH, Reply(200, body))
    result = await make_source(loopback, client).lookup(
        observable(ObservableType.SHA256, SHA256)
    )
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
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path
) -> None:
    body = (recorded / "file_eicar_stats_only_measured.json").read_bytes()
    loopback.route("GET", FILE_PATH, Reply(200, body))
    await make_source(loopback, client).lookup(
        observable(ObservableType.SHA256, SHA256)
    )
    assert len(loopback.requests) == 1
    seen = loopback.requests[0]
    assert seen.method == "GET"
    assert seen.path == FILE_PATH
    assert seen.query == ""
    assert seen.headers["x-apikey"] == KEY
    assert seen.headers["accept"] == "application/json"


async def test_eight_buckets_counted_generically(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path
) -> None:
    body = (recorded / "file_eicar_stats_only_measured.json").read_bytes()
    loopback.route("GET", FILE_PATH, Reply(200, body))
    result = await make_source(loopback, client).lookup(
        observable(ObservableType.SHA256, SHA256)
    )
    # failure, timeout and type-unsupported engines gave no verdict.
    assert result.data["engines"] == "65/68"
    assert result.data["suggested_threat_label"] == "virus.eicar/test"
    assert "threat:virus.eicar/test" in result.tags


async def test_url_uses_unpadded_base64url_id(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path
) -> None:
    url = "http://218.54.47.76/"
    body = (recorded / "url_218.54.47.76_one_detection.json").read_bytes()
    path = f"/api/v3/urls/{url_id(url)}"
    loopback.route("GET", path, Reply(200, body))
    await make_source(loopback, client).lookup(observable(ObservableType.URL, url))
    assert loopback.requests[0].path == path
    assert "=" not in loopback.requests[0].path


async def test_one_detection_is_weak_suspicious(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path
) -> None:
    url = "http://218.54.47.76/"
    body = (recorded / "url_218.54.47.76_one_detection.json").read_bytes()
    loopback.route("GET", f"/api/v3/urls/{url_id(url)}", Reply(200, body))
    result = await make_source(loopback, client).lookup(
        observable(ObservableType.URL, url)
    )
    assert result.verdict is Verdict.SUSPICIOUS
    assert result.confidence is not None and result.confidence <= 0.3
    assert result.data["engines"] == "1/80"
    assert result.summary is not None and "1/80" in result.summary


async def test_threshold_setting_changes_verdict(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path
) -> None:
    url = "http://218.54.47.76/"
    body = (recorded / "url_218.54.47.76_one_detection.json").read_bytes()
    loopback.route("GET", f"/api/v3/urls/{url_id(url)}", Reply(200, body))
    source = make_source(loopback, client, virustotal_malicious_engines=1)
    result = await source.lookup(observable(ObservableType.URL, url))
    assert result.verdict is Verdict.MALICIOUS
    assert "malicious_engines=1" in source.fingerprint


async def test_phishing_categories_are_malicious(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path
) -> None:
    url = "http://something_definitely_unsecure.com"
    body = (recorded / "url_phishing_malicious_redacted.json").read_bytes()
    loopback.route("GET", f"/api/v3/urls/{url_id(url)}", Reply(200, body))
    result = await make_source(loopback, client).lookup(
        observable(ObservableType.URL, url)
    )
    assert result.verdict is Verdict.MALICIOUS
    assert "category:phishing" in result.tags
    assert result.data["categories"]["Webroot"] == "Phishing and Other Frauds"
    assert result.data["threat_names"] == ["Mal/HTMLGen-A"]


async def test_unmapped_category_never_clean_alone(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path
) -> None:
    url = "https://www.irctc.co.in/"
    body = (recorded / "url_irctc_benign.json").read_bytes()
    loopback.route("GET", f"/api/v3/urls/{url_id(url)}", Reply(200, body))
    result = await make_source(loopback, client).lookup(
        observable(ObservableType.URL, url)
    )
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


async def test_suspicious_engine_only(
    loopback: LoopbackServer, client: httpx.AsyncClient
) -> None:
    md5 = "5d41402abc4b2a76b9719d911017c592"
    body = LOCAL_FIXTURES / "virustotal" / "file_suspicious_only.constructed.json"
    loopback.route("GET", f"/api/v3/files/{md5}", Reply(200, body.read_bytes()))
    result = await make_source(loopback, client).lookup(
        observable(ObservableType.MD5, md5)
    )
    assert result.verdict is Verdict.SUSPICIOUS
    assert result.confidence is not None and result.confidence <= 0.3
    assert result.data["engines"] == "0/61"
    assert result.summary == "0/61 engines flagged malicious, 1 suspicious"


async def test_ip_clean_with_context(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path
) -> None:
    body = (recorded / "ip_8.8.8.8_benign.json").read_bytes()
    loopback.route("GET", "/api/v3/ip_addresses/8.8.8.8", Reply(200, body))
    result = await make_source(loopback, client).lookup(
        observable(ObservableType.IP, "8.8.8.8")
    )
    assert result.verdict is Verdict.CLEAN
    assert result.data["as_owner"] == "GOOGLE"
    assert result.data["asn"] == 15169
    assert result.data["reputation"] == 556
    assert result.data["engines"] == "0/94"


async def test_domain_malicious_with_categories(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path
) -> None:
    body = (recorded / "domain_mykings_malicious_redacted.json").read_bytes()
    loopback.route("GET", "/api/v3/domains/mykings.example", Reply(200, body))
    result = await make_source(loopback, client).lookup(
        observable(ObservableType.DOMAIN, "mykings.example")
    )
    assert result.verdict is Verdict.MALICIOUS
    assert result.data["engines"] == "8/98"
    assert "category:malware" in result.tags


async def test_not_found_body_is_not_found(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path
) -> None:
    body = (recorded / "error_404_not_found.json").read_bytes()
    loopback.route("GET", FILE_PATH, Reply(404, body))
    result = await make_source(loopback, client).lookup(
        observable(ObservableType.SHA256, SHA256)
    )
    assert result.status is Status.NOT_FOUND
    assert result.verdict is None


async def test_404_without_vendor_body_is_error(
    loopback: LoopbackServer, client: httpx.AsyncClient
) -> None:
    loopback.route("GET", FILE_PATH, Reply(404, b'{"detail": "no route"}'))
    with pytest.raises(UpstreamError, match="404 without a report object"):
        await make_source(loopback, client).lookup(
            observable(ObservableType.SHA256, SHA256)
        )


@pytest.mark.parametrize("status", [401, 403])
async def test_rejected_key_is_error(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path, status: int
) -> None:
    body = (recorded / "error_401_auth_required.json").read_bytes()
    loopback.route("GET", FILE_PATH, Reply(status, body))
    with pytest.raises(UpstreamError, match="rejected the API key") as caught:
        await make_source(loopback, client).lookup(
            observable(ObservableType.SHA256, SHA256)
        )
    assert KEY not in str(caught.value)


async def test_429_keeps_retry_after(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path
) -> None:
    body = (recorded / "error_429_quota_exceeded.constructed.json").read_bytes()
    loopback.route("GET", FILE_PATH, Reply(429, body, {"Retry-After": "42"}))
    with pytest.raises(RateLimited) as caught:
        await make_source(loopback, client).lookup(
            observable(ObservableType.SHA256, SHA256)
        )
    assert caught.value.retry_after_s == 42
    assert "QuotaExceededError" in caught.value.message


async def test_429_without_header_waits_a_minute(
    loopback: LoopbackServer, client: httpx.AsyncClient
) -> None:
    loopback.route("GET", FILE_PATH, Reply(429, b""))
    with pytest.raises(RateLimited) as caught:
        await make_source(loopback, client).lookup(
            observable(ObservableType.SHA256, SHA256)
        )
    assert caught.value.retry_after_s == 60


async def test_quota_body_in_200_is_rate_limited(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path
) -> None:
    body = (recorded / "error_429_quota_exceeded.constructed.json").read_bytes()
    loopback.route("GET", FILE_PATH, Reply(200, body))
    with pytest.raises(RateLimited, match="quota exceeded"):
        await make_source(loopback, client).lookup(
            observable(ObservableType.SHA256, SHA256)
        )


async def test_5xx_retried_once_then_error(
    loopback: LoopbackServer, client: httpx.AsyncClient
) -> None:
    body = b'{"error": {"code": "TransientError", "message": "try again"}}'
    loopback.route("GET", FILE_PATH, Reply(503, body))
    with pytest.raises(UpstreamError, match="upstream returned 503"):
        await make_source(loopback, client).lookup(
            observable(ObservableType.SHA256, SHA256)
        )
    assert len(loopback.requests) == 2


async def test_hanging_server_times_out(
    loopback: LoopbackServer, client: httpx.AsyncClient
) -> None:
    loopback.route("GET", FILE_PATH, Reply(200, b"{}", delay_s=float("inf")))
    source = make_source(loopback, client, source_timeouts={"virustotal": 0.5})
    with pytest.raises(UpstreamTimeout, match=r"timed out: no response within 0\.5 s"):
        await source.lookup(observable(ObservableType.SHA256, SHA256))


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
    loopback: LoopbackServer, client: httpx.AsyncClient, body: bytes, message: str
) -> None:
    loopback.route("GET", FILE_PATH, Reply(200, body))
    with pytest.raises(UpstreamError, match=message):
        await make_source(loopback, client).lookup(
            observable(ObservableType.SHA256, SHA256)
        )


async def test_non_utf8_body_is_replaced(
    loopback: LoopbackServer, client: httpx.AsyncClient
) -> None:
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
    result = await make_source(loopback, client).lookup(
        observable(ObservableType.SHA256, SHA256)
    )
    assert result.data["meaningful_name"] == "caf\ufffd-\ufffd.exe"
    assert result.verdict is Verdict.CLEAN


def test_load_needs_http_client() -> None:
    context = SourceContext(settings=Settings(), store=None, http=None)  # type: ignore[arg-type]
    assert virustotal.load(context) == []


async def test_load_builds_source(client: httpx.AsyncClient) -> None:
    context = SourceContext(settings=Settings(), store=None, http=client)  # type: ignore[arg-type]
    sources = virustotal.load(context)
    assert [source.spec.name for source in sources] == ["virustotal"]
    assert sources[0].spec.network is True


def test_fingerprint_has_endpoint_not_key(client: httpx.AsyncClient) -> None:
    config = Settings(
        virustotal_api_key=KEY, source_endpoints={"virustotal": "http://127.0.0.1:9"}
    )
    source = VirusTotalSource(config, client)
    assert "http://127.0.0.1:9" in source.fingerprint
    assert KEY not in source.fingerprint
