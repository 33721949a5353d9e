"""AlienVault OTX adapter against recorded responses replayed on a loopback server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from iocscope.errors import RateLimited
from iocscope.models import Observable, ObservableType, SourceResult, Status, Verdict
from iocscope.sources.vendors.otx import OTXSource
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
        target or make_observable(ObservableType.IP, "103.205.14.176"),
    )


def recorded(shared: Path, name: str) -> bytes:
    return recorded_body(shared, NAME, name)


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
    result = await lookup(loopback, make_observable(ObservableType.MD5, MD5))
    assert result.verdict is Verdict.MALICIOUS
    assert result.score == 75
    assert result.tags == ["adversary:greenbug"]
    assert result.summary == "in 2 OTX pulses (Greenbug)"


async def test_one_pulse_suspicious(loopback: LoopbackServer) -> None:
    body = local_body(NAME, "hostname_one_pulse.constructed.json")
    path = "/api/v1/indicators/hostname/login.example.org/general"
    loopback.route("GET", path, Reply(200, body))
    target = make_observable(
        ObservableType.DOMAIN, "login.example.org", registered_domain="example.org"
    )
    result = await lookup(loopback, target)
    assert result.verdict is Verdict.SUSPICIOUS
    assert result.score == 45
    assert result.confidence == 0.5
    assert result.tags == []


async def test_malware_family_malicious(loopback: LoopbackServer) -> None:
    body = local_body(NAME, "url_malware_family.constructed.json")
    path = "/api/v1/indicators/url/http://198.51.100.9/bins/x86/general"
    loopback.route("GET", path, Reply(200, body))
    target = make_observable(ObservableType.URL, "http://198.51.100.9/bins/x86")
    result = await lookup(loopback, target)
    assert result.verdict is Verdict.MALICIOUS
    assert result.tags == ["malware:mirai"]


async def test_whitelisted_clean(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "ipv4_1.1.1.1_general_benign_whitelisted.json")
    loopback.route("GET", "/api/v1/indicators/IPv4/1.1.1.1/general", Reply(200, body))
    result = await lookup(loopback, make_observable(ObservableType.IP, "1.1.1.1"))
    assert result.status is Status.OK
    assert result.verdict is Verdict.CLEAN
    assert result.known_benign is True
    assert result.tags == ["otx-validation:false_positive", "otx-validation:whitelist"]


async def test_no_pulses_not_found(loopback: LoopbackServer) -> None:
    body = local_body(NAME, "domain_no_pulses.constructed.json")
    path = "/api/v1/indicators/domain/example.net/general"
    loopback.route("GET", path, Reply(200, body))
    target = make_observable(
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
    await lookup(loopback, make_observable(kind, value))
    assert loopback.requests[0].path == path


async def test_throttled_200_body(loopback: LoopbackServer) -> None:
    body = json.dumps({"detail": "Request was throttled. Expected available in 5s."})
    loopback.route("GET", IP_PATH, Reply(200, body))
    with pytest.raises(RateLimited):
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
    # test_common_failures.py covers the failures without a vendor body.
    replies = [
        Reply(200, four_pulses(shared_fixtures)),
    ]
    texts = await output_of_lookups(
        caplog, loopback, ("GET", IP_PATH), replies, lambda: lookup(loopback)
    )
    assert all(r.headers["x-otx-api-key"] == KEY for r in loopback.requests)
    assert not [text for text in texts if KEY in text]
