"""AbuseIPDB /check adapter against a loopback server replaying recorded responses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from iocscope.config import Settings
from iocscope.errors import RateLimited, UpstreamError
from iocscope.models import ObservableType, SourceResult, Status, Verdict
from iocscope.sources.base import SourceContext
from iocscope.sources.vendors import abuseipdb
from iocscope.sources.vendors.abuseipdb import AbuseIPDBSource
from tests.loopback import LoopbackServer, Reply
from tests.vendors.support import (
    local_body,
    make_observable,
    recorded_body,
    run_lookup,
    settings_for,
)

NAME = "abuseipdb"
KEY = "abuseipdb-test-key-77e0b4"
PATH = "/api/v2/check"


async def lookup(
    server: LoopbackServer, address: str = "118.25.6.39", **fields: Any
) -> SourceResult:
    fields.setdefault("abuseipdb_api_key", KEY)
    return await run_lookup(
        AbuseIPDBSource,
        settings_for(server, NAME, **fields),
        make_observable(ObservableType.IP, address),
    )


def recorded(shared: Path, name: str) -> bytes:
    return recorded_body(shared, NAME, name)


async def test_malicious_report_maps_fields(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "check_118.25.6.39_malicious_verbose_docs.json")
    loopback.route("GET", PATH, Reply(200, body))
    result = await lookup(loopback, "118.25.6.39")
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
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "check_38.75.137.9_clean_nonverbose.json")
    loopback.route("GET", PATH, Reply(200, body))
    await lookup(loopback, "38.75.137.9")
    assert len(loopback.requests) == 1
    seen = loopback.requests[0]
    assert parse_qs(seen.query) == {
        "ipAddress": ["38.75.137.9"],
        "maxAgeInDays": ["90"],
    }
    assert seen.headers["key"] == KEY
    assert seen.headers["accept"] == "application/json"


async def test_ipv6_is_url_encoded(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "check_38.75.137.9_clean_nonverbose.json")
    loopback.route("GET", PATH, Reply(200, body))
    await lookup(loopback, "2001:4860:4860::8888")
    query = loopback.requests[0].query
    assert "ipAddress=2001%3A4860%3A4860%3A%3A8888" in query
    assert parse_qs(query)["ipAddress"] == ["2001:4860:4860::8888"]


async def test_no_reports_is_clean(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "check_38.75.137.9_clean_nonverbose.json")
    loopback.route("GET", PATH, Reply(200, body))
    result = await lookup(loopback, "38.75.137.9")
    assert result.verdict is Verdict.CLEAN
    assert result.known_benign is False
    assert result.summary == "abuse confidence 0%, no reports in the last 90 days"
    assert result.data["isWhitelisted"] is None


async def test_whitelisted_is_known_benign(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    name = "check_8.8.8.8_whitelisted_with_reports_abbreviated.json"
    loopback.route("GET", PATH, Reply(200, recorded(shared_fixtures, name)))
    result = await lookup(loopback, "8.8.8.8")
    assert result.verdict is Verdict.CLEAN
    assert result.known_benign is True
    assert "abuseipdb:whitelisted" in result.tags
    assert result.summary is not None
    assert result.summary.startswith("whitelisted by AbuseIPDB")
    assert "159 reports from 50 users" in result.summary


async def test_mid_score_is_suspicious_with_tor_tag(loopback: LoopbackServer) -> None:
    body = local_body(NAME, "check_suspicious_score_50.constructed.json")
    loopback.route("GET", PATH, Reply(200, body))
    result = await lookup(loopback, "45.83.64.9")
    assert result.verdict is Verdict.SUSPICIOUS
    assert result.score == 50
    assert result.confidence == 0.5
    assert result.tags == ["tor:exit-node"]


async def test_low_score_with_reports_is_unknown(loopback: LoopbackServer) -> None:
    body = local_body(NAME, "check_low_score_reported.constructed.json")
    loopback.route("GET", PATH, Reply(200, body))
    result = await lookup(loopback, "45.83.64.10")
    assert result.verdict is Verdict.UNKNOWN
    assert result.confidence is None
    assert result.summary == (
        "abuse confidence 4%, 2 reports from 1 users in the last 90 days"
    )


async def test_daily_limit_429_keeps_retry_after(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "error_429_daily_limit.json")
    recorded_headers = json.loads(
        recorded(shared_fixtures, "headers_429_daily_limit_docs.json")
    )["headers"]
    loopback.route("GET", PATH, Reply(429, body, recorded_headers))
    with pytest.raises(RateLimited) as caught:
        await lookup(loopback, "118.25.6.39")
    assert caught.value.retry_after_s == 29241
    assert "Daily rate limit of 1000 requests exceeded" in caught.value.message


async def test_429_with_garbled_body_is_rate_limited(loopback: LoopbackServer) -> None:
    loopback.route("GET", PATH, Reply(429, b"<html>slow down", {"Retry-After": "5"}))
    with pytest.raises(RateLimited) as caught:
        await lookup(loopback, "118.25.6.39")
    assert caught.value.retry_after_s == 5
    assert caught.value.message == "AbuseIPDB rate limit reached: no detail"


async def test_limit_body_in_200_is_rate_limited(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "error_429_daily_limit.json")
    loopback.route("GET", PATH, Reply(200, body))
    with pytest.raises(RateLimited, match="Daily rate limit"):
        await lookup(loopback, "118.25.6.39")


async def test_invalid_ip_422_keeps_detail(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "error_422_invalid_ip.json")
    loopback.route("GET", PATH, Reply(422, body))
    with pytest.raises(UpstreamError) as caught:
        await lookup(loopback, "118.25.6.39")
    assert caught.value.http_status == 422
    assert "must be a valid IPv4 or IPv6 address" in caught.value.message


@pytest.mark.parametrize("status", [401, 403])
async def test_rejected_key_is_error(
    loopback: LoopbackServer, shared_fixtures: Path, status: int
) -> None:
    body = recorded(shared_fixtures, "error_401_auth_failed.json")
    loopback.route("GET", PATH, Reply(status, body))
    with pytest.raises(UpstreamError, match="rejected the API key") as caught:
        await lookup(loopback, "118.25.6.39")
    assert KEY not in str(caught.value)


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
    loopback: LoopbackServer, body: bytes, message: str
) -> None:
    loopback.route("GET", PATH, Reply(200, body))
    with pytest.raises(UpstreamError, match=message):
        await lookup(loopback, "118.25.6.39")


async def test_non_utf8_body_is_replaced(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "check_38.75.137.9_clean_nonverbose.json")
    body = body.replace(b"GlobalTeleHost Corp.", b"Global\xffTele\xc3")
    loopback.route("GET", PATH, Reply(200, body))
    result = await lookup(loopback, "38.75.137.9")
    assert result.data["isp"] == "Global\ufffdTele\ufffd"
    assert result.verdict is Verdict.CLEAN


async def test_loaded_fingerprint_omits_key() -> None:
    settings = Settings(abuseipdb_api_key=KEY)
    async with httpx.AsyncClient(trust_env=False) as client:
        context = SourceContext(settings=settings, store=None, http=client)  # type: ignore[arg-type]
        [source] = abuseipdb.load(context)
    assert KEY not in source.fingerprint  # type: ignore[attr-defined]
