"""GreyNoise Community adapter against a loopback server replaying recorded bodies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from iocscope.errors import RateLimited, UpstreamError
from iocscope.models import ObservableType, SourceResult, Status, Verdict
from iocscope.sources.vendors.greynoise import GreyNoiseSource
from tests.loopback import LoopbackServer, Reply
from tests.vendors.support import (
    local_body,
    make_observable,
    recorded_body,
    run_lookup,
    settings_for,
)

NAME = "greynoise"
KEY = "greynoise-test-key-91f3aa"


async def lookup(
    server: LoopbackServer, address: str = "1.2.3.4", **fields: Any
) -> SourceResult:
    fields.setdefault("greynoise_api_key", KEY)
    return await run_lookup(
        GreyNoiseSource,
        settings_for(server, NAME, **fields),
        make_observable(ObservableType.IP, address),
    )


async def lookup_body(
    server: LoopbackServer, body: bytes, address: str, status: int = 200
) -> SourceResult:
    server.route("GET", f"/v3/community/{address}", Reply(status, body))
    return await lookup(server, address)


def recorded(shared: Path, name: str) -> bytes:
    return recorded_body(shared, "greynoise_community", name)


async def test_malicious_scanner(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "ip_222.187.238.136_noise_malicious.json")
    result = await lookup_body(loopback, body, "222.187.238.136")
    assert result.status is Status.OK
    assert result.verdict is Verdict.MALICIOUS
    assert result.tags == ["greynoise:noise", "greynoise:malicious"]
    assert result.summary is not None and "last seen 2021-06-23" in result.summary
    assert result.data["link"] == "https://viz.greynoise.io/ip/222.187.238.136"


async def test_request_path_and_key_header(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "ip_51.91.185.74_noise_malicious.json")
    await lookup_body(loopback, body, "51.91.185.74")
    assert len(loopback.requests) == 1
    seen = loopback.requests[0]
    assert seen.path == "/v3/community/51.91.185.74"
    assert seen.query == ""
    assert seen.headers["key"] == KEY
    assert seen.headers["accept"] == "application/json"


async def test_riot_benign_is_clean_and_known(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "ip_8.8.8.8_riot_benign.json")
    result = await lookup_body(loopback, body, "8.8.8.8")
    assert result.verdict is Verdict.CLEAN
    assert result.known_benign is True
    assert result.tags == ["greynoise:riot"]
    assert result.summary is not None
    assert "known benign service (Google Public DNS)" in result.summary


async def test_riot_docs_example(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "ip_1.2.3.4_riot_cloudflare_docs_example.json")
    result = await lookup_body(loopback, body, "1.2.3.4")
    assert result.verdict is Verdict.CLEAN
    assert result.data["name"] == "Cloudflare"


async def test_benign_scanner_is_clean_not_known(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "ip_71.6.135.131_noise_benign_shodan.json")
    result = await lookup_body(loopback, body, "71.6.135.131")
    assert result.verdict is Verdict.CLEAN
    assert result.known_benign is False
    assert result.tags == ["greynoise:noise", "greynoise:benign"]
    assert result.summary is not None and "Shodan.io" in result.summary


async def test_unknown_noise_is_context_only(loopback: LoopbackServer) -> None:
    body = local_body(NAME, "ip_noise_unknown.constructed.json")
    result = await lookup_body(loopback, body, "45.83.64.11")
    assert result.status is Status.OK
    assert result.verdict is Verdict.UNKNOWN
    assert result.tags == ["greynoise:noise"]


async def test_not_observed_404_is_not_found(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "ip_1.2.3.4_not_observed_404.json")
    result = await lookup_body(loopback, body, "1.2.3.4", status=404)
    assert result.status is Status.NOT_FOUND
    assert result.verdict is None


async def test_not_observed_200_is_not_found(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "ip_123.123.115.117_not_observed.json")
    result = await lookup_body(loopback, body, "123.123.115.117")
    assert result.status is Status.NOT_FOUND


async def test_404_without_vendor_body_is_error(loopback: LoopbackServer) -> None:
    loopback.route("GET", "/v3/community/1.2.3.4", Reply(404, b'{"detail": "x"}'))
    with pytest.raises(UpstreamError, match="without noise or riot fields"):
        await lookup(loopback, "1.2.3.4")


async def test_unauthenticated_429_is_rate_limited(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "error_429_unauthenticated_daily_limit.json")
    loopback.route("GET", "/v3/community/1.2.3.4", Reply(429, body))
    with pytest.raises(RateLimited) as caught:
        await lookup(loopback, "1.2.3.4")
    assert "daily rate limit of 100 requests" in caught.value.message
    assert caught.value.retry_after_s is None


async def test_429_keeps_retry_after(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "error_429_unauthenticated_daily_limit.json")
    reply = Reply(429, body, {"Retry-After": "120"})
    loopback.route("GET", "/v3/community/1.2.3.4", reply)
    with pytest.raises(RateLimited) as caught:
        await lookup(loopback, "1.2.3.4")
    assert caught.value.retry_after_s == 120


async def test_limit_body_in_200_is_rate_limited(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "error_429_unauthenticated_daily_limit.json")
    loopback.route("GET", "/v3/community/1.2.3.4", Reply(200, body))
    with pytest.raises(RateLimited, match="daily rate limit"):
        await lookup(loopback, "1.2.3.4")


async def test_400_is_error(loopback: LoopbackServer) -> None:
    body = b'{"message": "Request is not a valid routable IPv4 address"}'
    loopback.route("GET", "/v3/community/1.2.3.4", Reply(400, body))
    with pytest.raises(UpstreamError, match="upstream returned 400"):
        await lookup(loopback, "1.2.3.4")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{'ip': '1.2.3.4'", "not JSON"),
        (b"", "empty body"),
        (b"null", "not an object"),
        (b'{"message": "Success"}', "without noise or riot fields"),
    ],
)
async def test_garbled_body_is_error(
    loopback: LoopbackServer, body: bytes, message: str
) -> None:
    loopback.route("GET", "/v3/community/1.2.3.4", Reply(200, body))
    with pytest.raises(UpstreamError, match=message):
        await lookup(loopback, "1.2.3.4")


async def test_non_utf8_body_is_replaced(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "ip_71.6.135.131_noise_benign_shodan.json")
    body = body.replace(b"Shodan.io", b"Sh\xf6dan\x80.io")
    loopback.route("GET", "/v3/community/71.6.135.131", Reply(200, body))
    result = await lookup(loopback, "71.6.135.131")
    assert result.data["name"] == "Sh\ufffddan\ufffd.io"


async def test_ipv6_skipped_without_request(loopback: LoopbackServer) -> None:
    result = await lookup(loopback, "2606:4700:4700::1111")
    assert result.status is Status.SKIPPED
    assert result.reason == "unsupported type"
    assert loopback.requests == []
