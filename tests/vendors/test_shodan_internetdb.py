"""Shodan InternetDB adapter against recorded responses on a loopback server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from iocscope.errors import RateLimited, UpstreamError
from iocscope.models import ObservableType, SourceResult, Status, Verdict
from iocscope.sources.vendors.shodan_internetdb import ShodanInternetDB
from tests.loopback import LoopbackServer, Reply
from tests.vendors.support import (
    NOT_UTF8,
    REPLACEMENT,
    local_body,
    make_observable,
    recorded_body,
    run_lookup,
    settings_for,
)

NAME = "shodan_internetdb"


async def lookup(
    server: LoopbackServer, value: str = "1.1.1.1", **settings: Any
) -> SourceResult:
    return await run_lookup(
        ShodanInternetDB,
        settings_for(server, NAME, **settings),
        make_observable(ObservableType.IP, value),
    )


def recorded(shared: Path, name: str) -> bytes:
    return recorded_body(shared, NAME, name)


async def test_hit_is_context(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    loopback.route(
        "GET", "/1.1.1.1", Reply(200, recorded(shared_fixtures, "ip_1.1.1.1.json"))
    )
    result = await lookup(loopback)
    assert result.status is Status.OK
    assert result.verdict is Verdict.UNKNOWN
    assert result.score is None
    assert result.tags == []
    assert result.data["ports"][:3] == [53, 80, 443]
    assert result.data["hostnames"][1] == "one.one.one.one"


async def test_hit_summary(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    loopback.route(
        "GET", "/1.1.1.1", Reply(200, recorded(shared_fixtures, "ip_1.1.1.1.json"))
    )
    result = await lookup(loopback)
    assert result.summary == (
        "11 open ports (53, 80, 443, 2052, 2053, 2082, 2083, 2086 and 3 more), "
        "3 hostnames, 0 CVEs"
    )


async def test_request_path(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    loopback.route(
        "GET", "/8.8.8.8", Reply(200, recorded(shared_fixtures, "ip_8.8.8.8.json"))
    )
    await lookup(loopback, "8.8.8.8")
    assert [(r.method, r.path) for r in loopback.requests] == [("GET", "/8.8.8.8")]


async def test_vulns_stay_context(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "ip_36.94.222.209_vulns.transcribed.json")
    loopback.route("GET", "/36.94.222.209", Reply(200, body))
    result = await lookup(loopback, "36.94.222.209")
    assert result.verdict is Verdict.UNKNOWN
    assert result.tags == ["shodan:database", "exposure:cve"]
    assert len(result.data["vulns"]) == 50
    assert result.summary is not None
    assert result.summary.endswith("50 CVEs; tags: database")


async def test_c2_tag_suspicious(loopback: LoopbackServer) -> None:
    body = local_body(NAME, "ip_c2_tag.constructed.json")
    loopback.route("GET", "/198.51.100.23", Reply(200, body))
    result = await lookup(loopback, "198.51.100.23")
    assert result.verdict is Verdict.SUSPICIOUS
    assert result.score == 60
    assert result.confidence == 0.6
    assert result.tags == ["shodan:c2", "shodan:self-signed"]


async def test_miss_is_not_found(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "not_found_404.json")
    loopback.route("GET", "/1.1.1.1", Reply(404, body))
    result = await lookup(loopback)
    assert result.status is Status.NOT_FOUND
    assert result.verdict is None


async def test_other_404_is_error(loopback: LoopbackServer) -> None:
    # No route: the loopback server returns 404 {"error": "no such route"}.
    with pytest.raises(UpstreamError, match="404 without host data"):
        await lookup(loopback)


async def test_quota_in_200_body(loopback: LoopbackServer) -> None:
    body = json.dumps({"detail": "Rate limit exceeded"})
    loopback.route("GET", "/1.1.1.1", Reply(200, body))
    with pytest.raises(RateLimited):
        await lookup(loopback)


async def test_non_utf8_replaced(loopback: LoopbackServer) -> None:
    body = b'{"ip": "1.1.1.1", "ports": [80], "hostnames": ["' + NOT_UTF8 + b'"]}'
    loopback.route("GET", "/1.1.1.1", Reply(200, body))
    result = await lookup(loopback)
    assert result.data["hostnames"] == [
        f"Soci{REPLACEMENT}t{REPLACEMENT} {REPLACEMENT}"
    ]
