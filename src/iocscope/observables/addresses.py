"""IP addresses and CIDR networks, with their address scope."""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network

from iocscope.errors import InvalidObservable
from iocscope.models import Observable, ObservableType
from iocscope.observables.cleaning import show
from iocscope.observables.scope import Address, Network, address_scope, network_scope

_IPV4_SHAPE = re.compile(r"[0-9]*\.[0-9.]*")
_IPV6_SHAPE = re.compile(r"\[?[0-9a-fA-F.]*:[0-9a-fA-F:.]*\]?(%.*)?")
_OCTET = re.compile(r"[0-9]{1,3}")
_PREFIX = re.compile(r"[0-9]{1,3}")
_IPV4_MAPPED = IPv6Network("::ffff:0:0/96")


def looks_like_address(text: str) -> bool:
    """Tell whether text has the characters of an IPv4 or IPv6 address."""
    return bool(_IPV4_SHAPE.fullmatch(text) or _IPV6_SHAPE.fullmatch(text))


def address_observable(
    value: str, *, min_ipv4_prefix: int, min_ipv6_prefix: int
) -> Observable:
    """Parse an address (type ip) or a network in CIDR notation (type cidr).

    An IPv4-mapped IPv6 address or network becomes its IPv4 form; a /32 or /128
    network becomes the plain address.
    """
    text, slash, prefix = value.partition("/")
    if slash and not prefix:
        raise InvalidObservable(
            f"{show(value)} ends with a stray '/': remove it for the address, or add "
            "a prefix length for a network (198.51.100.0/24)",
            value=value,
        )
    address = parse_address(text, value)
    if not slash:
        return ip_observable(_unmapped(address), value)
    network = _parse_network(address, prefix, value)
    return _network_observable(network, value, min_ipv4_prefix, min_ipv6_prefix)


def ip_observable(address: Address, value: str) -> Observable:
    return Observable(
        type=ObservableType.IP,
        value=str(address),
        input=value,
        scope=address_scope(address),
    )


def parse_address(text: str, value: str) -> Address:
    """Parse one address: dotted IPv4, or IPv6 with optional brackets."""
    if text.startswith("[") and text.endswith("]"):
        return _parse_ipv6(text[1:-1], value)
    if ":" in text:
        return _parse_ipv6(text, value)
    return _parse_ipv4(text, value)


def _parse_ipv6(text: str, value: str) -> IPv6Address:
    if "%" in text:
        zone = text[text.index("%") :]
        raise InvalidObservable(
            f"{show(value)} has a zone index ({zone!r}), which "
            "only means something on one host: remove it",
            value=value,
        )
    try:
        return IPv6Address(text)
    except ValueError as exc:
        raise InvalidObservable(
            f"{show(value)} is not a valid IPv6 address ({exc}): check the groups "
            "and colons",
            value=value,
        ) from None


def _parse_ipv4(text: str, value: str) -> IPv4Address:
    octets = text.split(".")
    if len(octets) != 4:
        raise InvalidObservable(
            f"{show(value)} is not a valid IPv4 address: it has {len(octets)} "
            "dot-separated parts instead of 4 (198.51.100.7)",
            value=value,
        )
    for octet in octets:
        _check_octet(octet, value)
    return IPv4Address(text)


def _check_octet(octet: str, value: str) -> None:
    if not _OCTET.fullmatch(octet):
        raise InvalidObservable(
            f"{show(value)} is not a valid IPv4 address: {octet!r} is not a number "
            "from 0 to 255",
            value=value,
        )
    if len(octet) > 1 and octet.startswith("0"):
        raise InvalidObservable(
            f"{show(value)} has the octet {octet!r} with a leading zero, which some "
            "tools read as octal: write the decimal value without leading zeros",
            value=value,
        )
    if int(octet) > 255:
        raise InvalidObservable(
            f"{show(value)} is not a valid IPv4 address: the octet {octet} is "
            "larger than 255",
            value=value,
        )


def _parse_network(address: Address, prefix: str, value: str) -> Network:
    maximum = address.max_prefixlen
    if not _PREFIX.fullmatch(prefix) or int(prefix) > maximum:
        raise InvalidObservable(
            f"{show(value)} has the prefix length {prefix!r}: use a whole number "
            f"from 0 to {maximum}",
            value=value,
        )
    try:
        return ip_network((address, int(prefix)))
    except ValueError:
        network = ip_network((address, int(prefix)), strict=False)
        raise InvalidObservable(
            f"{show(value)} has host bits set: use {str(network)!r} for the network, "
            f"or {str(address)!r} for the single address",
            value=value,
        ) from None


def _network_observable(
    network: Network, value: str, min_ipv4_prefix: int, min_ipv6_prefix: int
) -> Observable:
    network = _unmapped_network(network)
    if network.prefixlen == network.max_prefixlen:
        return ip_observable(network.network_address, value)
    minimum = min_ipv4_prefix if network.version == 4 else min_ipv6_prefix
    if network.prefixlen < minimum:
        raise InvalidObservable(
            f"{show(value)} is a /{network.prefixlen} network, larger than policy "
            f"allows for IPv{network.version} (prefix /{minimum} or longer): submit "
            "a smaller network",
            value=value,
        )
    return Observable(
        type=ObservableType.CIDR,
        value=str(network),
        input=value,
        scope=network_scope(network),
    )


def _unmapped(address: Address) -> Address:
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _unmapped_network(network: Network) -> Network:
    if not isinstance(network, IPv6Network) or network.prefixlen < 96:
        return network
    if not network.subnet_of(_IPV4_MAPPED):
        return network
    mapped = network.network_address.ipv4_mapped
    assert mapped is not None
    return IPv4Network((mapped, network.prefixlen - 96))
