"""Type names and aliases that callers send, mapped to ObservableType."""

from __future__ import annotations

from iocscope.errors import InvalidObservable
from iocscope.models import ObservableType
from iocscope.observables.cleaning import show

_T = ObservableType

# Keys use "-" as the separator: lookups map "_" to "-" first, so "mail_address"
# and "ip_src" match too. None means "a hash, kind detected from its length".
# Besides our own names: Cortex dataTypes (ip, domain, fqdn, url, hash, mail),
# MISP attribute types (ip-src, ip-dst, hostname, email-src, email-dst, link, uri) and
# STIX 2.1 object types (ipv4-addr, ipv6-addr, domain-name, email-addr).
TYPE_ALIASES: dict[str, ObservableType | None] = {
    "ip": _T.IP,
    "ipv4": _T.IP,
    "ipv6": _T.IP,
    "ip-src": _T.IP,
    "ip-dst": _T.IP,
    "ipv4-addr": _T.IP,
    "ipv6-addr": _T.IP,
    "cidr": _T.CIDR,
    "network": _T.CIDR,
    "ip-range": _T.CIDR,
    "domain": _T.DOMAIN,
    "fqdn": _T.DOMAIN,
    "hostname": _T.DOMAIN,
    "domain-name": _T.DOMAIN,
    "url": _T.URL,
    "uri": _T.URL,
    "link": _T.URL,
    "email": _T.EMAIL,
    "mail": _T.EMAIL,
    "mail-address": _T.EMAIL,
    "email-addr": _T.EMAIL,
    "email-src": _T.EMAIL,
    "email-dst": _T.EMAIL,
    "md5": _T.MD5,
    "sha1": _T.SHA1,
    "sha256": _T.SHA256,
    "sha512": _T.SHA512,
    "hash": None,
    "file": None,
    "filehash": None,
}


def supported_type_names() -> str:
    return ", ".join(TYPE_ALIASES)


def canonical_type(type_hint: str) -> ObservableType | None:
    """Map a type name or alias to its ObservableType, case-insensitively.

    Returns None for the hash names (``hash``, ``file``, ``filehash``), whose kind
    is detected from the digest length. Raises InvalidObservable with
    ``field="type"`` for any other unknown name, ``filename`` and ``other`` included.
    """
    key = type_hint.strip().lower().replace("_", "-")
    if key in TYPE_ALIASES:
        return TYPE_ALIASES[key]
    raise InvalidObservable(
        f"unknown observable type {show(type_hint)}: use one of "
        f"{supported_type_names()}",
        value=type_hint,
        field="type",
    )
