"""Store keys of the networks that could contain an address or a network.

The store keeps each listed network as its canonical ``net/len`` text. To
find the listed networks that contain an address, compute the address's
network at every prefix length that the feed's networks have, and look each
key up exactly.
That needs at most 32 (IPv4) or 128 (IPv6) index probes and no in-memory
tree, so a fresh process answers its first lookup without loading anything.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def containing_keys(address: IPAddress, lengths: Iterable[int]) -> list[str]:
    """Return the keys of the networks of ``lengths`` that contain ``address``."""
    return _keys(int(address), address.max_prefixlen, type(address), lengths)


def network_containing_keys(network: IPNetwork, lengths: Iterable[int]) -> list[str]:
    """Return the keys of the networks of ``lengths`` that contain ``network``,
    itself included when its own length is held."""
    shorter = [length for length in lengths if length <= network.prefixlen]
    address = network.network_address
    return _keys(int(address), network.max_prefixlen, type(address), shorter)


def _keys(
    value: int, bits: int, address_type: type[IPAddress], lengths: Iterable[int]
) -> list[str]:
    keys = []
    for length in lengths:
        if not 0 <= length < bits:
            continue
        network = value & (((1 << length) - 1) << (bits - length))
        keys.append(f"{_address_text(network, bits, address_type)}/{length}")
    return keys


def _address_text(value: int, bits: int, address_type: type[IPAddress]) -> str:
    """Format an address; IPv4 by hand because it runs once per probe and
    ``str(IPv4Address(...))`` costs several times more."""
    if bits == 32:
        return f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}"
    return str(address_type(value))


def network_version_and_length(key: str) -> tuple[int, int]:
    """Return the IP version and prefix length of a ``net/len`` store key."""
    address, _, length = key.rpartition("/")
    return (6 if ":" in address else 4), int(length)
