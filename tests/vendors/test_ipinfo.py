"""IPinfo adapter against recorded responses replayed on a loopback server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from iocscope.config import Settings
from iocscope.errors import RateLimited
from iocscope.models import ObservableType, SourceResult, Status, Verdict
from iocscope.sources.vendors.ipinfo import IPinfoSource
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

NAME = "ipinfo"
TOKEN = "ipinfo-test-token-3e8a90"
PATH = "/8.8.8.8/json"


async def lookup(
    server: LoopbackServer, value: str = "8.8.8.8", **settings: Any
) -> SourceResult:
    return await run_lookup(
        IPinfoSource,
        settings_for(server, NAME, **settings),
        make_observable(ObservableType.IP, value),
    )


def recorded(shared: Path, name: str) -> bytes:
    return recorded_body(shared, NAME, name)


def keyless_answer(shared: Path) -> bytes:
    return recorded(shared, "ip_8.8.8.8_json_no_token_measured.json")


async def test_hit_is_context(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    loopback.route("GET", PATH, Reply(200, keyless_answer(shared_fixtures)))
    result = await lookup(loopback)
    assert result.status is Status.OK
    assert result.verdict is Verdict.UNKNOWN
    assert result.score is None
    assert result.tags == ["country:us", "asn:as15169", "network:anycast"]


async def test_hit_summary(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    loopback.route("GET", PATH, Reply(200, keyless_answer(shared_fixtures)))
    result = await lookup(loopback)
    assert result.summary == (
        "AS15169 Google LLC; Mountain View, California, US; hostname dns.google; "
        "anycast"
    )


async def test_org_split_into_asn(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    loopback.route("GET", PATH, Reply(200, keyless_answer(shared_fixtures)))
    result = await lookup(loopback)
    assert result.data["asn"] == "AS15169"
    assert result.data["as_name"] == "Google LLC"
    assert "readme" not in result.data


async def test_no_token_no_header(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    loopback.route("GET", PATH, Reply(200, keyless_answer(shared_fixtures)))
    await lookup(loopback)
    assert "authorization" not in loopback.requests[0].headers


async def test_token_as_bearer(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    body = recorded(shared_fixtures, "ip_8.8.8.8_json_with_token_readme_example.json")
    loopback.route("GET", PATH, Reply(200, body))
    await lookup(loopback, ipinfo_token=TOKEN)
    assert loopback.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert loopback.requests[0].query == ""


async def test_privacy_flags(loopback: LoopbackServer) -> None:
    body = local_body(NAME, "ip_privacy_vpn.constructed.json")
    loopback.route("GET", "/198.51.100.44/json", Reply(200, body))
    result = await lookup(loopback, "198.51.100.44", ipinfo_token=TOKEN)
    assert result.verdict is Verdict.UNKNOWN
    assert result.tags[:2] == ["privacy:vpn", "privacy:hosting"]
    assert result.data["privacy"]["service"] == "ExampleVPN"
    assert result.data["asn"] == "AS64501"


async def test_bogon_not_found(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    body = recorded(shared_fixtures, "ip_203.0.113.9_bogon.json")
    loopback.route("GET", "/203.0.113.9/json", Reply(200, body))
    result = await lookup(loopback, "203.0.113.9")
    assert result.status is Status.NOT_FOUND
    assert result.data == {"bogon": True}


async def test_rate_limited(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    body = recorded(shared_fixtures, "error_429_rate_limited.client_test.json")
    loopback.route("GET", PATH, Reply(429, body, {"Retry-After": "3600"}))
    with pytest.raises(RateLimited) as caught:
        await lookup(loopback)
    assert caught.value.retry_after_s == 3600


async def test_error_in_200_body(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "error_429_rate_limited.client_test.json")
    loopback.route("GET", PATH, Reply(200, body))
    with pytest.raises(RateLimited):
        await lookup(loopback)


async def test_non_utf8_replaced(loopback: LoopbackServer) -> None:
    body = b'{"ip": "8.8.8.8", "org": "AS64500 ' + NOT_UTF8 + b'", "country": "FR"}'
    loopback.route("GET", PATH, Reply(200, body))
    result = await lookup(loopback)
    assert result.data["as_name"] == f"Soci{REPLACEMENT}t{REPLACEMENT} {REPLACEMENT}"


async def test_token_never_logged(
    loopback: LoopbackServer, shared_fixtures: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # test_common_failures.py covers the failures without a vendor body.
    replies = [
        Reply(200, keyless_answer(shared_fixtures)),
    ]
    texts = await output_of_lookups(
        caplog,
        loopback,
        ("GET", PATH),
        replies,
        lambda: lookup(loopback, ipinfo_token=TOKEN),
    )
    assert all(TOKEN in r.headers["authorization"] for r in loopback.requests)
    assert not [text for text in texts if TOKEN in text]


def test_fingerprint_omits_token() -> None:
    source = IPinfoSource(Settings(ipinfo_token=TOKEN), client=None)  # type: ignore[arg-type]
    assert TOKEN not in source.fingerprint
