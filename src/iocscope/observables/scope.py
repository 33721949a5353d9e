"""Address scope: whether an address or network is globally routable, and if not, why.

The blocks come from the IANA IPv4 and IPv6 Special-Purpose Address Registries
(RFC 6890 and its updates). They are listed here because the ``is_private`` and
``is_global`` properties of :mod:`ipaddress` return a boolean, not the class.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

GLOBAL = "global"

# Checked in order, so a block listed first wins over a wider one listed later:
# 0.0.0.0/32 is "unspecified" although 0.0.0.0/8 is "reserved".
_IPV4_BLOCKS: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(block), name)
    for block, name in (
        ("0.0.0.0/32", "unspecified"),
        ("0.0.0.0/8", "reserved"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "reserved"),
        ("192.0.2.0/24", "documentation"),
        # Deprecated 6to4 relay anycast.
        ("192.88.99.0/24", "reserved"),
        ("192.168.0.0/16", "private"),
        # Network device benchmarking.
        ("198.18.0.0/15", "reserved"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        # Reserved for future use; contains the limited broadcast 255.255.255.255.
        ("240.0.0.0/4", "reserved"),
    )
)

_IPV6_BLOCKS: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(block), name)
    for block, name in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        # NAT64 local-use prefix.
        ("64:ff9b:1::/48", "reserved"),
        # Discard-only prefix.
        ("100::/64", "reserved"),
        # IETF protocol assignments: Teredo, benchmarking, ORCHID and others.
        ("2001::/23", "reserved"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        # Segment routing identifiers.
        ("5f00::/16", "reserved"),
        ("fc00::/7", "private"),
        ("fe80::/10", "link-local"),
        # Deprecated site-local addresses.
        ("fec0::/10", "reserved"),
        ("ff00::/8", "multicast"),
    )
)

# IPv6 outside the global unicast block is unassigned or special: "reserved".
_IPV6_GLOBAL_UNICAST = IPv6Network("2000::/3")
_IPV4_MAPPED = IPv6Network("::ffff:0:0/96")
# NAT64 well-known prefix: the last 32 bits are an IPv4 address, which sets the scope.
_NAT64 = IPv6Network("64:ff9b::/96")


def address_scope(address: Address) -> str:
    """Return "global", or the special-purpose class the address belongs to.

    Classes: private, shared, loopback, link-local, documentation, multicast,
    unspecified, reserved. An IPv4-mapped or NAT64 (64:ff9b::/96) IPv6 address gets
    the scope of the IPv4 address it carries.
    """
    if isinstance(address, IPv4Address):
        return _ipv4_address_scope(address)
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return _ipv4_address_scope(embedded)
    return _ipv6_address_scope(address)


def network_scope(network: Network) -> str:
    """Return the scope of a network: non-global as soon as it overlaps a special block.

    A network inside a special block gets that block's class. A wider network that
    contains special blocks gets the class of the first one in the tables above, so
    ``192.0.0.0/8`` is "reserved" because it contains ``192.0.0.0/24``. An
    IPv4-mapped network gets the scope of its IPv4 network; a NAT64 network is not
    unpacked and counts as "reserved".
    """
    if isinstance(network, IPv4Network):
        return _ipv4_network_scope(network)
    if network.subnet_of(_IPV4_MAPPED):
        mapped = network.network_address.ipv4_mapped
        assert mapped is not None
        return _ipv4_network_scope(IPv4Network((mapped, network.prefixlen - 96)))
    return _ipv6_network_scope(network)


def _embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _ipv4_address_scope(address: IPv4Address) -> str:
    for block, name in _IPV4_BLOCKS:
        if address in block:
            return name
    return GLOBAL


def _ipv6_address_scope(address: IPv6Address) -> str:
    for block, name in _IPV6_BLOCKS:
        if address in block:
            return name
    if address not in _IPV6_GLOBAL_UNICAST:
        return "reserved"
    return GLOBAL


def _ipv4_network_scope(network: IPv4Network) -> str:
    for block, name in _IPV4_BLOCKS:
        if network.subnet_of(block):
            return name
    for block, name in _IPV4_BLOCKS:
        if network.overlaps(block):
            return name
    return GLOBAL


def _ipv6_network_scope(network: IPv6Network) -> str:
    for block, name in _IPV6_BLOCKS:
        if network.subnet_of(block):
            return name
    for block, name in _IPV6_BLOCKS:
        if network.overlaps(block):
            return name
    if not network.subnet_of(_IPV6_GLOBAL_UNICAST):
        return "reserved"
    return GLOBAL
