"""CIRCL hashlookup adapter against recorded responses on a loopback server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from iocscope.errors import UpstreamError
from iocscope.models import Observable, ObservableType, SourceResult, Status, Verdict
from iocscope.sources.vendors.circl_hashlookup import CirclHashlookup
from tests.loopback import LoopbackServer, Reply
from tests.vendors.support import (
    NOT_UTF8,
    REPLACEMENT,
    make_observable,
    recorded_body,
    run_lookup,
    settings_for,
)

NAME = "circl_hashlookup"
EMPTY_FILE = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
TEST_FILE = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
ZSH = "a6f2177402114fc8b5e7ecf924ffa61a2ac25bd347bc3370fb92e07b76e0b44c"
UNKNOWN = "331a1d23e1e83ae87fb88f2f10e7fe9cfc0020ef4adc3c17ba91bd8bb4929fe2"


async def lookup(
    server: LoopbackServer, target: Observable | None = None, **settings: Any
) -> SourceResult:
    return await run_lookup(
        CirclHashlookup,
        settings_for(server, NAME, **settings),
        target or make_observable(ObservableType.SHA256, EMPTY_FILE),
    )


def recorded(shared: Path, name: str) -> bytes:
    return recorded_body(shared, NAME, name)


def route_sha256(server: LoopbackServer, value: str, reply: Reply) -> None:
    server.route("GET", f"/lookup/sha256/{value}", reply)


async def test_nsrl_file_clean(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    body = recorded(shared_fixtures, "sha256_e3b0c442_empty_file_known_measured.json")
    route_sha256(loopback, EMPTY_FILE, Reply(200, body))
    result = await lookup(loopback)
    assert result.status is Status.OK
    assert result.verdict is Verdict.CLEAN
    assert result.known_benign is True
    assert result.score == 0
    assert result.confidence == 1.0
    assert result.tags == ["known-file:nsrl"]


async def test_nsrl_summary(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    body = recorded(shared_fixtures, "sha256_e3b0c442_empty_file_known_measured.json")
    route_sha256(loopback, EMPTY_FILE, Reply(200, body))
    result = await lookup(loopback)
    assert result.summary == (
        "known file in nsrl: "
        "./usr/lib/python3/dist-packages/zzzeeksphinx-1.0.20.egg-info/requires.txt"
    )


async def test_md5_nsrl_product(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    value = "8ed4b4ed952526d89899e723f3488de4"
    body = recorded(shared_fixtures, "md5_8ED4B4ED_nsrl_readme.json")
    loopback.route("GET", f"/lookup/md5/{value}", Reply(200, body))
    result = await lookup(loopback, make_observable(ObservableType.MD5, value))
    assert result.tags == ["known-file:nsrl"]
    assert result.data["product"]["version"] == "1709"


async def test_sha1_path(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    value = "fffffdac1b1b4c513896c805c2c698d9688be69f"
    body = recorded(shared_fixtures, "sha1_FFFFFDAC_nsrl_readme.json")
    loopback.route("GET", f"/lookup/sha1/{value}", Reply(200, body))
    await lookup(loopback, make_observable(ObservableType.SHA1, value))
    assert loopback.requests[0].path == f"/lookup/sha1/{value}"


async def test_package_file_clean(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "sha256_a6f21774_zsh_known_with_parents.json")
    route_sha256(loopback, ZSH, Reply(200, body))
    result = await lookup(loopback, make_observable(ObservableType.SHA256, ZSH))
    assert result.verdict is Verdict.CLEAN
    assert result.confidence == 0.55
    assert result.tags == ["known-file:os-package"]
    assert result.data["parents"][0]["package"] == "zsh"


async def test_known_malicious(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    body = recorded(
        shared_fixtures, "sha256_9f86d081_known_and_KnownMalicious_measured.json"
    )
    route_sha256(loopback, TEST_FILE, Reply(200, body))
    result = await lookup(loopback, make_observable(ObservableType.SHA256, TEST_FILE))
    assert result.verdict is Verdict.MALICIOUS
    assert result.known_benign is False
    assert result.confidence == 0.6
    assert result.tags == ["known-file:nsrl", "known-malicious:malshare.com"]


async def test_malicious_without_set(loopback: LoopbackServer) -> None:
    body = '{"FileName": "a.exe", "KnownMalicious": ["malshare.com", "VirusShare"]}'
    route_sha256(loopback, EMPTY_FILE, Reply(200, body))
    result = await lookup(loopback)
    assert result.verdict is Verdict.MALICIOUS
    assert result.confidence == 0.8
    assert result.tags == ["known-malicious:malshare.com", "known-malicious:virusshare"]


async def test_unknown_not_found(
    loopback: LoopbackServer, shared_fixtures: Path
) -> None:
    body = recorded(shared_fixtures, "sha256_not_found_404.json")
    route_sha256(loopback, UNKNOWN, Reply(404, body))
    result = await lookup(loopback, make_observable(ObservableType.SHA256, UNKNOWN))
    assert result.status is Status.NOT_FOUND
    assert result.verdict is None


async def test_other_404_is_error(loopback: LoopbackServer) -> None:
    with pytest.raises(UpstreamError, match="HTTP 404"):
        await lookup(loopback)


async def test_bad_hash_error(loopback: LoopbackServer, shared_fixtures: Path) -> None:
    body = recorded(shared_fixtures, "error_400_bad_sha256.json")
    route_sha256(loopback, EMPTY_FILE, Reply(400, body))
    with pytest.raises(UpstreamError, match="SHA-256 value incorrect") as caught:
        await lookup(loopback)
    assert caught.value.http_status == 400


async def test_empty_400(loopback: LoopbackServer) -> None:
    route_sha256(loopback, EMPTY_FILE, Reply(400, ""))
    with pytest.raises(UpstreamError, match="400 with an empty body"):
        await lookup(loopback)


async def test_non_utf8_replaced(loopback: LoopbackServer) -> None:
    body = b'{"FileName": "' + NOT_UTF8 + b'", "db": "nsrl_modern"}'
    route_sha256(loopback, EMPTY_FILE, Reply(200, body))
    result = await lookup(loopback)
    assert result.data["file_name"] == f"Soci{REPLACEMENT}t{REPLACEMENT} {REPLACEMENT}"
