"""URLhaus API adapter against recorded responses replayed on a loopback server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from iocscope.errors import RateLimited, UpstreamError
from iocscope.models import ObservableType, SourceResult, Status, Verdict
from iocscope.sources.vendors import urlhaus_api
from iocscope.sources.vendors.urlhaus_api import UrlhausApi
from tests.loopback import LoopbackServer, Reply
from tests.vendors.support import (
    AUTH_KEY,
    LATIN1,
    form_of,
    make_observable,
    output_of_lookups,
    recorded_body,
    run_lookup,
    settings_for,
)

NAME = "urlhaus_api"
URL = (
    "http://sskymedia.com/VMYB-ht_JAQo-gi/INV/99401FORPO/20673114777/US/"
    "Outstanding-Invoices/"
)
MD5 = "1585ad28f7d1e0ca696e6c6c2f1d008a"
SHA256 = "35e304d10d53834e3e41035d12122773c9a4d183a24e03f980ad3e6b2ecde7fa"
PAYLOAD = "payload_md5_1585ad28_partially_redacted.edited.json"


def recorded(shared: Path, name: str) -> bytes:
    return recorded_body(shared, "urlhaus", name)


def error_bodies(shared: Path) -> list[dict[str, Any]]:
    listing = json.loads(recorded(shared, "error_query_status_values.list.json"))
    return [b for b in listing["bodies"] if b["query_status"] != "no_results"]


async def lookup(
    server: LoopbackServer,
    kind: ObservableType = ObservableType.URL,
    value: str = URL,
    **fields: Any,
) -> SourceResult:
    fields.setdefault("abusech_auth_key", AUTH_KEY)
    settings = settings_for(server, NAME, **fields)
    return await run_lookup(UrlhausApi, settings, make_observable(kind, value))


async def test_url_hit(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    body = recorded(shared_fixtures, "url_sskymedia_emotet_online_docs.json")
    loopback.route("POST", "/v1/url/", Reply(200, body))
    result = await lookup(loopback)
    assert result.status is Status.OK
    assert result.verdict is Verdict.MALICIOUS
    assert result.confidence == 0.9
    assert result.summary == "malware_download URL, online; tags: emotet, epoch2, heodo"
    assert result.data["url_status"] == "online"
    assert result.data["threat"] == "malware_download"
    assert result.data["date_added"] == "2019-01-19 01:33:26 UTC"
    assert result.data["blacklists"]["spamhaus_dbl"] == "abused_legit_malware"
    assert [p["signature"] for p in result.data["payloads"]] == [None, "Heodo"]


async def test_url_tags(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    body = recorded(shared_fixtures, "url_sskymedia_emotet_online_docs.json")
    loopback.route("POST", "/v1/url/", Reply(200, body))
    result = await lookup(loopback)
    assert result.tags == [
        "urlhaus:emotet",
        "urlhaus:epoch2",
        "urlhaus:heodo",
        "threat:malware_download",
        "malware:heodo",
    ]


async def test_url_request(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    body = recorded(shared_fixtures, "url_sskymedia_emotet_online_docs.json")
    loopback.route("POST", "/v1/url/", Reply(200, body))
    await lookup(loopback)
    [request] = loopback.requests
    assert request.method == "POST"
    assert request.path == "/v1/url/"
    assert form_of(request) == {"url": [URL]}
    assert request.headers["auth-key"] == AUTH_KEY
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"


async def test_domain_host(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    body = recorded(shared_fixtures, "host_vektorex.com_docs_truncated.json")
    loopback.route("POST", "/v1/host/", Reply(200, body))
    result = await lookup(loopback, ObservableType.DOMAIN, "vektorex.com")
    assert form_of(loopback.requests[0]) == {"host": ["vektorex.com"]}
    assert result.verdict is Verdict.MALICIOUS
    assert result.summary == (
        "120 malware URLs listed on this host, 2 of the 2 returned online"
    )
    assert result.data["url_count"] == "120"
    assert result.data["urls_online"] == 2
    assert result.data["urls"][0]["url"] == "http://vektorex.com/source/Z/5016223.exe"
    assert "urlhaus:azorult" in result.tags


async def test_offline_host(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    body = recorded(shared_fixtures, "host_ip_45.61.49.78.constructed.json")
    loopback.route("POST", "/v1/host/", Reply(200, body))
    result = await lookup(loopback, ObservableType.IP, "45.61.49.78")
    assert form_of(loopback.requests[0]) == {"host": ["45.61.49.78"]}
    assert result.verdict is Verdict.SUSPICIOUS
    assert result.confidence == 0.6
    assert result.tags == ["urlhaus:elf", "urlhaus:mirai", "threat:malware_download"]


async def test_ipv6_skipped(loopback: LoopbackServer) -> None:
    result = await lookup(loopback, ObservableType.IP, "2001:db8::1")
    assert result.status is Status.SKIPPED
    assert loopback.requests == []


async def test_md5_payload(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    body = recorded(shared_fixtures, PAYLOAD)
    loopback.route("POST", "/v1/payload/", Reply(200, body))
    result = await lookup(loopback, ObservableType.MD5, MD5)
    assert form_of(loopback.requests[0]) == {"md5_hash": [MD5]}
    assert result.verdict is Verdict.MALICIOUS
    assert result.summary == "test_sig exe payload served by 2 malware URLs"
    assert result.tags == ["malware:test_sig", "filetype:exe"]
    assert result.data["sha256"] == SHA256
    assert result.data["virustotal"]["result"] == "17 / 69"
    assert len(result.data["urls"]) == 2


async def test_sha256_form(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    body = recorded(shared_fixtures, PAYLOAD)
    loopback.route("POST", "/v1/payload/", Reply(200, body))
    await lookup(loopback, ObservableType.SHA256, SHA256)
    assert form_of(loopback.requests[0]) == {"sha256_hash": [SHA256]}


@pytest.mark.parametrize(
    ("kind", "value", "path"),
    [
        (ObservableType.URL, URL, "/v1/url/"),
        (ObservableType.DOMAIN, "unknown.example", "/v1/host/"),
        (ObservableType.SHA256, SHA256, "/v1/payload/"),
    ],
)
async def test_no_results(
    loopback: LoopbackServer,
    shared_fixtures: Path,
    kind: ObservableType,
    value: str,
    path: str,
) -> None:
    loopback.route(
        "POST", path, Reply(200, recorded(shared_fixtures, "no_results.json"))
    )
    result = await lookup(loopback, kind, value)
    assert result.status is Status.NOT_FOUND
    assert result.verdict is None
    assert result.data == {"query_status": "no_results"}


async def test_error_statuses(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    bodies = error_bodies(shared_fixtures)
    assert [b["query_status"] for b in bodies] == [
        "invalid_url",
        "invalid_host",
        "http_post_expected",
        "unknown_auth_key",
    ]
    for body in bodies:
        loopback.route("POST", "/v1/url/", Reply(200, json.dumps(body)))
        with pytest.raises(UpstreamError) as caught:
            await lookup(loopback)
        assert caught.value.message == urlhaus_api.QUERY_ERRORS[body["query_status"]]


async def test_bad_key_names_setting(loopback: LoopbackServer) -> None:
    loopback.route(
        "POST", "/v1/url/", Reply(200, '{"query_status": "unknown_auth_key"}')
    )
    with pytest.raises(UpstreamError, match="IOCSCOPE_ABUSECH_AUTH_KEY"):
        await lookup(loopback)


async def test_unknown_status(loopback: LoopbackServer) -> None:
    loopback.route("POST", "/v1/url/", Reply(200, '{"query_status": "maintenance"}'))
    with pytest.raises(UpstreamError, match="unknown query_status 'maintenance'"):
        await lookup(loopback)


async def test_quota_status(loopback: LoopbackServer) -> None:
    body = '{"query_status": "daily_limit_exceeded"}'
    loopback.route("POST", "/v1/url/", Reply(200, body))
    with pytest.raises(RateLimited):
        await lookup(loopback)


async def test_not_an_object(loopback: LoopbackServer) -> None:
    loopback.route("POST", "/v1/url/", Reply(200, '["ok"]'))
    with pytest.raises(UpstreamError, match="not an object"):
        await lookup(loopback)


async def test_empty_400(loopback: LoopbackServer) -> None:
    loopback.route("POST", "/v1/url/", Reply(400, ""))
    with pytest.raises(UpstreamError, match="returned 400 with an empty body"):
        await lookup(loopback)


async def test_latin1_reporter(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    body = recorded(shared_fixtures, "url_sskymedia_emotet_online_docs.json")
    body = body.replace(b'"Cryptolaemus1"', b'"' + LATIN1 + b'"')
    body = body.replace(b'"online"', b'"onl\xffine"', 1)
    loopback.route("POST", "/v1/url/", Reply(200, body))
    result = await lookup(loopback)
    assert result.data["url_status"] == "onl\ufffdine"
    assert result.summary is not None
    assert result.summary.startswith("malware_download URL, onl\ufffdine")


async def test_key_never_leaks(
    loopback: LoopbackServer, shared_fixtures: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # test_common_failures.py covers the failures without a vendor body.
    replies = [
        Reply(200, recorded(shared_fixtures, "url_sskymedia_emotet_online_docs.json")),
        Reply(200, '{"query_status": "unknown_auth_key"}'),
    ]
    texts = await output_of_lookups(
        caplog, loopback, ("POST", "/v1/url/"), replies, lambda: lookup(loopback)
    )
    assert all(r.headers["auth-key"] == AUTH_KEY for r in loopback.requests)
    assert AUTH_KEY not in "\n".join(texts)


async def test_fingerprint_omits_key(loopback: LoopbackServer) -> None:
    settings = settings_for(loopback, NAME, abusech_auth_key=AUTH_KEY)
    async with httpx.AsyncClient(trust_env=False) as client:
        source = UrlhausApi(settings, client)
    assert source.fingerprint == loopback.url
    assert AUTH_KEY not in source.fingerprint


async def test_no_key_skips(loopback: LoopbackServer) -> None:
    result = await lookup(loopback, abusech_auth_key=None)
    assert result.status is Status.SKIPPED
    assert loopback.requests == []
