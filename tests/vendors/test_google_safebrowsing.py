"""Google Safe Browsing adapter against recorded responses on a loopback server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from iocscope.errors import UpstreamError
from iocscope.models import Observable, ObservableType, SourceResult, Status, Verdict
from iocscope.sources.vendors.google_safebrowsing import GoogleSafeBrowsing
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

NAME = "google_safebrowsing"
KEY = "AIzaSy-gsb-test-key-71c0de"
PATH = "/v4/threatMatches:find"
URL = "http://www.urltocheck1.org/"


async def lookup(
    server: LoopbackServer, target: Observable | None = None, **settings: Any
) -> SourceResult:
    settings.setdefault("google_safebrowsing_api_key", KEY)
    return await run_lookup(
        GoogleSafeBrowsing,
        settings_for(server, NAME, **settings),
        target or make_observable(ObservableType.URL, URL),
    )


def recorded(shared: Path, name: str) -> bytes:
    return recorded_body(shared, NAME, name)


def sent_body(server: LoopbackServer) -> Any:
    return json.loads(server.requests[0].body)


async def test_malware_malicious(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "response_matches_docs_example.json")
    loopback.route("POST", PATH, Reply(200, body))
    result = await lookup(loopback)
    assert result.status is Status.OK
    assert result.verdict is Verdict.MALICIOUS
    assert result.score == 90
    assert result.tags == ["category:malware"]
    assert result.summary == "listed by Google Safe Browsing: malware"


async def test_social_engineering_phishing(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "response_social_engineering_observed.json")
    loopback.route("POST", PATH, Reply(200, body))
    target = make_observable(ObservableType.URL, "https://you-fanspage-recovery.tk/")
    result = await lookup(loopback, target)
    assert result.verdict is Verdict.MALICIOUS
    assert result.tags == ["category:phishing"]
    assert result.data["cache_duration"] == "300s"


async def test_unwanted_software_suspicious(loopback: LoopbackServer) -> None:
    body = local_body(NAME, "response_unwanted_software.constructed.json")
    loopback.route("POST", PATH, Reply(200, body))
    result = await lookup(loopback)
    assert result.verdict is Verdict.SUSPICIOUS
    assert result.score == 60
    assert result.tags == ["category:unwanted-software"]


async def test_empty_answer_not_found(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "response_no_match_empty.json")
    loopback.route("POST", PATH, Reply(200, body))
    result = await lookup(loopback)
    assert result.status is Status.NOT_FOUND
    assert result.verdict is None


async def test_key_in_header_only(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "response_no_match_empty.json")
    loopback.route("POST", PATH, Reply(200, body))
    await lookup(loopback)
    assert loopback.requests[0].headers["x-goog-api-key"] == KEY
    assert loopback.requests[0].query == ""


async def test_request_body(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    body = recorded(shared_fixtures, "response_no_match_empty.json")
    loopback.route("POST", PATH, Reply(200, body))
    await lookup(loopback)
    info = sent_body(loopback)["threatInfo"]
    assert info["threatEntries"] == [{"url": URL}]
    assert info["threatEntryTypes"] == ["URL"]
    assert "SOCIAL_ENGINEERING" in info["threatTypes"]


async def test_domain_sent_as_root_url(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "response_no_match_empty.json")
    loopback.route("POST", PATH, Reply(200, body))
    await lookup(loopback, make_observable(ObservableType.DOMAIN, "example.com"))
    entries = sent_body(loopback)["threatInfo"]["threatEntries"]
    assert entries == [{"url": "http://example.com/"}]


async def test_invalid_key_message(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "error_400_invalid_api_key.constructed.json")
    loopback.route("POST", PATH, Reply(400, body))
    with pytest.raises(UpstreamError) as caught:
        await lookup(loopback)
    assert caught.value.message == (
        "Safe Browsing rejected the API key: check google_safebrowsing_api_key "
        "(HTTP 400, INVALID_ARGUMENT, API_KEY_INVALID)"
    )


async def test_api_disabled_message(loopback: LoopbackServer) -> None:
    body = local_body(NAME, "error_403_api_disabled.constructed.json")
    loopback.route("POST", PATH, Reply(403, body))
    with pytest.raises(UpstreamError, match="has not been used in project") as caught:
        await lookup(loopback)
    assert caught.value.http_status == 403


async def test_empty_400(loopback: LoopbackServer) -> None:
    loopback.route("POST", PATH, Reply(400, ""))
    with pytest.raises(UpstreamError, match="400 with an empty body"):
        await lookup(loopback)


async def test_non_utf8_replaced(loopback: LoopbackServer) -> None:
    match = b'{"threatType": "MALWARE", "threat": {"url": "' + NOT_UTF8 + b'"}}'
    loopback.route("POST", PATH, Reply(200, b'{"matches": [' + match + b"]}"))
    result = await lookup(loopback)
    assert result.data["matched_urls"] == [
        f"Soci{REPLACEMENT}t{REPLACEMENT} {REPLACEMENT}"
    ]


async def test_key_never_logged(
    loopback: LoopbackServer, shared_fixtures: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # test_common_failures.py covers the failures without a vendor body.
    invalid = recorded(shared_fixtures, "error_400_invalid_api_key.constructed.json")
    replies = [
        Reply(200, recorded(shared_fixtures, "response_matches_docs_example.json")),
        Reply(400, invalid),
        Reply(403, local_body(NAME, "error_403_api_disabled.constructed.json")),
    ]
    texts = await output_of_lookups(
        caplog, loopback, ("POST", PATH), replies, lambda: lookup(loopback)
    )
    assert all(r.headers["x-goog-api-key"] == KEY for r in loopback.requests)
    assert not [text for text in texts if KEY in text]
