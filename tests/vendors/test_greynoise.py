"""GreyNoise Community adapter against a loopback server replaying recorded bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from iocscope.config import Settings
from iocscope.errors import RateLimited, UpstreamError, UpstreamTimeout
from iocscope.models import Observable, ObservableType, SourceResult, Status, Verdict
from iocscope.sources.base import SourceContext
from iocscope.sources.vendors import greynoise
from iocscope.sources.vendors.greynoise import GreyNoiseSource
from tests.conftest import LOCAL_FIXTURES
from tests.loopback import LoopbackServer, Reply

KEY = "greynoise-test-key-91f3aa"


@pytest.fixture
def recorded(shared_fixtures: Path) -> Path:
    return shared_fixtures / "upstream" / "greynoise_community"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


def make_source(
    server: LoopbackServer, client: httpx.AsyncClient, **settings: object
) -> GreyNoiseSource:
    config = Settings(
        greynoise_api_key=KEY,
        source_endpoints={"greynoise": server.url},
        **settings,  # type: ignore[arg-type]
    )
    return GreyNoiseSource(config, client)


def ip(value: str) -> Observable:
    return Observable(type=ObservableType.IP, value=value, input=value, scope="global")


async def lookup_fixture(
    server: LoopbackServer,
    client: httpx.AsyncClient,
    path: Path,
    address: str,
    status: int = 200,
) -> SourceResult:
    body = path.read_bytes()  # noqa: ASYNC240 - a small local fixture file
    server.route("GET", f"/v3/community/{address}", Reply(status, body))
    return await make_source(server, client).lookup(ip(address))


async def test_malicious_scanner(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path
) -> None:
    path = recorded / "ip_222.187.238.136_noise_malicious.json"
    result = await lookup_fixture(loopback, client, path, "222.187.238.136")
    assert result.status is Status.OK
    assert result.verdict is Verdict.MALICIOUS
    assert result.tags == ["greynoise:noise", "greynoise:malicious"]
    assert result.summary is not None and "last seen 2021-06-23" in result.summary
    assert result.data["link"] == "https://viz.greynoise.io/ip/222.187.238.136"


async def test_request_path_and_key_header(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path
) -> None:
    path = recorded / "ip_51.91.185.74_noise_malicious.json"
    await lookup_fixture(loopback, client, path, "51.91.185.74")
    assert len(loopback.requests) == 1
    seen = loopback.requests[0]
    assert seen.path == "/v3/community/51.91.185.74"
    assert seen.query == ""
    assert seen.headers["key"] == KEY
    assert seen.headers["accept"] == "application/json"


async def test_riot_benign_is_clean_and_known(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path
) -> None:
    path = recorded / "ip_8.8.8.8_riot_benign.json"
    result = await lookup_fixture(loopback, client, path, "8.8.8.8")
    assert result.verdict is Verdict.CLEAN
    assert result.known_benign is True
    assert result.tags == ["greynoise:riot"]
    assert result.summary is not None
    assert "known benign service (Google Public DNS)" in result.summary


async def test_riot_docs_example(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path
) -> None:
    path = recorded / "ip_1.2.3.4_riot_cloudflare_docs_example.json"
    result = await lookup_fixture(loopback, client, path, "1.2.3.4")
    assert result.verdict is Verdict.CLEAN
    assert result.data["name"] == "Cloudflare"


async def test_benign_scanner_is_clean_not_known(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path
) -> None:
    path = recorded / "ip_71.6.135.131_noise_benign_shodan.json"
    result = await lookup_fixture(loopback, client, path, "71.6.135.131")
    assert result.verdict is Verdict.CLEAN
    assert result.known_benign is False
    assert result.tags == ["greynoise:noise", "greynoise:benign"]
    assert result.summary is not None and "Shodan.io" in result.summary


async def test_unknown_noise_is_context_only(
    loopback: LoopbackServer, client: httpx.AsyncClient
) -> None:
    path = LOCAL_FIXTURES / "greynoise" / "ip_noise_unknown.constructed.json"
    result = await lookup_fixture(loopback, client, path, "45.83.64.11")
    assert result.status is Status.OK
    assert result.verdict is Verdict.UNKNOWN
    assert result.tags == ["greynoise:noise"]


async def test_not_observed_404_is_not_found(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path
) -> None:
    path = recorded / "ip_1.2.3.4_not_observed_404.json"
    result = await lookup_fixture(loopback, client, path, "1.2.3.4", status=404)
    assert result.status is Status.NOT_FOUND
    assert result.verdict is None


async def test_not_observed_200_is_not_found(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path
) -> None:
    path = recorded / "ip_123.123.115.117_not_observed.json"
    result = await lookup_fixture(loopback, client, path, "123.123.115.117")
    assert result.status is Status.NOT_FOUND


async def test_404_without_vendor_body_is_error(
    loopback: LoopbackServer, client: httpx.AsyncClient
) -> None:
    loopback.route("GET", "/v3/community/1.2.3.4", Reply(404, b'{"detail": "x"}'))
    with pytest.raises(UpstreamError, match="without noise or riot fields"):
        await make_source(loopback, client).lookup(ip("1.2.3.4"))


async def test_unauthenticated_429_is_rate_limited(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path
) -> None:
    body = (recorded / "error_429_unauthenticated_daily_limit.json").read_bytes()
    loopback.route("GET", "/v3/community/1.2.3.4", Reply(429, body))
    with pytest.raises(RateLimited) as caught:
        await make_source(loopback, client).lookup(ip("1.2.3.4"))
    assert "daily rate limit of 100 requests" in caught.value.message
    assert caught.value.retry_after_s is None


async def test_429_keeps_retry_after(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path
) -> None:
    body = (recorded / "error_429_unauthenticated_daily_limit.json").read_bytes()
    reply = Reply(429, body, {"Retry-After": "120"})
    loopback.route("GET", "/v3/community/1.2.3.4", reply)
    with pytest.raises(RateLimited) as caught:
        await make_source(loopback, client).lookup(ip("1.2.3.4"))
    assert caught.value.retry_after_s == 120


async def test_limit_body_in_200_is_rate_limited(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path
) -> None:
    body = (recorded / "error_429_unauthenticated_daily_limit.json").read_bytes()
    loopback.route("GET", "/v3/community/1.2.3.4", Reply(200, body))
    with pytest.raises(RateLimited, match="daily rate limit"):
        await make_source(loopback, client).lookup(ip("1.2.3.4"))


@pytest.mark.parametrize("status", [401, 403])
async def test_rejected_key_is_error(
    loopback: LoopbackServer, client: httpx.AsyncClient, status: int
) -> None:
    body = b'{"message": "invalid api key"}'
    loopback.route("GET", "/v3/community/1.2.3.4", Reply(status, body))
    with pytest.raises(UpstreamError, match="rejected the API key") as caught:
        await make_source(loopback, client).lookup(ip("1.2.3.4"))
    assert KEY not in str(caught.value)


async def test_400_is_error(
    loopback: LoopbackServer, client: httpx.AsyncClient
) -> None:
    body = b'{"message": "Request is not a valid routable IPv4 address"}'
    loopback.route("GET", "/v3/community/1.2.3.4", Reply(400, body))
    with pytest.raises(UpstreamError, match="upstream returned 400"):
        await make_source(loopback, client).lookup(ip("1.2.3.4"))


async def test_5xx_retried_once_then_error(
    loopback: LoopbackServer, client: httpx.AsyncClient
) -> None:
    loopback.route("GET", "/v3/community/1.2.3.4", Reply(500, b"{}"))
    with pytest.raises(UpstreamError, match="upstream returned 500"):
        await make_source(loopback, client).lookup(ip("1.2.3.4"))
    assert len(loopback.requests) == 2


async def test_hanging_server_times_out(
    loopback: LoopbackServer, client: httpx.AsyncClient
) -> None:
    reply = Reply(200, b"{}", delay_s=float("inf"))
    loopback.route("GET", "/v3/community/1.2.3.4", reply)
    source = make_source(loopback, client, source_timeouts={"greynoise": 0.5})
    with pytest.raises(UpstreamTimeout, match=r"timed out: no response within 0\.5 s"):
        await source.lookup(ip("1.2.3.4"))


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
    loopback: LoopbackServer, client: httpx.AsyncClient, body: bytes, message: str
) -> None:
    loopback.route("GET", "/v3/community/1.2.3.4", Reply(200, body))
    with pytest.raises(UpstreamError, match=message):
        await make_source(loopback, client).lookup(ip("1.2.3.4"))


async def test_non_utf8_body_is_replaced(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path
) -> None:
    body = (recorded / "ip_71.6.135.131_noise_benign_shodan.json").read_bytes()
    body = body.replace(b"Shodan.io", b"Sh\xf6dan\x80.io")
    loopback.route("GET", "/v3/community/71.6.135.131", Reply(200, body))
    result = await make_source(loopback, client).lookup(ip("71.6.135.131"))
    assert result.data["name"] == "Sh\ufffddan\ufffd.io"


async def test_ipv6_skipped_without_request(
    loopback: LoopbackServer, client: httpx.AsyncClient
) -> None:
    result = await make_source(loopback, client).lookup(ip("2606:4700:4700::1111"))
    assert result.status is Status.SKIPPED
    assert result.reason == "unsupported type"
    assert loopback.requests == []


def test_load_needs_http_client() -> None:
    context = SourceContext(settings=Settings(), store=None, http=None)  # type: ignore[arg-type]
    assert greynoise.load(context) == []


async def test_load_builds_source(client: httpx.AsyncClient) -> None:
    context = SourceContext(settings=Settings(), store=None, http=client)  # type: ignore[arg-type]
    sources = greynoise.load(context)
    assert [source.spec.name for source in sources] == ["greynoise"]
