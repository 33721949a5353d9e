"""RDAP adapter against recorded registry responses replayed on a loopback server."""

from __future__ import annotations

import functools
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from iocscope.errors import UpstreamError, UpstreamTimeout
from iocscope.models import ObservableType, SourceResult, Status, Verdict
from iocscope.sources.vendors import rdap
from iocscope.sources.vendors.rdap import Rdap
from tests.loopback import LoopbackServer, Reply
from tests.vendors.support import (
    LATIN1,
    make_observable,
    recorded_body,
    run_lookup,
    settings_for,
)

GOOGLE = "domain_google.com_verisign_2022.json"
DOMAIN_PATH = "/domain/google.com"
# google.com was registered on 1997-09-15T04:00:00Z.
LONG_AFTER = datetime(2024, 1, 1, tzinfo=UTC)
FIVE_DAYS_AFTER = datetime(1997, 9, 20, 4, tzinfo=UTC)
THIRTY_DAYS_AFTER = datetime(1997, 10, 15, 4, tzinfo=UTC)


def recorded(shared: Path, name: str) -> bytes:
    return recorded_body(shared, "rdap", name)


async def lookup(
    server: LoopbackServer,
    kind: ObservableType = ObservableType.DOMAIN,
    value: str = "google.com",
    *,
    now: datetime = LONG_AFTER,
    **fields: Any,
) -> SourceResult:
    settings = settings_for(server, "rdap", timeout_s=1.0, **fields)
    factory = functools.partial(Rdap, clock=lambda: now)
    return await run_lookup(factory, settings, make_observable(kind, value))


