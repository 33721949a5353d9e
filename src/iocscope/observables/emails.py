"""Email addresses: local part checked loosely, domain canonicalized like a domain."""

from __future__ import annotations

import re

from iocscope.errors import InvalidObservable
from iocscope.models import Observable, ObservableType
from iocscope.observables.cleaning import show
from iocscope.observables.domains import canonical_domain, registered_domain

# RFC 5322 dot-atom, widened to non-ASCII characters (surrogates excluded) for
# RFC 6531 addresses.
# Quoted local parts ("john doe"@...) are not accepted.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\u0080-\ud7ff\ue000-\U0010ffff-]+"
_DOT_ATOM = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")

MAX_LOCAL_PART_OCTETS = 64
MAX_ADDRESS_OCTETS = 254


def email_observable(value: str) -> Observable:
    """Parse an email address; the whole address is lower-cased."""
    local, domain = _split_address(value)
    _check_local_part(local, value)
    name = _canonical_email_domain(domain, value)
    address = f"{local.lower()}@{name}"
    if len(address.encode()) > MAX_ADDRESS_OCTETS:
        raise InvalidObservable(
            f"{show(value)} is longer than the {MAX_ADDRESS_OCTETS} octets an email "
            "address may have",
            value=value,
        )
    registered, is_public = registered_domain(name)
    return Observable(
        type=ObservableType.EMAIL,
        value=address,
        input=value,
        host=name,
        registered_domain=registered,
        is_public_suffix=is_public,
    )


def _split_address(value: str) -> tuple[str, str]:
    count = value.count("@")
    if count != 1:
        problem = "no '@'" if count == 0 else f"{count} '@' signs"
        raise InvalidObservable(
            f"{show(value)} is not a valid email address: it has {problem}; write "
            "it as user@example.com",
            value=value,
        )
    local, _, domain = value.partition("@")
    if not local or not domain:
        raise InvalidObservable(
            f"{show(value)} is not a valid email address: the part before or after "
            "the '@' is empty",
            value=value,
        )
    return local, domain


def _canonical_email_domain(domain: str, value: str) -> str:
    try:
        name = canonical_domain(domain)
    except InvalidObservable as exc:
        raise InvalidObservable(
            f"{show(value)} has an invalid domain part: {exc.message}", value=value
        ) from None
    if "." not in name:
        raise InvalidObservable(
            f"{show(value)} has the single-label domain {name!r}: an email address "
            "needs a full domain such as example.com",
            value=value,
        )
    return name


def _check_local_part(local: str, value: str) -> None:
    if _DOT_ATOM.fullmatch(local) is None:
        raise InvalidObservable(
            f"{show(value)} has an invalid local part {local!r}: use letters, digits "
            "and !#$%&'*+/=?^_`{|}~- with single dots between them",
            value=value,
        )
    if len(local.encode("utf-8", "surrogatepass")) > MAX_LOCAL_PART_OCTETS:
        raise InvalidObservable(
            f"{show(value)} has a local part longer than {MAX_LOCAL_PART_OCTETS} "
            "octets",
            value=value,
        )
