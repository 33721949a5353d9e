"""Domain names: canonical form (lower-case A-labels) and public-suffix lookups."""

from __future__ import annotations

import functools
import ipaddress
import re

import idna
from publicsuffixlist import PublicSuffixList

from iocscope.errors import InvalidObservable
from iocscope.models import Observable, ObservableType
from iocscope.observables.cleaning import show

MAX_LABEL_LENGTH = 63
MAX_NAME_LENGTH = 253

# Letters, digits and hyphens as in RFC 1123, plus the underscore: DNS allows it,
# browsers resolve it, and malicious hosts use it (``_dmarc``, ``a_b.example``).
# Hyphens are allowed at either end of a label for the same reason.
_BAD_CHARACTER = re.compile(r"[^a-z0-9_-]")

# Reserved by RFC 2606 for documentation and tests, and absent from the suffix list.
_RESERVED_TLDS = frozenset({"example", "test"})


@functools.cache
def _suffix_list() -> PublicSuffixList:
    # Without a source argument the parser reads the copy of the list bundled with
    # the package, ICANN and private sections, and never downloads. Built on first
    # use because parsing takes a noticeable fraction of a second.
    return PublicSuffixList()


def registered_domain(host: str) -> tuple[str | None, bool]:
    """Return the registered domain of a host and whether the host is a public suffix.

    ``www.example.co.uk`` gives ``("example.co.uk", False)``; ``evil.github.io``
    gives ``("evil.github.io", False)`` because ``github.io`` is in the private
    section of the list; ``co.uk`` gives ``(None, True)``. A single-label name or an
    IP address gives ``(None, False)``. An unlisted top-level domain counts as one
    label of suffix, as the list's own algorithm prescribes, so ``evil.example``
    gives ``("evil.example", False)``. Expects a canonical (lower-case A-label) host.
    """
    name = host.lower().removesuffix(".")
    if not name or _is_ip_literal(name):
        return None, False
    suffixes = _suffix_list()
    return suffixes.privatesuffix(name), suffixes.is_public(name, accept_unknown=False)


def has_known_tld(name: str) -> bool:
    """Tell whether the last label is in the public suffix list or RFC 2606 reserved."""
    tld = name.rsplit(".", 1)[-1]
    if tld in _RESERVED_TLDS:
        return True
    return _suffix_list().publicsuffix(tld, accept_unknown=False) is not None


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def domain_observable(value: str, *, single_label: bool) -> Observable:
    """Parse a domain name, single-label (``localhost``) only if ``single_label``."""
    name = canonical_domain(value)
    if not single_label and "." not in name:
        raise InvalidObservable(
            f"{show(value)} is a single-label name: write the full domain "
            "(host.example.com), or pass type domain to look up a single-label name",
            value=value,
        )
    registered, is_public = registered_domain(name)
    return Observable(
        type=ObservableType.DOMAIN,
        value=name,
        input=value,
        registered_domain=registered,
        is_public_suffix=is_public,
    )


def canonical_domain(value: str) -> str:
    """Return the canonical form of a domain name or raise InvalidObservable.

    Canonical means: UTS46 mapping (lower case, full-width dots), one trailing dot
    removed, every label as an A-label, at most 63 octets a label and 253 in all.
    """
    name = _map_uts46(value) if not value.isascii() else value.lower()
    name = name.removesuffix(".")
    labels = name.split(".")
    if "" in labels:
        raise InvalidObservable(
            f"{show(value)} has an empty label (two dots in a row, or a leading or "
            "extra trailing dot): remove the extra dot",
            value=value,
        )
    encoded = ".".join(_encode_label(label, value) for label in labels)
    _check_lengths(encoded, value)
    _check_top_level(labels[-1], value)
    return encoded


def _map_uts46(value: str) -> str:
    try:
        return idna.uts46_remap(value, std3_rules=False, transitional=False)
    except ValueError as exc:
        raise _invalid_idn(value, exc) from None


def _encode_label(label: str, value: str) -> str:
    if not label.isascii():
        try:
            return idna.alabel(label).decode("ascii")
        except ValueError as exc:
            raise _invalid_idn(value, exc) from None
    bad = _BAD_CHARACTER.search(label)
    if bad is not None:
        raise InvalidObservable(
            f"{show(value)} contains {bad.group()!r}, which is not allowed in a domain "
            "name: use only letters, digits, hyphens, underscores and dots",
            value=value,
        )
    if label.startswith("xn--"):
        _check_a_label(label, value)
    return label


def _check_a_label(label: str, value: str) -> None:
    try:
        idna.ulabel(label)
    except ValueError as exc:
        raise InvalidObservable(
            f"{show(value)} contains the label {label!r}, which starts with xn-- but "
            f"is not valid punycode ({exc}): correct or remove the label",
            value=value,
        ) from None


def _invalid_idn(value: str, exc: ValueError) -> InvalidObservable:
    return InvalidObservable(
        f"{show(value)} is not a valid internationalized domain name ({exc}): "
        "check the characters, or submit the xn-- form",
        value=value,
    )


def _check_lengths(encoded: str, value: str) -> None:
    for label in encoded.split("."):
        if len(label) > MAX_LABEL_LENGTH:
            raise InvalidObservable(
                f"{show(value)} has a label of {len(label)} characters, but a DNS "
                f"label may have at most {MAX_LABEL_LENGTH}",
                value=value,
            )
    if len(encoded) > MAX_NAME_LENGTH:
        raise InvalidObservable(
            f"{show(value)} is {len(encoded)} characters long, but a domain name may "
            f"have at most {MAX_NAME_LENGTH}",
            value=value,
        )


def _check_top_level(label: str, value: str) -> None:
    if label.isascii() and label.isdigit():
        raise InvalidObservable(
            f"{show(value)} ends in the numeric label {label!r}, but a top-level "
            "domain is never numeric: if it is an IPv4 address, write all four "
            "octets (198.51.100.7)",
            value=value,
        )
