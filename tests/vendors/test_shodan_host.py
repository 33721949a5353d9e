"""Shodan host adapter against recorded responses replayed on a loopback server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from iocscope.errors import RateLimited, UpstreamError
from iocscope.models import ObservableType, SourceResult, Status, Verdict
from iocscope.sources.vendors.shodan_host import ShodanHost
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

NAME = "shodan_host"
KEY = "shodan-test-key-5f1c2a"
PATH = "/shodan/host/8.8.8.8"


async def lookup(
    server: LoopbackServer, value: str = "8.8.8.8", **settings: Any
) -> SourceResult:
    settings.setdefault("shodan_api_key", KEY)
    return await run_lookup(
        ShodanHost,
        settings_for(server, NAME, **settings),
        make_observable(ObservableType.IP, value),
    )


def docs_example(shared: Path) -> bytes:
    return recorded_body(shared, NAME, "host_8.8.8.8_docs_example.json")


async def test_hit_is_context(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    loopback.route("GET", PATH, Reply(200, docs_example(shared_fixtures)))
    result = await lookup(loopback)
    assert result.status is Status.OK
    assert result.verdict is Verdict.UNKNOWN
    assert result.score is None
    assert result.summary == "Google (AS15169), 1 open ports (53), 0 CVEs"
    assert result.tags == []


async def test_hit_data(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    loopback.route("GET", PATH, Reply(200, docs_example(shared_fixtures)))
    result = await lookup(loopback)
    assert result.data["hostnames"] == ["dns.google"]
    assert result.data["last_update"] == "2021-01-22T08:49:35.190817"
    assert result.data["services"][0]["module"] == "dns-udp"


async def test_key_in_query(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    loopback.route("GET", PATH, Reply(200, docs_example(shared_fixtures)))
    await lookup(loopback)
    assert loopback.requests[0].path == PATH
    assert loopback.requests[0].query == f"key={KEY}"


async def test_malware_tag_suspicious(loopback: LoopbackServer) -> None:
    body = local_body(NAME, "host_malware_tag.constructed.json")
    loopback.route("GET", "/shodan/host/198.51.100.77", Reply(200, body))
    result = await lookup(loopback, "198.51.100.77")
    assert result.verdict is Verdict.SUSPICIOUS
    assert result.score == 60
    assert result.tags == ["shodan:malware", "exposure:cve"]
    assert result.data["vulns"] == ["CVE-2021-41773", "CVE-2021-42013"]
    assert result.data["services"][1]["product"] == "Cobalt Strike Beacon"


async def test_miss_is_not_found(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded_body(shared_fixtures, NAME, "error_404_no_information.json")
    loopback.route("GET", PATH, Reply(404, body))
    result = await lookup(loopback)
    assert result.status is Status.NOT_FOUND
    assert result.verdict is None


async def test_other_404_is_error(loopback: LoopbackServer) -> None:
    with pytest.raises(UpstreamError, match="no such route"):
        await lookup(loopback)


async def test_credits_in_200_body(loopback: LoopbackServer) -> None:
    body = json.dumps({"error": "Insufficient query credits"})
    loopback.route("GET", PATH, Reply(200, body))
    with pytest.raises(RateLimited):
        await lookup(loopback)


async def test_non_utf8_replaced(loopback: LoopbackServer) -> None:
    body = b'{"ip_str": "8.8.8.8", "org": "' + NOT_UTF8 + b'", "ports": []}'
    loopback.route("GET", PATH, Reply(200, body))
    result = await lookup(loopback)
    assert result.data["org"] == f"Soci{REPLACEMENT}t{REPLACEMENT} {REPLACEMENT}"


# Shodan takes the key only as a query parameter, and httpx logs request URLs at
# INFO: this checks that the query string is stripped from those log lines.
async def test_key_never_logged(
    loopback: LoopbackServer, shared_fixtures: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # test_common_failures.py covers the failures without a vendor body.
    replies = [
        Reply(200, docs_example(shared_fixtures)),
    ]
    texts = await output_of_lookups(
        caplog, loopback, ("GET", PATH), replies, lambda: lookup(loopback)
    )
    assert all(KEY in r.query for r in loopback.requests)
    assert not [text for text in texts if KEY in text]
