"""urlscan.io search adapter against recorded responses on a loopback server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from iocscope.errors import RateLimited, UpstreamError
from iocscope.models import Observable, ObservableType, SourceResult, Status, Verdict
from iocscope.sources.vendors.urlscan import URLScanSource
from tests.loopback import LoopbackServer, Reply
from tests.vendors.support import (
    NOT_UTF8,
    REPLACEMENT,
    local_body,
    make_observable,
    output_of_lookups,
    recorded_body,
    run_lookup,
    settings_for,
)

NAME = "urlscan"
KEY = "0195f3a2-urlscan-test-key-c41d"
PATH = "/api/v1/search/"


async def lookup(
    server: LoopbackServer, target: Observable | None = None, **settings: Any
) -> SourceResult:
    settings.setdefault("urlscan_api_key", KEY)
    return await run_lookup(
        URLScanSource,
        settings_for(server, NAME, **settings),
        target or make_observable(ObservableType.DOMAIN, "example.com"),
    )


def recorded(shared: Path, name: str) -> bytes:
    return recorded_body(shared, NAME, name)


def example_search(shared: Path) -> bytes:
    return recorded(shared, "search_example.com_captured_2026-10-07_trimmed.json")


def sent_query(server: LoopbackServer) -> dict[str, list[str]]:
    return parse_qs(server.requests[0].query)


async def test_hit_is_context(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    loopback.route("GET", PATH, Reply(200, example_search(shared_fixtures)))
    result = await lookup(loopback)
    assert result.status is Status.OK
    assert result.verdict is Verdict.UNKNOWN
    assert result.score is None
    assert result.summary == "6212 scans; latest 2026-10-07: https://example.com/"
    assert result.data["scans"][0]["asn_name"] == "CLOUDFLARENET - Cloudflare, Inc., US"


async def test_domain_query(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    loopback.route("GET", PATH, Reply(200, example_search(shared_fixtures)))
    await lookup(loopback)
    assert sent_query(loopback) == {"q": ['page.domain:"example.com"'], "size": ["10"]}
    assert loopback.requests[0].headers["api-key"] == KEY


@pytest.mark.parametrize(
    ("kind", "value", "query"),
    [
        (ObservableType.IP, "104.22.12.171", 'page.ip:"104.22.12.171"'),
        (
            ObservableType.URL,
            'https://urlscan.io/"x"',
            'page.url:"https://urlscan.io/\\"x\\"" OR task.url:"https://urlscan.io/\\"x\\""',
        ),
        (ObservableType.SHA256, "e3b0" + "0" * 60, "hash:e3b0" + "0" * 60),
    ],
)
async def test_query_per_type(
    loopback: LoopbackServer,
    shared_fixtures: Path,
    kind: ObservableType,
    value: str,
    query: str,
) -> None:
    body = recorded(shared_fixtures, "search_results_client_test_fixture.json")
    loopback.route("GET", PATH, Reply(200, body))
    await lookup(loopback, make_observable(kind, value))
    assert sent_query(loopback)["q"] == [query]


async def test_malicious_verdict(loopback: LoopbackServer) -> None:
    body = local_body(NAME, "search_malicious_verdict.constructed.json")
    loopback.route("GET", PATH, Reply(200, body))
    result = await lookup(loopback)
    assert result.verdict is Verdict.MALICIOUS
    assert result.score == 90
    assert result.tags == ["category:phishing", "brand:paypal"]
    assert result.data["malicious_scans"] == 1
    assert result.summary is not None
    assert result.summary.startswith("1 of 2 recent scans malicious; 2 scans")


async def test_category_without_flag(loopback: LoopbackServer) -> None:
    scan = {"page": {"url": "http://a.example/"}, "task": {"time": "2026-01-02"}}
    scan["verdicts"] = {"overall": {"malicious": False, "categories": ["phishing"]}}
    loopback.route("GET", PATH, Reply(200, json.dumps({"results": [scan]})))
    result = await lookup(loopback)
    assert result.verdict is Verdict.MALICIOUS
    assert result.score == 60
    assert result.tags == ["category:phishing"]


async def test_empty_not_found(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    body = recorded(shared_fixtures, "search_empty_captured_2026-10-07.json")
    loopback.route("GET", PATH, Reply(200, body))
    result = await lookup(loopback)
    assert result.status is Status.NOT_FOUND
    assert result.verdict is None


async def test_validation_error(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "error_400_validation_client_test.json")
    loopback.route("GET", PATH, Reply(400, body))
    with pytest.raises(UpstreamError, match='ValidationError: "url" is required'):
        await lookup(loopback)


async def test_no_key_401(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    body = recorded(shared_fixtures, "error_401_no_api_key_client_test.json")
    loopback.route("GET", PATH, Reply(401, body))
    with pytest.raises(UpstreamError, match="rejected the API key") as caught:
        await lookup(loopback)
    assert caught.value.http_status == 401


async def test_rate_limited(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    body = recorded(shared_fixtures, "error_429_rate_limited_client_test.json")
    loopback.route("GET", PATH, Reply(429, body, {"Retry-After": "17"}))
    with pytest.raises(RateLimited) as caught:
        await lookup(loopback)
    assert caught.value.retry_after_s == 17


async def test_rate_limit_headers(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "error_429_rate_limited_client_test.json")
    headers = json.loads(
        recorded(shared_fixtures, "headers_rate_limit_client_test.json")
    )
    headers = headers["headers"] | {"X-Rate-Limit-Reset-After": "42"}
    loopback.route("GET", PATH, Reply(429, body, headers))
    with pytest.raises(RateLimited, match="urlscan retrieve quota reached") as caught:
        await lookup(loopback)
    assert caught.value.retry_after_s == 42


async def test_non_utf8_replaced(loopback: LoopbackServer) -> None:
    scan = b'{"page": {"title": "' + NOT_UTF8 + b'", "url": "http://a.example/"}}'
    loopback.route("GET", PATH, Reply(200, b'{"results": [' + scan + b"]}"))
    result = await lookup(loopback)
    assert result.data["scans"][0]["title"] == (
        f"Soci{REPLACEMENT}t{REPLACEMENT} {REPLACEMENT}"
    )


async def test_key_never_logged(
    loopback: LoopbackServer, shared_fixtures: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # test_common_failures.py covers the failures without a vendor body.
    replies = [
        Reply(200, example_search(shared_fixtures)),
        Reply(401, recorded(shared_fixtures, "error_401_no_api_key_client_test.json")),
        Reply(400, recorded(shared_fixtures, "error_400_validation_client_test.json")),
    ]
    texts = await output_of_lookups(
        caplog, loopback, ("GET", PATH), replies, lambda: lookup(loopback)
    )
    assert all(r.headers["api-key"] == KEY for r in loopback.requests)
    assert not [text for text in texts if KEY in text]
