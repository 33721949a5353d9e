"""address_scope, network_scope, registered_domain and canonical_type."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from iocscope.errors import InvalidObservable
from iocscope.models import ObservableType
from iocscope.observables import (
    address_scope,
    canonical_type,
    domains,
    network_scope,
    parse_observable,
    registered_domain,
)

T = ObservableType

SCOPES = [
    ("10.0.0.5", "private"),
    ("192.168.1.20", "private"),
    ("172.16.4.4", "private"),
    ("172.31.255.255", "private"),
    ("100.64.0.1", "shared"),
    ("169.254.169.254", "link-local"),
    ("127.0.0.1", "loopback"),
    ("127.8.8.8", "loopback"),
    ("fd00::1", "private"),
    ("fc00::1", "private"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("fe80::1", "link-local"),
    ("192.0.2.10", "documentation"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.200", "documentation"),
    ("2001:db8::1", "documentation"),
    ("3fff::1", "documentation"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("0.1.2.3", "reserved"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("198.18.0.1", "reserved"),
    ("198.19.255.1", "reserved"),
    ("192.0.0.8", "reserved"),
    ("192.88.99.1", "reserved"),
    ("100::1", "reserved"),
    ("2001::1", "reserved"),
    ("fec0::1", "reserved"),
    ("4000::1", "reserved"),
    ("::ffff:10.0.0.5", "private"),
    ("64:ff9b::a00:5", "private"),
    ("64:ff9b::808:808", "global"),
    ("8.8.8.8", "global"),
    ("172.32.0.1", "global"),
    ("100.128.0.1", "global"),
    ("2606:4700::1111", "global"),
]


@pytest.mark.parametrize(("address", "scope"), SCOPES)
def test_address_scope_class(address: str, scope: str) -> None:
    assert address_scope(ipaddress.ip_address(address)) == scope


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.5",
        "192.168.1.20",
        "172.16.4.4",
        "100.64.0.1",
        "169.254.169.254",
        "127.0.0.1",
        "fd00::1",
        "0.0.0.0",
        "192.0.2.10",
    ],
)
def test_parsed_address_not_routable(address: str) -> None:
    assert parse_observable(address).routable is False


@pytest.mark.parametrize(
    ("network", "scope"),
    [
        ("10.1.0.0/16", "private"),
        ("192.168.0.0/16", "private"),
        ("198.51.100.0/24", "documentation"),
        ("2001:db8::/32", "documentation"),
        ("2001:db8:1::/48", "documentation"),
        ("0.0.0.0/8", "reserved"),
        ("10.0.0.0/7", "private"),
        ("192.0.0.0/8", "reserved"),
        ("100.0.0.0/8", "shared"),
        ("8.8.8.0/24", "global"),
        ("2606:4700::/32", "global"),
        ("4000::/16", "reserved"),
        ("::ffff:10.0.0.0/104", "private"),
    ],
)
def test_network_scope_class(network: str, scope: str) -> None:
    assert network_scope(ipaddress.ip_network(network)) == scope


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("www.example.co.uk", ("example.co.uk", False)),
        ("example.co.uk", ("example.co.uk", False)),
        ("a.b.c.example.com", ("example.com", False)),
        ("evil.github.io", ("evil.github.io", False)),
        ("evil.example", ("evil.example", False)),
        ("WWW.Example.COM.", ("example.com", False)),
        ("co.uk", (None, True)),
        ("github.io", (None, True)),
        ("com", (None, True)),
        ("localhost", (None, False)),
        ("198.51.100.7", (None, False)),
        ("[2001:db8::1]", (None, False)),
        ("", (None, False)),
    ],
)
def test_registered_domain(host: str, expected: tuple[str | None, bool]) -> None:
    assert registered_domain(host) == expected


def test_suffix_list_is_bundled(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the public suffix list must not be downloaded")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    domains._suffix_list.cache_clear()
    assert registered_domain("www.example.co.uk") == ("example.co.uk", False)


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("192.0.2.10", "192.0.2.0/24"),
        ("::ffff:192.0.2.10", "192.0.2.0/24"),
        ("192.0.2.10", "::ffff:192.0.2.0/120"),
        ("2001:db8:0:1::5", "2001:0db8::/32"),
        ("198.51.100.7/32", "198.51.100.0/25"),
    ],
)
def test_canonical_values_contain(address: str, network: str) -> None:
    """Canonical ip and cidr values match by containment, whatever the spelling."""
    member = ipaddress.ip_address(parse_observable(address).value)
    assert member in ipaddress.ip_network(parse_observable(network).value)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("ip", T.IP),
        ("ipv4", T.IP),
        ("ipv6", T.IP),
        ("ip-src", T.IP),
        ("ip-dst", T.IP),
        ("ip_src", T.IP),
        ("cidr", T.CIDR),
        ("network", T.CIDR),
        ("ip-range", T.CIDR),
        ("domain", T.DOMAIN),
        ("fqdn", T.DOMAIN),
        ("hostname", T.DOMAIN),
        ("url", T.URL),
        ("uri", T.URL),
        ("link", T.URL),
        ("email", T.EMAIL),
        ("mail", T.EMAIL),
        ("mail_address", T.EMAIL),
        ("md5", T.MD5),
        ("sha1", T.SHA1),
        ("sha256", T.SHA256),
        ("sha512", T.SHA512),
        (" Domain ", T.DOMAIN),
        ("URL", T.URL),
    ],
)
def test_canonical_type_alias(name: str, kind: ObservableType) -> None:
    assert canonical_type(name) is kind


@pytest.mark.parametrize("name", ["hash", "file", "filehash", "HASH"])
def test_canonical_type_hash_none(name: str) -> None:
    assert canonical_type(name) is None


@pytest.mark.parametrize("name", ["filename", "registry", "other", "", "ip4"])
def test_canonical_type_unknown(name: str) -> None:
    with pytest.raises(InvalidObservable) as caught:
        canonical_type(name)
    assert caught.value.field == "type"
