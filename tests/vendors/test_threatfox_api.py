"""ThreatFox API adapter against recorded responses replayed on a loopback server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from iocscope.errors import UpstreamError
from iocscope.models import ObservableType, SourceResult, Status, Verdict
from iocscope.sources.vendors.threatfox_api import ThreatfoxApi
from tests.loopback import LoopbackServer, Reply
from tests.vendors.support import (
    AUTH_KEY,
    LATIN1,
    local_body,
    make_observable,
    output_of_lookups,
    recorded_body,
    run_lookup,
    settings_for,
)

NAME = "threatfox_api"
PATH = "/api/v1/"
C2_IP = "139.180.203.104"
C2_URL = "http://harold.jetos.com:3606/is-ready"
SAMPLE = "2151c4b970eff0071948dbbc19066aa4"
COBALT = "search_ioc_139.180.203.104_cobaltstrike_docs.json"
HOUDINI = "search_hash_2151c4b9_houdini_docs.json"


def recorded(shared: Path, name: str) -> bytes:
    return recorded_body(shared, "threatfox", name)


async def lookup(
    server: LoopbackServer,
    kind: ObservableType = ObservableType.IP,
    value: str = C2_IP,
    **fields: Any,
) -> SourceResult:
    fields.setdefault("abusech_auth_key", AUTH_KEY)
    settings = settings_for(server, NAME, **fields)
    return await run_lookup(ThreatfoxApi, settings, make_observable(kind, value))


def sent_json(server: LoopbackServer) -> Any:
    return json.loads(server.requests[0].body)


async def test_ip_port_hit(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    loopback.route("POST", PATH, Reply(200, recorded(shared_fixtures, COBALT)))
    result = await lookup(loopback)
    assert result.status is Status.OK
    assert result.verdict is Verdict.MALICIOUS
    assert result.confidence == 0.75
    assert result.summary == "botnet_cc for Cobalt Strike (confidence 75)"
    assert result.tags == ["malware:cobalt-strike", "threat:botnet_cc"]
    assert result.data["first_seen"] == "2020-12-06 09:10:23 UTC"
    assert result.data["iocs"][0]["ioc"] == "139.180.203.104:443"


async def test_ioc_request(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    loopback.route("POST", PATH, Reply(200, recorded(shared_fixtures, COBALT)))
    await lookup(loopback)
    [request] = loopback.requests
    assert request.path == PATH
    assert sent_json(loopback) == {"query": "search_ioc", "search_term": C2_IP}
    assert request.headers["auth-key"] == AUTH_KEY
    assert request.headers["content-type"] == "application/json"


async def test_url_hit(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    loopback.route("POST", PATH, Reply(200, recorded(shared_fixtures, HOUDINI)))
    result = await lookup(loopback, ObservableType.URL, C2_URL)
    assert sent_json(loopback) == {"query": "search_ioc", "search_term": C2_URL}
    assert result.verdict is Verdict.MALICIOUS
    assert result.data["malware"] == ["Houdini"]
    assert "threatfox:wshrat" in result.tags


async def test_substring_ignored(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    # search_ioc matches substrings: the domain is only part of a listed URL.
    loopback.route("POST", PATH, Reply(200, recorded(shared_fixtures, HOUDINI)))
    result = await lookup(loopback, ObservableType.DOMAIN, "harold.jetos.com")
    assert result.status is Status.NOT_FOUND
    assert result.data == {"partial_matches": 1}


async def test_other_ip_ignored(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    loopback.route("POST", PATH, Reply(200, recorded(shared_fixtures, COBALT)))
    result = await lookup(loopback, ObservableType.IP, "139.180.203.10")
    assert result.status is Status.NOT_FOUND


async def test_hash_search(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    loopback.route("POST", PATH, Reply(200, recorded(shared_fixtures, HOUDINI)))
    result = await lookup(loopback, ObservableType.MD5, SAMPLE)
    assert sent_json(loopback) == {"query": "search_hash", "hash": SAMPLE}
    assert result.verdict is Verdict.MALICIOUS
    assert result.summary == "sample linked to 1 IOCs for Houdini (confidence 100)"


async def test_low_confidence(loopback: LoopbackServer) -> None:
    body = local_body("threatfox", "search_ioc_low_confidence.constructed.json")
    loopback.route("POST", PATH, Reply(200, body))
    result = await lookup(loopback, ObservableType.DOMAIN, "low-confidence.example")
    assert result.verdict is Verdict.SUSPICIOUS
    assert result.confidence == 0.25


async def test_no_result(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    body = recorded(shared_fixtures, "search_ioc_no_result.constructed.json")
    loopback.route("POST", PATH, Reply(200, body))
    result = await lookup(loopback)
    assert result.status is Status.NOT_FOUND
    assert result.verdict is None
    assert result.data == {"query_status": "no_result"}


async def test_illegal_term(loopback: LoopbackServer) -> None:
    body = local_body("threatfox", "illegal_search_term.constructed.json")
    loopback.route("POST", PATH, Reply(200, body))
    with pytest.raises(UpstreamError, match="rejected the search term"):
        await lookup(loopback)


@pytest.mark.parametrize("status", ["unknown_auth_key", "illegal_auth_key"])
async def test_bad_key(loopback: LoopbackServer, status: str) -> None:
    loopback.route("POST", PATH, Reply(200, json.dumps({"query_status": status})))
    with pytest.raises(UpstreamError, match="abusech_auth_key"):
        await lookup(loopback)


async def test_unknown_status(loopback: LoopbackServer) -> None:
    loopback.route("POST", PATH, Reply(200, '{"query_status": "no_results"}'))
    with pytest.raises(UpstreamError, match="unknown query_status 'no_results'"):
        await lookup(loopback)


async def test_latin1_malware(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    body = recorded(shared_fixtures, COBALT).replace(
        b'"Cobalt Strike"', b'"' + LATIN1 + b'"'
    )
    loopback.route("POST", PATH, Reply(200, body))
    result = await lookup(loopback)
    assert result.data["malware"] == ["Soci\ufffdt\ufffd Exemple"]


async def test_key_never_leaks(
    loopback: LoopbackServer, shared_fixtures: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # test_common_failures.py covers the failures without a vendor body.
    replies = [
        Reply(200, recorded(shared_fixtures, COBALT)),
        Reply(200, '{"query_status": "illegal_auth_key"}'),
    ]
    texts = await output_of_lookups(
        caplog, loopback, ("POST", PATH), replies, lambda: lookup(loopback)
    )
    assert all(r.headers["auth-key"] == AUTH_KEY for r in loopback.requests)
    assert AUTH_KEY not in "\n".join(texts)
