"""Classification of a clean, refanged value whose type the caller did not give."""

from __future__ import annotations

import re
from dataclasses import dataclass

from iocscope.errors import InvalidObservable
from iocscope.models import Observable
from iocscope.observables.addresses import address_observable, looks_like_address
from iocscope.observables.cleaning import show
from iocscope.observables.domains import domain_observable
from iocscope.observables.emails import email_observable
from iocscope.observables.hashes import HASH_LENGTHS, hash_observable, is_hex
from iocscope.observables.urls import has_scheme, url_observable

# A host (a name with a dot, or a bracketed IPv6 address) followed by a port.
_HOST_PORT = re.compile(r"(?P<host>[^:\[\]/]+|\[[^\]]*\]):[0-9]{1,5}")
_PREFIX_LENGTH = re.compile(r"[0-9]+")
_SCHEME_WITHOUT_SLASHES = re.compile(r"(?:https?|ftp):(?!//)", re.IGNORECASE)
# Hex runs this long or longer are taken for hashes, not for single-label names.
_MIN_HASH_LIKE_LENGTH = 16


@dataclass(frozen=True)
class PrefixPolicy:
    """Shortest network prefixes accepted, so a lookup cannot cover the Internet."""

    min_ipv4_prefix: int = 8
    min_ipv6_prefix: int = 32


def detect_observable(value: str, policy: PrefixPolicy) -> Observable:
    """Classify and parse a value by its shape alone.

    The checks run in this order. A scheme makes a URL and an "@" an email address.
    Dotted digits or colon-separated hex make an ip or cidr, and a long hex run a
    hash. A host followed by "/" or "?" is a URL with http:// assumed. Anything
    else must be a domain of at least two labels.
    """
    if has_scheme(value):
        return url_observable(value)
    _reject_broken_scheme(value)
    if "@" in value:
        return email_observable(value)
    head, separator, tail = _split_at_path(value)
    if _is_host_with_port(head):
        return _host_with_port(value, separator)
    if looks_like_address(head):
        return _address_or_url(value, separator, tail, policy)
    if not separator:
        return _hash_or_domain(value)
    return _schemeless_url(value, separator, tail)


def _split_at_path(value: str) -> tuple[str, str, str]:
    for position, char in enumerate(value):
        if char in "/?":
            return value[:position], char, value[position + 1 :]
    return value, "", ""


def _is_host_with_port(text: str) -> bool:
    match = _HOST_PORT.fullmatch(text)
    if match is None:
        return False
    host = match["host"]
    return host.startswith("[") or "." in host


def _reject_broken_scheme(value: str) -> None:
    match = _SCHEME_WITHOUT_SLASHES.match(value)
    if match is None:
        return
    raise InvalidObservable(
        f"{show(value)} is not a valid URL: '//' is missing after "
        f"{match.group()!r}; write it as {match.group()}//host/path",
        value=value,
    )


def _host_with_port(value: str, separator: str) -> Observable:
    if separator:
        return url_observable(f"http://{value}", single_label_host=False)
    host, _, port = value.rpartition(":")
    raise InvalidObservable(
        f"{show(value)} has a port: remove ':{port}' to look up {host}, or write "
        f"a URL such as http://{value}/",
        value=value,
    )


def _address_or_url(
    value: str, separator: str, tail: str, policy: PrefixPolicy
) -> Observable:
    prefix, slash, rest = tail.partition("/")
    if separator == "/" and slash and not rest and _PREFIX_LENGTH.fullmatch(prefix):
        network = value.rstrip("/")
        raise InvalidObservable(
            f"{show(value)} ends with a stray '/': remove it to look up the "
            f"network {network}",
            value=value,
        )
    is_path = separator == "/" and tail and not _PREFIX_LENGTH.fullmatch(tail)
    if is_path and ":" not in value.partition("/")[0]:
        return url_observable(f"http://{value}", single_label_host=False)
    return address_observable(
        value,
        min_ipv4_prefix=policy.min_ipv4_prefix,
        min_ipv6_prefix=policy.min_ipv6_prefix,
    )


def _hash_or_domain(value: str) -> Observable:
    if is_hex(value) and len(value) >= _MIN_HASH_LIKE_LENGTH:
        return hash_observable(value)
    if "." not in value and len(value) in HASH_LENGTHS and value.isalnum():
        # Hash-sized but with a non-hex letter: report it as a broken hash.
        return hash_observable(value)
    return domain_observable(value, single_label=False)


def _schemeless_url(value: str, separator: str, tail: str) -> Observable:
    if separator == "/" and not tail:
        host = value[:-1]
        raise InvalidObservable(
            f"{show(value)} ends with a stray '/': remove it to look up the domain "
            f"{host}, or write the URL http://{value}",
            value=value,
        )
    return url_observable(f"http://{value}", single_label_host=False)
