"""DNSBL sources (Spamhaus ZEN and DBL, SURBL multi) against a loopback DNS server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from iocscope.config import Settings
from iocscope.errors import UpstreamError, UpstreamTimeout
from iocscope.models import Observable, ObservableType, SourceResult, Status, Verdict
from iocscope.sources.base import SourceContext
from iocscope.sources.vendors import dnsbl
from iocscope.sources.vendors.dnsbl import Blocklist, DnsblSource
from tests.vendors.dnsctx_server import LoopbackDns, running_dns
from tests.vendors.support import NO_STORE, make_observable

ZEN, DBL, SURBL = dnsbl.BLOCKLISTS
IP = "192.0.2.99"
ZEN_NAME = "99.2.0.192.zen.spamhaus.org"
ZEN_TEST_POINT = "2.0.0.127.zen.spamhaus.org"
DBL_TEST_POINT = "dbltest.com.dbl.spamhaus.org"
# The documented classes as our verdicts, where None marks an error code.
CLASSES: dict[str, Verdict | None] = {
    "malicious": Verdict.MALICIOUS,
    "suspicious": Verdict.SUSPICIOUS,
    "suspicious_or_policy_only": Verdict.UNKNOWN,
    "error": None,
}


@pytest.fixture
def dns_server() -> Iterator[LoopbackDns]:
    with running_dns() as server:
        yield server


def documented(shared: Path, table: str) -> dict[str, Any]:
    path = shared / "upstream" / "dnsbl" / "return_codes_documented.json"
    codes: dict[str, Any] = json.loads(path.read_text())[table]
    return codes


def source(server: LoopbackDns, blocklist: Blocklist) -> DnsblSource:
    name = blocklist.spec.name
    settings = Settings(dns_servers=[server.address], source_timeouts={name: 1.0})
    return DnsblSource(blocklist, settings)


def ip(value: str) -> Observable:
    return make_observable(ObservableType.IP, value)


def domain(name: str, registered: str | None = None) -> Observable:
    kind = ObservableType.DOMAIN
    return make_observable(kind, name, registered_domain=registered or name)


def url(value: str, host: str, registered: str | None) -> Observable:
    kind = ObservableType.URL
    return make_observable(kind, value, host=host, registered_domain=registered)


async def zen(server: LoopbackDns, *codes: str) -> SourceResult:
    server.add(ZEN_NAME, "A", *codes)
    return await source(server, ZEN).lookup(ip(IP))


async def dbl(server: LoopbackDns, *codes: str) -> SourceResult:
    server.add("bad.example.dbl.spamhaus.org", "A", *codes)
    return await source(server, DBL).lookup(domain("bad.example"))


async def surbl(server: LoopbackDns, *codes: str) -> SourceResult:
    server.add("bad.example.multi.surbl.org", "A", *codes)
    return await source(server, SURBL).lookup(domain("bad.example"))


async def test_zen_sbl(dns_server: LoopbackDns) -> None:
    result = await zen(dns_server, "127.0.0.2")
    assert result.status is Status.OK
    assert result.verdict is Verdict.MALICIOUS
    assert result.confidence == 0.9
    assert result.summary == "listed in Spamhaus ZEN: SBL"
    assert result.tags == ["spamhaus-zen:sbl"]
    assert dns_server.queried() == [ZEN_NAME]


async def test_zen_several_records(dns_server: LoopbackDns) -> None:
    result = await zen(dns_server, "127.0.0.2", "127.0.0.9", "127.0.0.4")
    assert result.verdict is Verdict.MALICIOUS
    assert result.data["codes"] == ["127.0.0.2", "127.0.0.4", "127.0.0.9"]
    assert result.data["lists"] == ["SBL", "XBL", "DROP"]
    assert result.tags == ["spamhaus-zen:drop", "spamhaus-zen:sbl", "spamhaus-zen:xbl"]


async def test_zen_pbl_is_context(dns_server: LoopbackDns) -> None:
    result = await zen(dns_server, "127.0.0.10")
    assert result.status is Status.OK
    assert result.verdict is Verdict.UNKNOWN
    assert result.confidence is None
    assert result.tags == ["spamhaus-zen:pbl"]
    assert result.summary is not None
    assert "not evidence of abuse" in result.summary


async def test_zen_pbl_with_xbl(dns_server: LoopbackDns) -> None:
    result = await zen(dns_server, "127.0.0.11", "127.0.0.4")
    assert result.verdict is Verdict.MALICIOUS


async def test_zen_documented_codes(
    dns_server: LoopbackDns, shared_fixtures: Path
) -> None:
    table = documented(shared_fixtures, "spamhaus_zen")["listed"]
    for code, entry in table.items():
        result = await zen(dns_server, code)
        assert result.verdict is CLASSES[entry["class"]], code


async def test_dbl_documented_codes(
    dns_server: LoopbackDns, shared_fixtures: Path
) -> None:
    table = documented(shared_fixtures, "spamhaus_dbl")["listed"]
    for code, entry in table.items():
        expected = CLASSES[entry["class"]]
        if expected is None:
            with pytest.raises(UpstreamError):
                await dbl(dns_server, code)
            continue
        result = await dbl(dns_server, code)
        assert result.verdict is expected, code


async def test_zen_ipv6_nibbles(dns_server: LoopbackDns) -> None:
    name = "1" + ".0" * 23 + ".8.b.d.0.1.0.0.2.zen.spamhaus.org"
    dns_server.add(name, "A", "127.0.0.3")
    result = await source(dns_server, ZEN).lookup(ip("2001:db8::1"))
    assert dns_server.queried() == [name]
    assert result.tags == ["spamhaus-zen:sbl-css"]


@pytest.mark.parametrize(
    ("code", "meaning"),
    [
        ("127.255.255.252", "typo"),
        ("127.255.255.254", "public or open resolver"),
        ("127.255.255.255", "too many queries"),
        ("127.255.255.1", "127.255.255.0/24"),
    ],
)
async def test_spamhaus_error_codes(
    dns_server: LoopbackDns, code: str, meaning: str
) -> None:
    with pytest.raises(UpstreamError, match=meaning):
        await zen(dns_server, code)


async def test_error_beside_listing(dns_server: LoopbackDns) -> None:
    with pytest.raises(UpstreamError, match="rejected the query"):
        await zen(dns_server, "127.0.0.2", "127.255.255.254")


async def test_dbl_ip_error(dns_server: LoopbackDns) -> None:
    with pytest.raises(UpstreamError, match="IP address was queried"):
        await dbl(dns_server, "127.0.1.255")


async def test_rewritten_answer(dns_server: LoopbackDns) -> None:
    with pytest.raises(UpstreamError, match="may rewrite NXDOMAIN"):
        await zen(dns_server, "198.51.100.7")


async def test_unknown_code_alone(dns_server: LoopbackDns) -> None:
    with pytest.raises(
        UpstreamError, match=r"127\.0\.0\.99, which is not a documented"
    ):
        await zen(dns_server, "127.0.0.99")


async def test_unknown_code_kept(dns_server: LoopbackDns) -> None:
    result = await zen(dns_server, "127.0.0.2", "127.0.0.99")
    assert result.verdict is Verdict.MALICIOUS
    assert result.data["unknown_codes"] == ["127.0.0.99"]


async def test_miss_checks_test_point(dns_server: LoopbackDns) -> None:
    dns_server.add(ZEN_TEST_POINT, "A", "127.0.0.2", "127.0.0.10")
    result = await source(dns_server, ZEN).lookup(ip(IP))
    assert result.status is Status.NOT_FOUND
    assert result.verdict is None
    assert result.data == {"rcode": "nxdomain"}
    assert dns_server.queried() == [ZEN_NAME, ZEN_TEST_POINT]


async def test_test_point_cached(dns_server: LoopbackDns) -> None:
    dns_server.add(ZEN_TEST_POINT, "A", "127.0.0.2")
    zen_source = source(dns_server, ZEN)
    await zen_source.lookup(ip(IP))
    await zen_source.lookup(ip("192.0.2.100"))
    assert dns_server.queried().count(ZEN_TEST_POINT) == 1


async def test_test_point_missing(dns_server: LoopbackDns) -> None:
    # Spamhaus returns NXDOMAIN to some public resolvers, even for the test point.
    with pytest.raises(UpstreamError, match="did not list its test point"):
        await source(dns_server, ZEN).lookup(ip(IP))


async def test_test_point_refused(dns_server: LoopbackDns) -> None:
    dns_server.add(DBL_TEST_POINT, "A", "127.255.255.254")
    with pytest.raises(UpstreamError, match="public or open resolver"):
        await source(dns_server, DBL).lookup(domain("clean.example"))


async def test_silent_server(dns_server: LoopbackDns) -> None:
    dns_server.silent = True
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout):
        await source(dns_server, ZEN).lookup(ip(IP))
    assert time.monotonic() - started < 2.5


async def test_dbl_host_and_parent(dns_server: LoopbackDns) -> None:
    dns_server.add("bad.example.dbl.spamhaus.org", "A", "127.0.1.5")
    target = url("http://cdn.bad.example/x.exe", "cdn.bad.example", "bad.example")
    result = await source(dns_server, DBL).lookup(target)
    assert result.verdict is Verdict.MALICIOUS
    assert result.tags == ["spamhaus-dbl:malware"]
    assert sorted(dns_server.queried()) == [
        "bad.example.dbl.spamhaus.org",
        "cdn.bad.example.dbl.spamhaus.org",
    ]


async def test_dbl_url_ip_skipped(dns_server: LoopbackDns) -> None:
    result = await source(dns_server, DBL).lookup(
        url("http://192.0.2.5/", "192.0.2.5", None)
    )
    assert result.status is Status.SKIPPED
    assert dns_server.queries == []


@pytest.mark.parametrize(
    ("code", "verdict", "tags"),
    [
        ("127.0.0.8", Verdict.MALICIOUS, ["surbl:phishing"]),
        ("127.0.0.16", Verdict.MALICIOUS, ["surbl:malware"]),
        ("127.0.0.64", Verdict.SUSPICIOUS, ["surbl:abuse"]),
        ("127.0.0.128", Verdict.SUSPICIOUS, ["surbl:cracked"]),
        ("127.0.0.80", Verdict.MALICIOUS, ["surbl:abuse", "surbl:malware"]),
    ],
)
async def test_surbl_bitmask(
    dns_server: LoopbackDns, code: str, verdict: Verdict, tags: list[str]
) -> None:
    result = await surbl(dns_server, code)
    assert result.verdict is verdict
    assert result.tags == tags


async def test_surbl_blocked(dns_server: LoopbackDns) -> None:
    with pytest.raises(UpstreamError, match="SURBL blocks this resolver"):
        await surbl(dns_server, "127.0.0.1")


async def test_surbl_spamhaus_range(dns_server: LoopbackDns) -> None:
    with pytest.raises(UpstreamError):
        await surbl(dns_server, "127.255.255.254")


async def test_surbl_registered_only(dns_server: LoopbackDns) -> None:
    dns_server.add("bad.example.multi.surbl.org", "A", "127.0.0.8")
    result = await source(dns_server, SURBL).lookup(
        domain("www.bad.example", "bad.example")
    )
    assert result.verdict is Verdict.MALICIOUS
    assert dns_server.queried() == ["bad.example.multi.surbl.org"]


async def test_surbl_ipv4(dns_server: LoopbackDns) -> None:
    dns_server.add("5.2.0.192.multi.surbl.org", "A", "127.0.0.16")
    result = await source(dns_server, SURBL).lookup(ip("192.0.2.5"))
    assert result.verdict is Verdict.MALICIOUS


async def test_surbl_ipv6_skipped(dns_server: LoopbackDns) -> None:
    result = await source(dns_server, SURBL).lookup(ip("2001:db8::5"))
    assert result.status is Status.SKIPPED
    assert dns_server.queries == []


async def test_surbl_miss(dns_server: LoopbackDns) -> None:
    result = await source(dns_server, SURBL).lookup(domain("clean.example"))
    assert result.status is Status.NOT_FOUND
    assert dns_server.queried() == ["clean.example.multi.surbl.org"]


def test_loader_without_http(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, dns_servers=["127.0.0.1"])
    sources = dnsbl.load(SourceContext(settings, NO_STORE))
    assert [s.spec.name for s in sources] == [
        "spamhaus_zen",
        "spamhaus_dbl",
        "surbl_multi",
    ]


async def test_url_without_host(dns_server: LoopbackDns) -> None:
    result = await source(dns_server, DBL).lookup(url("mailto-like:opaque", "", None))
    assert result.status is Status.SKIPPED
    assert dns_server.queries == []


async def test_nodata_is_miss(dns_server: LoopbackDns) -> None:
    dns_server.add("clean.example.multi.surbl.org", "TXT", '"listed elsewhere"')
    result = await source(dns_server, SURBL).lookup(domain("clean.example"))
    assert result.status is Status.NOT_FOUND
    assert result.data == {"rcode": "nodata"}
