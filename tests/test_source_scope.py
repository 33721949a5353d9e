"""The address_scope source: special-purpose address classes, never a flag."""

from __future__ import annotations

import pytest

from iocscope.models import Observable, ObservableType, Status, Verdict
from iocscope.sources.scope import SPEC, AddressScopeSource, load

# Address, the scope the observable parser sets for it, and the expected summary.
NON_ROUTABLE = [
    ("10.0.0.5", "private", "private address (RFC 1918)"),
    ("192.168.1.20", "private", "private address (RFC 1918)"),
    ("172.16.4.4", "private", "private address (RFC 1918)"),
    ("100.64.0.1", "shared", "shared address space for carrier-grade NAT (RFC 6598)"),
    ("169.254.169.254", "link-local", "link-local address (RFC 3927)"),
    ("127.0.0.1", "loopback", "loopback address (RFC 1122)"),
    ("fd00::1", "private", "unique local address (RFC 4193)"),
    ("0.0.0.0", "unspecified", "unspecified address (RFC 1122)"),
    ("192.0.2.10", "documentation", "documentation address (RFC 5737)"),
    ("2001:db8::1", "documentation", "documentation address (RFC 3849)"),
    ("fe80::1", "link-local", "link-local address (RFC 4291)"),
    ("224.0.0.1", "multicast", "multicast address (RFC 5771)"),
    ("240.0.0.1", "reserved", "reserved address (RFC 6890)"),
    ("::1", "loopback", "loopback address (RFC 4291)"),
]


def ip(value: str, scope: str | None) -> Observable:
    return Observable(type=ObservableType.IP, value=value, input=value, scope=scope)


def url(value: str, host: str, scope: str | None) -> Observable:
    return Observable(
        type=ObservableType.URL, value=value, input=value, host=host, scope=scope
    )


@pytest.mark.parametrize(("address", "scope", "description"), NON_ROUTABLE)
async def test_non_routable_address(address: str, scope: str, description: str) -> None:
    result = await AddressScopeSource().lookup(ip(address, scope))

    assert result.status is Status.OK
    assert result.verdict is Verdict.UNKNOWN
    assert not result.flagged
    assert result.summary is not None
    assert result.summary.startswith(f"non-routable: {description}")
    assert result.tags == [f"non-routable:{scope}"]
    assert result.data["scope"] == scope
    assert result.confidence == 1.0


async def test_metadata_endpoint_note() -> None:
    result = await AddressScopeSource().lookup(ip("169.254.169.254", "link-local"))

    assert result.summary is not None
    assert "instance metadata endpoint" in result.summary
    assert "instance metadata endpoint" in result.data["note"]


async def test_other_link_local_has_no_note() -> None:
    result = await AddressScopeSource().lookup(ip("169.254.1.1", "link-local"))

    assert "note" not in result.data


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700:4700::1111"])
async def test_global_address_no_signal(address: str) -> None:
    result = await AddressScopeSource().lookup(ip(address, "global"))

    assert result.status is Status.OK
    assert result.verdict is Verdict.UNKNOWN
    assert result.data == {"scope": "global"}
    assert result.tags == []
    assert not result.flagged


async def test_cidr_scope() -> None:
    observable = Observable(
        type=ObservableType.CIDR,
        value="10.0.0.0/8",
        input="10.0.0.0/8",
        scope="private",
    )

    result = await AddressScopeSource().lookup(observable)

    assert result.tags == ["non-routable:private"]
    assert result.summary == "non-routable: private address (RFC 1918)"


@pytest.mark.parametrize(
    ("value", "host", "description"),
    [
        ("http://10.0.0.5/admin", "10.0.0.5", "private address (RFC 1918)"),
        ("http://[fd00::1]:8080/x", "fd00::1", "unique local address (RFC 4193)"),
        ("http://[fd00::1]/x", "[fd00::1]", "unique local address (RFC 4193)"),
    ],
)
async def test_url_with_ip_host(value: str, host: str, description: str) -> None:
    result = await AddressScopeSource().lookup(url(value, host, "private"))

    assert result.status is Status.OK
    assert result.verdict is Verdict.UNKNOWN
    assert result.summary == f"non-routable: {description}"


async def test_url_with_domain_host_skipped() -> None:
    observable = url("https://example.com/", "example.com", None)

    result = await AddressScopeSource().lookup(observable)

    assert result.status is Status.SKIPPED
    assert result.reason == "no address scope"


async def test_unlisted_scope_named() -> None:
    result = await AddressScopeSource().lookup(ip("198.18.0.1", "benchmarking"))

    assert result.summary == "non-routable: benchmarking address"
    assert result.tags == ["non-routable:benchmarking"]


def test_spec_declares_local_source() -> None:
    assert SPEC.name == "address_scope"
    assert not SPEC.network
    assert not SPEC.needs_key
    assert SPEC.types == frozenset(
        {ObservableType.IP, ObservableType.CIDR, ObservableType.URL}
    )


def test_load_returns_one_source() -> None:
    sources = load(None)  # type: ignore[arg-type]

    assert [source.spec.name for source in sources] == ["address_scope"]


async def test_parsed_observables_end_to_end() -> None:
    from iocscope.observables import parse_observable

    for address, scope, _ in NON_ROUTABLE:
        result = await AddressScopeSource().lookup(parse_observable(address))
        assert result.tags == [f"non-routable:{scope}"], address