async def test_domain_context(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    loopback.route("GET", DOMAIN_PATH, Reply(200, recorded(shared_fixtures, GOOGLE)))
    result = await lookup(loopback)
    assert result.status is Status.OK
    assert result.verdict is Verdict.UNKNOWN
    assert result.tags == []
    assert result.summary == (
        "registered 1997-09-15 (9603 days ago) with MarkMonitor Inc."
    )


async def test_domain_fields(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    loopback.route("GET", DOMAIN_PATH, Reply(200, recorded(shared_fixtures, GOOGLE)))
    result = await lookup(loopback)
    assert result.data["registered"] == "1997-09-15T04:00:00+00:00"
    assert result.data["expires"] == "2028-09-14T04:00:00+00:00"
    assert result.data["age_days"] == 9603
    assert result.data["registrar"] == "MarkMonitor Inc."
    assert result.data["registrar_iana_id"] == "292"
    assert result.data["abuse_email"] == "redacted@example.invalid"
    assert len(result.data["status"]) == 6
    assert result.data["nameservers"][0] == "ns1.google.com"


async def test_newly_registered(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    loopback.route("GET", DOMAIN_PATH, Reply(200, recorded(shared_fixtures, GOOGLE)))
    result = await lookup(loopback, now=FIVE_DAYS_AFTER)
    assert result.verdict is Verdict.SUSPICIOUS
    assert result.tags == ["domain:newly-registered"]
    assert result.data["age_days"] == 5
    assert result.summary is not None
    assert result.summary.startswith("newly registered 1997-09-15 (5 days ago)")


async def test_threshold_is_context(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    loopback.route("GET", DOMAIN_PATH, Reply(200, recorded(shared_fixtures, GOOGLE)))
    result = await lookup(loopback, now=THIRTY_DAYS_AFTER)
    assert result.data["age_days"] == rdap.NEWLY_REGISTERED_DAYS
    assert result.verdict is Verdict.UNKNOWN


async def test_no_registration(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    body = json.loads(recorded(shared_fixtures, GOOGLE))
    body["events"] = [e for e in body["events"] if e["eventAction"] != "registration"]
    loopback.route("GET", DOMAIN_PATH, Reply(200, json.dumps(body)))
    result = await lookup(loopback, now=FIVE_DAYS_AFTER)
    assert result.verdict is Verdict.UNKNOWN
    assert result.summary == (
        "google.com: RDAP gives no registration date with MarkMonitor Inc."
    )


async def test_domain_request(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    loopback.route("GET", DOMAIN_PATH, Reply(200, recorded(shared_fixtures, GOOGLE)))
    await lookup(loopback)
    [request] = loopback.requests
    assert request.method == "GET"
    assert request.path == DOMAIN_PATH
    assert "application/rdap+json" in request.headers["accept"]


async def test_subdomain_queries_parent(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    loopback.route("GET", DOMAIN_PATH, Reply(200, recorded(shared_fixtures, GOOGLE)))
    settings = settings_for(loopback, "rdap")
    target = make_observable(
        ObservableType.DOMAIN, "mail.google.com", registered_domain="google.com"
    )
    await run_lookup(Rdap, settings, target)
    assert loopback.requests[0].path == DOMAIN_PATH


async def test_follows_redirect(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    target = f"{loopback.url}/registry/com/domain/google.com"
    loopback.route("GET", DOMAIN_PATH, Reply(302, "", headers={"Location": target}))
    body = recorded(shared_fixtures, GOOGLE)
    loopback.route("GET", "/registry/com/domain/google.com", Reply(200, body))
    result = await lookup(loopback)
    assert [r.path for r in loopback.requests] == [
        DOMAIN_PATH,
        "/registry/com/domain/google.com",
    ]
    assert result.data["registrar"] == "MarkMonitor Inc."


async def test_relative_redirect(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    location = {"Location": "/registry/domain/google.com"}
    loopback.route("GET", DOMAIN_PATH, Reply(301, "", headers=location))
    body = recorded(shared_fixtures, GOOGLE)
    loopback.route("GET", "/registry/domain/google.com", Reply(200, body))
    result = await lookup(loopback)
    assert result.status is Status.OK


async def test_redirect_loop(loopback: LoopbackServer) -> None:
    loopback.route(
        "GET", DOMAIN_PATH, Reply(302, "", headers={"Location": DOMAIN_PATH})
    )
    with pytest.raises(UpstreamError, match="redirected more than 3 times"):
        await lookup(loopback)
    assert len(loopback.requests) == rdap.MAX_REDIRECTS + 1


async def test_redirect_without_location(loopback: LoopbackServer) -> None:
    loopback.route("GET", DOMAIN_PATH, Reply(302, ""))
    with pytest.raises(UpstreamError, match="without a Location"):
        await lookup(loopback)


async def test_redirect_bad_scheme(loopback: LoopbackServer) -> None:
    location = {"Location": "file:///etc/passwd"}
    loopback.route("GET", DOMAIN_PATH, Reply(302, "", headers=location))
    with pytest.raises(UpstreamError, match="unsafe URL scheme: 'file'"):
        await lookup(loopback)


async def test_arin_network(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    body = recorded(shared_fixtures, "ip_74.125.225.229_arin_google.json")
    loopback.route("GET", "/ip/74.125.225.229", Reply(200, body))
    result = await lookup(loopback, ObservableType.IP, "74.125.225.229")
    assert result.verdict is Verdict.UNKNOWN
    assert result.data["name"] == "GOOGLE"
    assert result.data["handle"] == "NET-74-125-0-0-1"
    assert result.data["start_address"] == "74.125.0.0"
    assert result.data["end_address"] == "74.125.255.255"
    assert result.data["cidrs"] == ["74.125.0.0/16"]
    assert result.data["registrant"] == "Google Inc."
    assert result.data["parent_handle"] == "NET-74-0-0-0-0"
    assert result.summary == (
        "network GOOGLE (NET-74-125-0-0-1), 74.125.0.0 - 74.125.255.255, "
        "registrant Google Inc."
    )


async def test_ripe_network(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    body = recorded(shared_fixtures, "ip_62.239.237.1_ripe_bt.json")
    loopback.route("GET", "/ip/62.239.237.1", Reply(200, body))
    result = await lookup(loopback, ObservableType.IP, "62.239.237.1")
    assert result.data["name"] == "BT-CORPORATE"
    assert result.data["country"] == "GB"
    assert result.data["start_address"] == "62.239.237.0"
    assert result.data["cidrs"] == ["62.239.237.0/24"]
    assert result.tags == ["country:gb"]


async def test_ipv6_network(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    body = recorded(shared_fixtures, "ip_2001-4860-4860--8888_arin_google.json")
    loopback.route("GET", "/ip/2001:4860:4860::8888", Reply(200, body))
    result = await lookup(loopback, ObservableType.IP, "2001:4860:4860::8888")
    assert result.data["name"] == "GOOGLE-IPV6"
    assert result.data["start_address"] == "2001:4860::"
    assert result.data["cidrs"] == ["2001:4860::/32"]


async def test_lacnic_network(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    body = recorded(shared_fixtures, "ip_200.57.141.161_lacnic.json")
    loopback.route("GET", "/ip/200.57.141.161", Reply(200, body))
    result = await lookup(loopback, ObservableType.IP, "200.57.141.161")
    assert result.data["country"] == "MX"
    assert result.data["registrant"] == "Triara.com, S.A. de C.V."
    assert result.data["abuse_email"] == "redacted@example.invalid"
    assert result.tags == ["country:mx"]


async def test_not_found_object(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "error_404_not_found.constructed.json")
    loopback.route("GET", "/domain/unregistered.example", Reply(404, body))
    result = await lookup(loopback, value="unregistered.example")
    assert result.status is Status.NOT_FOUND
    assert result.verdict is None
    assert result.data == {"http_status": 404}


async def test_not_found_empty(loopback: LoopbackServer) -> None:
    loopback.route("GET", "/ip/192.0.2.77", Reply(404, ""))
    result = await lookup(loopback, ObservableType.IP, "192.0.2.77")
    assert result.status is Status.NOT_FOUND


async def test_404_other_body(loopback: LoopbackServer) -> None:
    # The loopback server returns 404 {"error": "no such route"} for unknown paths.
    with pytest.raises(UpstreamError, match="without an RDAP error object"):
        await lookup(loopback)


async def test_hang_times_out(loopback: LoopbackServer) -> None:
    loopback.route("GET", DOMAIN_PATH, Reply(delay_s=float("inf")))
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout):
        await lookup(loopback)
    assert time.monotonic() - started < 2.0


async def test_latin1_registrar(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, GOOGLE)
    body = body.replace(b'"MarkMonitor Inc."', b'"' + LATIN1 + b'"')
    loopback.route("GET", DOMAIN_PATH, Reply(200, body))
    result = await lookup(loopback)
    assert result.data["registrar"] == "Soci\ufffdt\ufffd Exemple"
