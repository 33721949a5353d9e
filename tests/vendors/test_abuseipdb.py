"""AbuseIPDB /check adapter against a loopback server replaying recorded responses."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from iocscope.config import Settings
from iocscope.errors import RateLimited, UpstreamError, UpstreamTimeout
from iocscope.models import Observable, ObservableType, Status, Verdict
from iocscope.sources.base import SourceContext
from iocscope.sources.vendors import abuseipdb
from iocscope.sources.vendors.abuseipdb import AbuseIPDBSource
from tests.conftest import LOCAL_FIXTURES
from tests.loopback import LoopbackServer, Reply

KEY = "abuseipdb-test-key-77e0b4"
PATH = "/api/v2/check"


@pytest.fixture
def recorded(shared_fixtures: Path) -> Path:
    return shared_fixtures / "upstream" / "abuseipdb"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


def make_source(
    server: LoopbackServer, client: httpx.AsyncClient, **settings: object
) -> AbuseIPDBSource:
    config = Settings(
        abuseipdb_api_key=KEY,
        source_endpoints={"abuseipdb": server.url},
        **settings,  # type: ignore[arg-type]
    )
    return AbuseIPDBSource(config, client)


def ip(value: str) -> Observable:
    return Observable(type=ObservableType.IP, value=value, input=value, scope="global")


async def test_malicious_report_maps_fields(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path
) -> None:
    body = (recorded / "check_118.25.6.39_malicious_verbose_docs.json").read_bytes()
    loopback.route("GET", PATH, Reply(200, body))
    result = await make_source(loopback, client).lookup(ip("118.25.6.39"))
    assert result.status is Status.OK
    assert result.verdict is Verdict.MALICIOUS
    assert result.score == 100
    assert result.confidence == 0.9
    assert result.summary == (
        "abuse confidence 100%, 1 reports from 1 users in the last 90 days"
    )
    assert result.data["usageType"] == "Data Center/Web Hosting/Transit"
    assert result.data["countryCode"] == "CN"
    assert result.data["totalReports"] == 1
    assert result.data["isWhitelisted"] is False
    assert "reports" not in result.data


async def test_request_carries_key_and_params(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path
) -> None:
    body = (recorded / "check_38.75.137.9_clean_nonverbose.json").read_bytes()
    loopback.route("GET", PATH, Reply(200, body))
    await make_source(loopback, client).lookup(ip("38.75.137.9"))
    assert len(loopback.requests) == 1
    seen = loopback.requests[0]
    assert parse_qs(seen.query) == {
        "ipAddress": ["38.75.137.9"],
        "maxAgeInDays": ["90"],
    }
    assert seen.headers["key"] == KEY
    assert seen.headers["accept"] == "application/json"


async def test_ipv6_is_url_encoded(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path
) -> None:
    body = (recorded / "check_38.75.137.9_clean_nonverbose.json").read_bytes()
    loopback.route("GET", PATH, Reply(200, body))
    await make_source(loopback, client).lookup(ip("2001:4860:4860::8888"))
    query = loopback.requests[0].query
    assert "ipAddress=2001%3A4860%3A4860%3A%3A8888" in query
    assert parse_qs(query)["ipAddress"] == ["2001:4860:4860::8888"]


async def test_no_reports_is_clean(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path
) -> None:
    body = (recorded / "check_38.75.137.9_clean_nonverbose.json").read_bytes()
    loopback.route("GET", PATH, Reply(200, body))
    result = await make_source(loopback, client).lookup(ip("38.75.137.9"))
    assert result.verdict is Verdict.CLEAN
    assert result.known_benign is False
    assert result.summary == "abuse confidence 0%, no reports in the last 90 days"
    assert result.data["isWhitelisted"] is None


async def test_whitelisted_is_known_benign(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path
) -> None:
    name = "check_8.8.8.8_whitelisted_with_reports_abbreviated.json"
    loopback.route("GET", PATH, Reply(200, (recorded / name).read_bytes()))
    result = await make_source(loopback, client).lookup(ip("8.8.8.8"))
    assert result.verdict is Verdict.CLEAN
    assert result.known_benign is True
    assert "abuseipdb:whitelisted" in result.tags
    assert result.summary is not None
    assert result.summary.startswith("whitelisted by AbuseIPDB")
    assert "159 reports from 50 users" in result.summary


async def test_mid_score_is_suspicious_with_tor_tag(
    loopback: LoopbackServer, client: httpx.AsyncClient
) -> None:
    body = LOCAL_FIXTURES / "abuseipdb" / "check_suspicious_score_50.constructed.json"
    loopback.route("GET", PATH, Reply(200, body.read_bytes()))
    result = await make_source(loopback, client).lookup(ip("45.83.64.9"))
    assert result.verdict is Verdict.SUSPICIOUS
    assert result.score == 50
    assert result.confidence == 0.5
    assert result.tags == ["tor:exit-node"]


async def test_low_score_with_reports_is_unknown(
    loopback: LoopbackServer, client: httpx.AsyncClient
) -> None:
    body = LOCAL_FIXTURES / "abuseipdb" / "check_low_score_reported.constructed.json"
    loopback.route("GET", PATH, Reply(200, body.read_bytes()))
    result = await make_source(loopback, client).lookup(ip("45.83.64.10"))
    assert result.verdict is Verdict.UNKNOWN
    assert result.confidence is None
    assert result.summary == (
        "abuse confidence 4%, 2 reports from 1 users in the last 90 days"
    )


async def test_daily_limit_429_keeps_retry_after(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path
) -> None:
    body = (recorded / "error_429_daily_limit.json").read_bytes()
    recorded_headers = json.loads(
        (recorded / "headers_429_daily_limit_docs.json").read_text()
    )["headers"]
    loopback.route("GET", PATH, Reply(429, body, recorded_headers))
    with pytest.raises(RateLimited) as caught:
        await make_source(loopback, client).lookup(ip("118.25.6.39"))
    assert caught.value.retry_after_s == 29241
    assert "Daily rate limit of 1000 requests exceeded" in caught.value.message


async def test_429_with_garbled_body_is_rate_limited(
    loopback: LoopbackServer, client: httpx.AsyncClient
) -> None:
    loopback.route("GET", PATH, Reply(429, b"<html>slow down", {"Retry-After": "5"}))
    with pytest.raises(RateLimited) as caught:
        await make_source(loopback, client).lookup(ip("118.25.6.39"))
    assert caught.value.retry_after_s == 5
    assert caught.value.message == "AbuseIPDB rate limit reached: no detail"


async def test_limit_body_in_200_is_rate_limited(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path
) -> None:
    body = (recorded / "error_429_daily_limit.json").read_bytes()
    loopback.route("GET", PATH, Reply(200, body))
    with pytest.raises(RateLimited, match="Daily rate limit"):
        await make_source(loopback, client).lookup(ip("118.25.6.39"))


async def test_invalid_ip_422_keeps_detail(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path
) -> None:
    body = (recorded / "error_422_invalid_ip.json").read_bytes()
    loopback.route("GET", PATH, Reply(422, body))
    with pytest.raises(UpstreamError) as caught:
        await make_source(loopback, client).lookup(ip("118.25.6.39"))
    assert caught.value.http_status == 422
    assert "must be a valid IPv4 or IPv6 address" in caught.value.message


@pytest.mark.parametrize("status", [401, 403])
async def test_rejected_key_is_error(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path, status: int
) -> None:
    body = (recorded / "error_401_auth_failed.json").read_bytes()
    loopback.route("GET", PATH, Reply(status, body))
    with pytest.raises(UpstreamError, match="rejected the API key") as caught:
        await make_source(loopback, client).lookup(ip("118.25.6.39"))
    assert KEY not in str(caught.value)


async def test_5xx_retried_once_then_error(
    loopback: LoopbackServer, client: httpx.AsyncClient
) -> None:
    loopback.route("GET", PATH, Reply(502, b"<html>bad gateway</html>"))
    with pytest.raises(UpstreamError, match="upstream returned 502"):
        await make_source(loopback, client).lookup(ip("118.25.6.39"))
    assert len(loopback.requests) == 2


async def test_hanging_server_times_out(
    loopback: LoopbackServer, client: httpx.AsyncClient
) -> None:
    loopback.route("GET", PATH, Reply(200, b"{}", delay_s=float("inf")))
    source = make_source(loopback, client, source_timeouts={"abuseipdb": 0.5})
    with pytest.raises(UpstreamTimeout, match=r"timed out: no response within 0\.5 s"):
        await source.lookup(ip("118.25.6.39"))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<!DOCTYPE html><html>", "not JSON"),
        (b"   ", "empty body"),
        (b'"text"', "not an object"),
        (b'{"meta": {}}', "without a data object"),
        (b'{"errors": "oops"}', "no detail"),
    ],
)
async def test_garbled_body_is_error(
    loopback: LoopbackServer, client: httpx.AsyncClient, body: bytes, message: str
) -> None:
    loopback.route("GET", PATH, Reply(200, body))
    with pytest.raises(UpstreamError, match=message):
        await make_source(loopback, client).lookup(ip("118.25.6.39"))


async def test_non_utf8_body_is_replaced(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path
) -> None:
    body = (recorded / "check_38.75.137.9_clean_nonverbose.json").read_bytes()
    body = body.replace(b"GlobalTeleHost Corp.", b"Global\xffTele\xc3")
    loopback.route("GET", PATH, Reply(200, body))
    result = await make_source(loopback, client).lookup(ip("38.75.137.9"))
    assert result.data["isp"] == "Global\ufffdTele\ufffd"
    assert result.verdict is Verdict.CLEAN


def test_load_needs_http_client() -> None:
    context = SourceContext(settings=Settings(), store=None, http=None)  # type: ignore[arg-type]
    assert abuseipdb.load(context) == []


async def test_load_builds_source(client: httpx.AsyncClient) -> None:
    context = SourceContext(settings=Settings(), store=None, http=client)  # type: ignore[arg-type]
    sources = abuseipdb.load(context)
    assert [source.spec.name for source in sources] == ["abuseipdb"]
    assert KEY not in sources[0].fingerprint  # type: ignore[attr-defined]
