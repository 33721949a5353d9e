"""DNS source against a DNS server that the tests run on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from iocscope.config import Settings
from iocscope.errors import ConfigError, UpstreamError, UpstreamTimeout
from iocscope.models import Observable, ObservableType, SourceResult, Status, Verdict
from iocscope.sources.base import SourceContext
from iocscope.sources.vendors import dns as dns_source
from iocscope.sources.vendors.dns import DnsRecords, build_resolver
from tests.vendors.dnsctx_server import LoopbackDns, running_dns
from tests.vendors.support import NO_STORE, make_observable


@pytest.fixture
def dns_server() -> Iterator[LoopbackDns]:
    with running_dns() as server:
        yield server


def settings_for(server: LoopbackDns, **fields: Any) -> Settings:
    return Settings(
        dns_servers=[server.address], source_timeouts={"dns": 1.0}, **fields
    )


def domain(name: str, registered: str | None = None) -> Observable:
    kind = ObservableType.DOMAIN
    return make_observable(kind, name, registered_domain=registered or name)


def url(value: str, host: str, registered: str | None) -> Observable:
    kind = ObservableType.URL
    return make_observable(kind, value, host=host, registered_domain=registered)


async def lookup(server: LoopbackDns, target: Observable) -> SourceResult:
    return await DnsRecords(settings_for(server)).lookup(target)


def add_zone(server: LoopbackDns) -> None:
    server.add("example.test", "A", "192.0.2.1", "192.0.2.2", "192.0.2.3")
    server.add("example.test", "AAAA", "2001:db8::1")
    server.add("example.test", "MX", "10 mail.example.test.")
    server.add("example.test", "NS", "ns1.example.test.", "ns2.example.test.")


async def test_records(dns_server: LoopbackDns) -> None:
    add_zone(dns_server)
    result = await lookup(dns_server, domain("example.test"))
    assert result.status is Status.OK
    assert result.verdict is Verdict.UNKNOWN
    assert sorted(result.data["a"]) == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
    assert result.data["aaaa"] == ["2001:db8::1"]
    assert result.data["mx"] == ["10 mail.example.test"]
    assert sorted(result.data["ns"]) == ["ns1.example.test", "ns2.example.test"]
    assert "cname" not in result.data


async def test_summary(dns_server: LoopbackDns) -> None:
    add_zone(dns_server)
    result = await lookup(dns_server, domain("example.test"))
    assert result.summary is not None
    assert result.summary.startswith("resolves to 192.0.2.")
    assert result.summary.endswith("2001:db8::1; 1 MX, 2 NS")


async def test_questions_sent(dns_server: LoopbackDns) -> None:
    add_zone(dns_server)
    await lookup(dns_server, domain("example.test"))
    assert sorted(dns_server.queries) == [
        ("example.test", "A"),
        ("example.test", "AAAA"),
        ("example.test", "MX"),
        ("example.test", "NS"),
    ]


async def test_url_host(dns_server: LoopbackDns) -> None:
    add_zone(dns_server)
    dns_server.add("www.example.test", "A", "192.0.2.80")
    target = url("http://www.example.test/login", "www.example.test", "example.test")
    result = await lookup(dns_server, target)
    assert result.data["a"] == ["192.0.2.80"]
    assert dns_server.queried("A") == ["www.example.test"]
    assert dns_server.queried("NS") == ["example.test"]


async def test_url_ip_host_skipped(dns_server: LoopbackDns) -> None:
    target = url("http://192.0.2.7/x", "192.0.2.7", None)
    result = await lookup(dns_server, target)
    assert result.status is Status.SKIPPED
    assert dns_server.queries == []


async def test_cname(dns_server: LoopbackDns) -> None:
    add_zone(dns_server)
    dns_server.add("www.example.test", "CNAME", "example.test.")
    result = await lookup(dns_server, domain("www.example.test", "example.test"))
    assert result.data["cname"] == "example.test"
    assert len(result.data["a"]) == 3


async def test_nxdomain(dns_server: LoopbackDns) -> None:
    result = await lookup(dns_server, domain("missing.example.test"))
    assert result.status is Status.NOT_FOUND
    assert result.verdict is None
    assert result.data == {"rcode": "nxdomain"}


async def test_no_address(dns_server: LoopbackDns) -> None:
    dns_server.add("mailonly.example.test", "MX", "5 mx.example.test.")
    result = await lookup(dns_server, domain("mailonly.example.test"))
    assert result.status is Status.OK
    assert result.tags == ["dns:no-address"]
    assert result.summary == "no A or AAAA records; 1 MX, 0 NS"


async def test_refused(dns_server: LoopbackDns) -> None:
    dns_server.fail_with("example.test")
    with pytest.raises(UpstreamError, match="SERVFAIL or REFUSED"):
        await lookup(dns_server, domain("example.test"))


async def test_silent_server(dns_server: LoopbackDns) -> None:
    dns_server.silent = True
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout, match="within 1 s"):
        await lookup(dns_server, domain("example.test"))
    assert time.monotonic() - started < 2.5


@pytest.mark.parametrize(
    ("entry", "address", "port"),
    [
        ("127.0.0.1", "127.0.0.1", 53),
        ("127.0.0.1:5353", "127.0.0.1", 5353),
        ("[::1]:5353", "::1", 5353),
        ("::1", "::1", 53),
    ],
)
def test_server_entries(entry: str, address: str, port: int) -> None:
    resolver = build_resolver(Settings(dns_servers=[entry]), 1.0)
    [server] = resolver.nameservers
    assert server.answer_nameserver() == address
    assert server.answer_port() == port


def test_resolver_timeouts() -> None:
    resolver = build_resolver(Settings(dns_servers=["127.0.0.1"]), 0.5)
    assert resolver.lifetime == 0.5
    assert resolver.timeout == 0.5


def test_bad_server_entry() -> None:
    with pytest.raises(ValidationError, match="dns_servers"):
        Settings(dns_servers=["resolver.example"])


def test_resolver_rejects_unchecked_entry() -> None:
    settings = Settings.model_construct(dns_servers=["resolver.example"])
    with pytest.raises(ConfigError, match="dns_servers"):
        build_resolver(settings, 1.0)


def test_loader_without_http(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, dns_servers=["127.0.0.1"])
    sources = dns_source.load(SourceContext(settings, NO_STORE))
    assert [s.spec.name for s in sources] == ["dns"]


async def test_url_without_host(dns_server: LoopbackDns) -> None:
    result = await lookup(dns_server, url("mailto-like:opaque", "", None))
    assert result.status is Status.SKIPPED
    assert dns_server.queries == []
