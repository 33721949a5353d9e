"""AlienVault OTX adapter against recorded responses replayed on a loopback server."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from iocscope.config import Settings
from iocscope.errors import RateLimited, UpstreamError, UpstreamTimeout
from iocscope.models import Observable, ObservableType, SourceResult, Status, Verdict
from iocscope.sources.base import SourceContext
from iocscope.sources.vendors import otx
from iocscope.sources.vendors.otx import OTXSource
from tests.loopback import LoopbackServer, Reply
from tests.vendors.netctx_support import (
    GARBLED,
    NOT_UTF8,
    REPLACEMENT,
    all_output,
    local,
    observable,
    outcome_text,
    run_lookup,
    settings_for,
    upstream,
)

NAME = "otx"
KEY = "otx-test-key-9b7d41"
IP_PATH = "/api/v1/indicators/IPv4/103.205.14.176/general"
MD5 = "f5ef3b060fb476253f9a7638f82940d9"


async def lookup(
    server: LoopbackServer, target: Observable | None = None, **settings: Any
) -> SourceResult:
    settings.setdefault("otx_api_key", KEY)
    return await run_lookup(
        OTXSource,
        settings_for(server, NAME, **settings),
        target or observable(ObservableType.IP, "103.205.14.176"),
    )


def recorded(shared: Path, name: str) -> bytes:
    return upstream(shared, NAME, name)


def four_pulses(shared: Path) -> bytes:
    return recorded(shared, "ipv4_103.205.14.176_general_malicious_4_pulses.json")


async def test_four_pulses_malicious(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    loopback.route("GET", IP_PATH, Reply(200, four_pulses(shared_fixtures)))
    result = await lookup(loopback)
    assert result.status is Status.OK
    assert result.verdict is Verdict.MALICIOUS
    assert result.score == 90
    assert result.confidence == 0.8
    assert result.summary == "in 4 OTX pulses"
    assert result.data["pulses"][0]["name"] == "Telnet honeypot logs for 2017-10-19"


async def test_key_header_sent(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    loopback.route("GET", IP_PATH, Reply(200, four_pulses(shared_fixtures)))
    await lookup(loopback)
    assert loopback.requests[0].headers["x-otx-api-key"] == KEY


async def test_adversary_malicious(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(
        shared_fixtures, "file_md5_f5ef3b06_general_malicious_2_pulses.json"
    )
    loopback.route("GET", f"/api/v1/indicators/file/{MD5}/general", Reply(200, body))
    result = await lookup(loopback, observable(ObservableType.MD5, MD5))
    assert result.verdict is Verdict.MALICIOUS
    assert result.score == 75
    assert result.tags == ["adversary:greenbug"]
    assert result.summary == "in 2 OTX pulses (Greenbug)"


async def test_one_pulse_suspicious(loopback: LoopbackServer) -> None:
    body = local(NAME, "hostname_one_pulse.constructed.json")
    path = "/api/v1/indicators/hostname/login.example.org/general"
    loopback.route("GET", path, Reply(200, body))
    target = observable(
        ObservableType.DOMAIN, "login.example.org", registered_domain="example.org"
    )
    result = await lookup(loopback, target)
    assert result.verdict is Verdict.SUSPICIOUS
    assert result.score == 45
    assert result.confidence == 0.5
    assert result.tags == []


async def test_malware_family_malicious(loopback: LoopbackServer) -> None:
    body = local(NAME, "url_malware_family.constructed.json")
    path = "/api/v1/indicators/url/http://198.51.100.9/bins/x86/general"
    loopback.route("GET", path, Reply(200, body))
    target = observable(ObservableType.URL, "http://198.51.100.9/bins/x86")
    result = await lookup(loopback, target)
    assert result.verdict is Verdict.MALICIOUS
    assert result.tags == ["malware:mirai"]


async def test_whitelisted_clean(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "ipv4_1.1.1.1_general_benign_whitelisted.json")
    loopback.route("GET", "/api/v1/indicators/IPv4/1.1.1.1/general", Reply(200, body))
    result = await lookup(loopback, observable(ObservableType.IP, "1.1.1.1"))
    assert result.status is Status.OK
    assert result.verdict is Verdict.CLEAN
    assert result.known_benign is True
    assert result.tags == ["otx-validation:false_positive", "otx-validation:whitelist"]


async def test_no_pulses_not_found(loopback: LoopbackServer) -> None:
    body = local(NAME, "domain_no_pulses.constructed.json")
    path = "/api/v1/indicators/domain/example.net/general"
    loopback.route("GET", path, Reply(200, body))
    target = observable(
        ObservableType.DOMAIN, "example.net", registered_domain="example.net"
    )
    result = await lookup(loopback, target)
    assert result.status is Status.NOT_FOUND
    assert result.verdict is None
    assert result.data["pulse_count"] == 0


async def test_404_not_found(loopback: LoopbackServer) -> None:
    loopback.route("GET", IP_PATH, Reply(404, '{"detail": "Not found."}'))
    result = await lookup(loopback)
    assert result.status is Status.NOT_FOUND


@pytest.mark.parametrize(
    ("kind", "value", "path"),
    [
        (
            ObservableType.IP,
            "2001:db8::1",
            "/api/v1/indicators/IPv6/2001:db8::1/general",
        ),
        (
            ObservableType.SHA256,
            "a" * 64,
            f"/api/v1/indicators/file/{'a' * 64}/general",
        ),
        (
            ObservableType.URL,
            "http://example.com/p?q=1#f",
            "/api/v1/indicators/url/http://example.com/p%3Fq=1%23f/general",
        ),
    ],
)
async def test_section_paths(
    loopback: LoopbackServer, kind: ObservableType, value: str, path: str
) -> None:
    loopback.route("GET", path, Reply(404, "{}"))
    await lookup(loopback, observable(kind, value))
    assert loopback.requests[0].path == path


async def test_invalid_key(loopback: LoopbackServer) -> None:
    loopback.route("GET", IP_PATH, Reply(403, '{"detail": "Authentication required"}'))
    with pytest.raises(UpstreamError, match="rejected the API key") as caught:
        await lookup(loopback)
    assert caught.value.http_status == 403


async def test_rate_limited(loopback: LoopbackServer) -> None:
    body = json.dumps({"detail": "Request was throttled."})
    loopback.route("GET", IP_PATH, Reply(429, body, {"Retry-After": "30"}))
    with pytest.raises(RateLimited) as caught:
        await lookup(loopback)
    assert caught.value.retry_after_s == 30


async def test_throttled_200_body(loopback: LoopbackServer) -> None:
    body = json.dumps({"detail": "Request was throttled. Expected available in 5s."})
    loopback.route("GET", IP_PATH, Reply(200, body))
    with pytest.raises(RateLimited):
        await lookup(loopback)


async def test_server_error_retried(loopback: LoopbackServer) -> None:
    loopback.route("GET", IP_PATH, Reply(500, "Internal Server Error"))
    with pytest.raises(UpstreamError, match="upstream returned 500"):
        await lookup(loopback)
    assert len(loopback.requests) == 2


async def test_hang_times_out(loopback: LoopbackServer) -> None:
    loopback.route("GET", IP_PATH, Reply(delay_s=float("inf")))
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout):
        await lookup(loopback, timeout_s=1.0)
    assert time.monotonic() - started < 3


async def test_garbled_body(loopback: LoopbackServer) -> None:
    loopback.route("GET", IP_PATH, Reply(200, GARBLED))
    with pytest.raises(UpstreamError, match="not JSON"):
        await lookup(loopback)


async def test_non_utf8_replaced(loopback: LoopbackServer) -> None:
    pulse = b'{"name": "' + NOT_UTF8 + b'", "tags": []}'
    body = b'{"pulse_info": {"count": 1, "pulses": [' + pulse + b"]}}"
    loopback.route("GET", IP_PATH, Reply(200, body))
    result = await lookup(loopback)
    assert result.data["pulses"][0]["name"] == (
        f"Soci{REPLACEMENT}t{REPLACEMENT} {REPLACEMENT}"
    )


async def test_key_never_logged(
    loopback: LoopbackServer, shared_fixtures: Path, caplog: pytest.LogCaptureFixture
) -> None:
    replies = [
        Reply(200, four_pulses(shared_fixtures)),
        Reply(403, "Forbidden"),
        Reply(429, "{}", {"Retry-After": "1"}),
        Reply(500, "oops"),
        Reply(200, GARBLED),
    ]
    with all_output(caplog) as texts:
        for reply in replies:
            loopback.route("GET", IP_PATH, reply)
            texts.append(await outcome_text(lookup(loopback)))
    assert all(r.headers["x-otx-api-key"] == KEY for r in loopback.requests)
    assert not [text for text in texts if KEY in text]


def test_load_needs_client() -> None:
    context = SourceContext(settings=Settings(), store=None, http=None)
    assert otx.load(context) == []
