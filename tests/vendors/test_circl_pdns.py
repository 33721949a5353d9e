"""CIRCL passive DNS adapter against recorded responses on a loopback server."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from iocscope.config import Settings
from iocscope.errors import UpstreamError
from iocscope.models import Observable, ObservableType, SourceResult, Status, Verdict
from iocscope.sources.vendors import circl_pdns
from iocscope.sources.vendors.circl_pdns import CirclPassiveDNS
from tests.loopback import LoopbackServer, Reply
from tests.vendors.support import (
    GARBLED,
    NOT_UTF8,
    REPLACEMENT,
    PdnsSettings,
    make_observable,
    output_of_lookups,
    recorded_body,
    run_lookup,
    settings_for,
)

NAME = "circl_pdns"
USER = "csirt-example"
PASSWORD = "pdns-test-password-a83f"
PATH = "/pdns/query/ietf.org"
NDJSON = "application/x-ndjson"


async def lookup(
    server: LoopbackServer, target: Observable | None = None, **settings: Any
) -> SourceResult:
    settings.setdefault("circl_pdns_user", USER)
    settings.setdefault("circl_pdns_password", SecretStr(PASSWORD))
    return await run_lookup(
        CirclPassiveDNS,
        settings_for(server, NAME, settings_type=PdnsSettings, **settings),
        target or make_observable(ObservableType.DOMAIN, "ietf.org"),
    )


def records(shared: Path, name: str) -> Reply:
    return Reply(200, recorded_body(shared, NAME, name), content_type=NDJSON)


def ietf(shared: Path) -> Reply:
    return records(shared, "query_ietf.org_cof_draft_example.ndjson.txt")


async def test_hit_is_context(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    loopback.route("GET", PATH, ietf(shared_fixtures))
    result = await lookup(loopback)
    assert result.status is Status.OK
    assert result.verdict is Verdict.UNKNOWN
    assert result.score is None
    assert result.summary == (
        "3 passive DNS records (A 1, AAAA 1, NS 1); "
        "first seen 2011-02-22, last seen 2014-01-07"
    )


async def test_hit_records(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    loopback.route("GET", PATH, ietf(shared_fixtures))
    result = await lookup(loopback)
    newest = result.data["records"][0]
    assert newest["rrtype"] == "NS"
    assert newest["rdata"] == ["ns1.yyz1.afilias-nst.info"]
    assert newest["time_last"] == "2014-01-07T11:49:35Z"
    assert result.data["first_seen"] == "2011-02-22T18:06:42Z"


async def test_list_rdata(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    name = "query_www.circl.lu_cname_testdata.ndjson.txt"
    loopback.route("GET", "/pdns/query/www.circl.lu", records(shared_fixtures, name))
    target = make_observable(
        ObservableType.DOMAIN, "www.circl.lu", registered_domain="circl.lu"
    )
    result = await lookup(loopback, target)
    assert result.data["records"][0]["rdata"] == ["cpab.circl.lu"]
    assert result.data["rrtypes"] == {"CNAME": 2}


async def test_basic_auth_sent(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    loopback.route("GET", PATH, ietf(shared_fixtures))
    await lookup(loopback)
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert loopback.requests[0].headers["authorization"] == f"Basic {token}"


async def test_ip_path(loopback: LoopbackServer) -> None:
    loopback.route(
        "GET", "/pdns/query/64.170.98.32", Reply(200, "", content_type=NDJSON)
    )
    await lookup(loopback, make_observable(ObservableType.IP, "64.170.98.32"))
    assert loopback.requests[0].path == "/pdns/query/64.170.98.32"


async def test_empty_not_found(loopback: LoopbackServer) -> None:
    loopback.route("GET", PATH, Reply(200, "\n", content_type=NDJSON))
    result = await lookup(loopback)
    assert result.status is Status.NOT_FOUND
    assert result.verdict is None


async def test_empty_with_server_error(loopback: LoopbackServer) -> None:
    headers = {"x-dribble-errors": "backend timeout"}
    loopback.route("GET", PATH, Reply(200, "", headers, content_type=NDJSON))
    with pytest.raises(UpstreamError, match="server-side error"):
        await lookup(loopback)


def test_no_fields_no_key() -> None:
    # The engine skips a source for "no key" when its key setting reads as None,
    # which is what a Settings without the credential fields gives.
    assert Settings().secret(circl_pdns.SPEC.key_setting or "") is None


async def test_garbled_body(loopback: LoopbackServer) -> None:
    loopback.route("GET", PATH, Reply(200, GARBLED, content_type="text/html"))
    with pytest.raises(UpstreamError, match="line 1 is not JSON"):
        await lookup(loopback)


async def test_non_record_line(loopback: LoopbackServer) -> None:
    loopback.route("GET", PATH, Reply(200, '{"error": "x"}\n', content_type=NDJSON))
    with pytest.raises(UpstreamError, match="not a DNS record"):
        await lookup(loopback)


async def test_non_utf8_replaced(loopback: LoopbackServer) -> None:
    line = b'{"rrname": "ietf.org", "rrtype": "TXT", "rdata": "' + NOT_UTF8 + b'"}'
    loopback.route("GET", PATH, Reply(200, line, content_type=NDJSON))
    result = await lookup(loopback)
    assert result.data["records"][0]["rdata"] == [
        f"Soci{REPLACEMENT}t{REPLACEMENT} {REPLACEMENT}"
    ]


async def test_password_never_logged(
    loopback: LoopbackServer, shared_fixtures: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # test_common_failures.py covers the failures without a vendor body.
    replies = [
        ietf(shared_fixtures),
    ]
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    texts = await output_of_lookups(
        caplog, loopback, ("GET", PATH), replies, lambda: lookup(loopback)
    )
    assert all(token in r.headers["authorization"] for r in loopback.requests)
    assert not [text for text in texts if PASSWORD in text or token in text]
