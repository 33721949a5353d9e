"""CIRCL passive DNS adapter against recorded responses on a loopback server."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from iocscope.config import Settings
from iocscope.errors import RateLimited, UpstreamError, UpstreamTimeout
from iocscope.models import Observable, ObservableType, SourceResult, Status, Verdict
from iocscope.sources.base import SourceContext
from iocscope.sources.vendors import circl_pdns
from iocscope.sources.vendors.circl_pdns import CirclPassiveDNS
from tests.loopback import LoopbackServer, Reply
from tests.vendors.netctx_support import (
    GARBLED,
    NOT_UTF8,
    REPLACEMENT,
    all_output,
    observable,
    outcome_text,
    run_lookup,
    upstream,
)

NAME = "circl_pdns"
USER = "csirt-example"
PASSWORD = "pdns-test-password-a83f"
PATH = "/pdns/query/ietf.org"
NDJSON = "application/x-ndjson"


class PdnsSettings(Settings):
    """Settings with the two credential fields the adapter reads."""

    circl_pdns_user: str | None = None
    circl_pdns_password: SecretStr | None = None


def settings_for(server: LoopbackServer, *, timeout_s: float = 5.0) -> Settings:
    return PdnsSettings(
        source_endpoints={NAME: server.url},
        source_timeouts={NAME: timeout_s},
        circl_pdns_user=USER,
        circl_pdns_password=SecretStr(PASSWORD),
    )


async def lookup(
    server: LoopbackServer, target: Observable | None = None, **options: Any
) -> SourceResult:
    return await run_lookup(
        CirclPassiveDNS,
        settings_for(server, **options),
        target or observable(ObservableType.DOMAIN, "ietf.org"),
    )


def records(shared: Path, name: str) -> Reply:
    return Reply(200, upstream(shared, NAME, name), content_type=NDJSON)


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
    result = await lookup(loopback, observable(ObservableType.DOMAIN, "www.circl.lu"))
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
    await lookup(loopback, observable(ObservableType.IP, "64.170.98.32"))
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


async def test_invalid_credentials(loopback: LoopbackServer) -> None:
    loopback.route("GET", PATH, Reply(401, "Unauthorized", content_type="text/plain"))
    with pytest.raises(UpstreamError, match="rejected the API key") as caught:
        await lookup(loopback)
    assert caught.value.http_status == 401


async def test_rate_limited(loopback: LoopbackServer) -> None:
    loopback.route("GET", PATH, Reply(429, "", {"Retry-After": "10"}))
    with pytest.raises(RateLimited) as caught:
        await lookup(loopback)
    assert caught.value.retry_after_s == 10


async def test_server_error_retried(loopback: LoopbackServer) -> None:
    loopback.route("GET", PATH, Reply(503, "Service Unavailable"))
    with pytest.raises(UpstreamError, match="upstream returned 503"):
        await lookup(loopback)
    assert len(loopback.requests) == 2


async def test_hang_times_out(loopback: LoopbackServer) -> None:
    loopback.route("GET", PATH, Reply(delay_s=float("inf")))
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout):
        await lookup(loopback, timeout_s=1.0)
    assert time.monotonic() - started < 3


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
    replies = [
        ietf(shared_fixtures),
        Reply(401, "Unauthorized"),
        Reply(429, "", {"Retry-After": "1"}),
        Reply(500, "oops"),
        Reply(200, GARBLED),
    ]
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    with all_output(caplog) as texts:
        for reply in replies:
            loopback.route("GET", PATH, reply)
            texts.append(await outcome_text(lookup(loopback)))
    assert all(token in r.headers["authorization"] for r in loopback.requests)
    assert not [text for text in texts if PASSWORD in text or token in text]


def test_load_needs_client() -> None:
    context = SourceContext(settings=Settings(), store=None, http=None)
    assert circl_pdns.load(context) == []
